import SwiftQCore
import SwiftQRuntime

/// Computes what does not depend on the image: nodes whose inputs are all constants are evaluated once by the
/// float runtime, and integer values static shape analysis knows (Shape → Gather → Unsqueeze → Concat chains
/// of exporters) become initializers. A Reshape to [batch of its input, −1] becomes Flatten(axis 1), so a
/// symbolic batch size survives.
public struct FoldConstants: Pass {
    public let name = "fold-constants"
    public init() {}

    public func patches(_ model: Model) throws -> [Patch] {
        let g = model.graph
        let inits = g.initializerTable
        let facts = ShapeInference.run(model).facts
        let outputs = Set(g.outputs.map(\.name))
        var result: [Patch] = []
        for (i, n) in g.nodes.enumerated() where n.isDefaultDomain && !randomOperators.contains(n.opType) {
            if n.opType == "Reshape", let x = n.input(0), let s = n.input(1), inits[s] == nil,
               let values = facts[s]?.values, values.count == 2, values[1] == .value(-1),
               let first = facts[x]?.shape?.first, values[0] == first, case .symbol = first {
                var f = Node(name: n.name, opType: "Flatten", inputs: [x], outputs: n.outputs, attributes: [Attribute(name: "axis", value: .int(1))])
                f.docString = n.docString
                result.append(Patch("Reshape '\(n.displayName)' to [batch, -1] is Flatten(axis 1)", [.replace(node: i, with: f)]))
                continue
            }
            let inputs = n.inputs.filter { !$0.isEmpty }
            let live = n.outputs.filter { !$0.isEmpty }
            guard !live.isEmpty, live.allSatisfy({ !outputs.contains($0) }) else { continue }
            if inputs.allSatisfy({ inits[$0] != nil }) {
                guard let values = try? evaluate(n, inits: inits, opset: model.opset) else { continue }
                result.append(Patch("\(n.opType) '\(n.displayName)' computed ahead of time",
                                    [.remove(node: i)] + values.map { .addInitializer($0) }))
                continue
            }
            let known = live.compactMap { name -> Initializer? in
                guard let f = facts[name], let dtype = f.dtype, let shape = f.concreteShape, let v = f.intValues,
                      v.count == shape.reduce(1, *) else { return nil }
                switch dtype {
                case .int64: return Initializer(name: name, tensor: Tensor(int64s: v.map { Int64($0) }, shape: shape))
                case .int32: return Initializer(name: name, tensor: Tensor(integers: v.map { Int32(clamping: $0) }, dtype: .int32, shape: shape))
                default: return nil
                }
            }
            if known.count == live.count {
                result.append(Patch("\(n.opType) '\(n.displayName)' has a value known from shapes alone",
                                    [.remove(node: i)] + known.map { .addInitializer($0) }))
            }
        }
        return result
    }

    /// Runs one node on constant inputs with the float runtime.
    private func evaluate(_ n: Node, inits: [String: Tensor], opset: Int64) throws -> [Initializer] {
        let names = Set(n.inputs.filter { !$0.isEmpty })
        let outs = n.outputs.filter { !$0.isEmpty }
        let graph = Graph(nodes: [n], outputs: outs.map { ValueInfo(name: $0, type: nil) },
                          initializers: names.map { Initializer(name: $0, tensor: inits[$0]!) })
        let m = Model(opsetImports: [OpsetID(domain: "", version: opset)], graph: graph)
        let r = try Interpreter(model: m, options: .init(threads: 1, fuse: false)).run([:])
        return try outs.map { name in
            guard let t = r[name] else { throw RuntimeError.invalidInput(node: n.displayName, opType: n.opType, what: "no value computed") }
            return Initializer(name: name, tensor: t.tensor())
        }
    }
}

/// Ops whose output is not a function of their inputs.
let randomOperators: Set<String> = ["RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"]
