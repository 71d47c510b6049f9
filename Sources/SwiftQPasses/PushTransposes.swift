import SwiftQCore
import SwiftQRuntime

/// Transposes that tf2onnx writes around every Conv of a Keras (NHWC) model, moved down the graph until they
/// meet their inverse and both disappear: through elementwise activations, through Add/Sub/Mul/Div with a
/// constant (the constant is permuted to match), through a binary op whose operands are both transposed the same
/// way, and into ReduceMean's axes. A Keras ResNet becomes an NCHW graph with one Transpose at the input, so its
/// BatchNormalization (spelled Sub/Mul/Add on the channel-last axis) folds into the Conv, and nothing is
/// quantized twice around a layout change. The model's input and outputs keep their layout.
public struct PushTransposes: Pass {
    public let name = "push-transposes"
    public init() {}

    static let elementwise: Set<String> = ["Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Elu", "Selu",
                                           "Softplus", "Mish", "Gelu", "Abs", "Neg", "Exp", "Erf", "Sqrt", "Identity"]
    static let binary: Set<String> = ["Add", "Sub", "Mul", "Div", "PRelu", "Max", "Min", "Pow"]

    public func patches(_ model: Model) throws -> [Patch] {
        let g = model.graph
        let inits = g.initializerTable
        let consumers = g.consumers(), producers = g.producers()
        let outputs = Set(g.outputs.map(\.name))
        var names = FreshNames(g)
        func fresh(_ base: String) -> String { names.make(base) }
        /// The Transpose producing `name` (its index, input and permutation) when `name` is read only by `reader`
        /// (any readers, when `reader` is nil).
        func transposed(_ name: String, readOnlyBy reader: Int?) -> (index: Int, input: String, perm: [Int])? {
            guard let p = producers[name], g.nodes[p].opType == "Transpose", g.nodes[p].isDefaultDomain, !outputs.contains(name),
                  reader.map({ consumers[name] == [$0] }) ?? true, let x = g.nodes[p].input(0), let perm = g.nodes[p].ints("perm")?.map(Int.init),
                  perm.sorted() == Array(0..<perm.count) else { return nil }
            return (p, x, perm)
        }
        var result: [Patch] = []
        var used = Set<Int>()
        for (i, n) in g.nodes.enumerated() where n.isDefaultDomain && !used.contains(i) {
            guard let y = n.outputs.first, n.outputs.count == 1 else { continue }
            // Transpose of a Transpose: one permutation, or none. The first stays for its other readers, if any (the
            // rewriter drops it when nothing reads it any more).
            if n.opType == "Transpose", let x = n.input(0), let t = transposed(x, readOnlyBy: nil),
               let p2 = n.ints("perm")?.map(Int.init), p2.count == t.perm.count {
                let composed = p2.map { t.perm[$0] }
                used.insert(i)
                if composed == Array(0..<composed.count) && !outputs.contains(y) {
                    result.append(Patch("Transpose '\(n.displayName)' undoes Transpose '\(g.nodes[t.index].displayName)'",
                                        [.remove(node: i), .rewire(from: y, to: t.input)]))
                } else {
                    var m = n
                    m.inputs[0] = t.input
                    m.attributes = [Attribute(name: "perm", value: .ints(composed.map(Int64.init)))]
                    result.append(Patch("Transposes '\(g.nodes[t.index].displayName)' and '\(n.displayName)' composed", [.replace(node: i, with: m)]))
                }
                continue
            }
            // The op on the untransposed tensor, then the Transpose: op(T(x)) = T(op'(x)).
            var newInputs: [String]? = nil, perm: [Int] = [], moved: [Int] = [], adds: [Initializer] = []
            if Self.elementwise.contains(n.opType), let x = n.input(0), let t = transposed(x, readOnlyBy: i),
               n.inputs.dropFirst().allSatisfy({ $0.isEmpty || (inits[$0]?.elementCount ?? 2) == 1 }) {
                newInputs = [t.input] + n.inputs.dropFirst()
                perm = t.perm; moved = [t.index]
            } else if Self.binary.contains(n.opType), n.inputs.count == 2 {
                let a = transposed(n.inputs[0], readOnlyBy: i), b = transposed(n.inputs[1], readOnlyBy: i)
                if let a, let b, a.perm == b.perm, a.index != b.index {
                    newInputs = [a.input, b.input]; perm = a.perm; moved = [a.index, b.index]
                } else if let t = a ?? b, let c = inits[a != nil ? n.inputs[1] : n.inputs[0]], c.shape.count <= t.perm.count {
                    // The constant, broadcast to the rank, permuted by the inverse: transpose(c′, perm) = c.
                    let r = t.perm.count
                    let padded = [Int](repeating: 1, count: r - c.shape.count) + c.shape
                    var inverse = [Int](repeating: 0, count: r)
                    for (k, v) in t.perm.enumerated() { inverse[v] = k }
                    let name = fresh("\(a != nil ? n.inputs[1] : n.inputs[0])_\(inverse.map(String.init).joined())")
                    adds.append(Initializer(name: name, tensor: Self.transpose(c, padded: padded, perm: inverse)))
                    newInputs = a != nil ? [t.input, name] : [name, t.input]
                    perm = t.perm; moved = [t.index]
                }
            } else if n.opType == "ReduceMean", let x = n.input(0), let t = transposed(x, readOnlyBy: i), (n.int("keepdims") ?? 1) == 0,
                      let axes = n.ints("axes")?.map({ Int($0) < 0 ? Int($0) + t.perm.count : Int($0) }) {
                // Reducing axes of T(x) is reducing their preimages in x; without keepdims the kept axes must stay in order.
                let kept = (0..<t.perm.count).filter { !axes.contains($0) }.map { t.perm[$0] }
                if kept == kept.sorted(), !used.contains(t.index) {
                    var m = n
                    m.inputs[0] = t.input
                    m.attributes = n.attributes.filter { $0.name != "axes" } + [Attribute(name: "axes", value: .ints(axes.map { Int64(t.perm[$0]) }))]
                    used.formUnion([i, t.index])
                    result.append(Patch("ReduceMean '\(n.displayName)' reads past Transpose '\(g.nodes[t.index].displayName)'",
                                        [.remove(node: t.index), .replace(node: i, with: m)]))
                }
                continue
            }
            guard let ins = newInputs, moved.allSatisfy({ !used.contains($0) }) else { continue }
            used.formUnion([i] + moved)
            let inner = fresh("\(y)_untransposed")
            var op = n
            op.inputs = ins
            op.outputs = [inner]
            let t = Node(name: fresh("\(n.name.isEmpty ? y : n.name)_transpose"), opType: "Transpose", inputs: [inner], outputs: [y],
                         attributes: [Attribute(name: "perm", value: .ints(perm.map(Int64.init)))])
            result.append(Patch("Transpose moved below \(n.opType) '\(n.displayName)'",
                                adds.map { .addInitializer($0) } + moved.map { .remove(node: $0) } + [.replace(node: i, with: op), .insert([t])]))
        }
        return result
    }

    /// `c` (seen with shape `padded`) with its axes permuted: result axis k is `padded` axis perm[k]. Any element
    /// type: the elements move as bytes.
    static func transpose(_ c: Tensor, padded: [Int], perm: [Int]) -> Tensor {
        let out = perm.map { padded[$0] }, size = c.bytes.count / max(1, c.elementCount)
        let inStrides = strides(of: padded), outStrides = strides(of: out)
        var bytes = [UInt8](repeating: 0, count: c.bytes.count)
        for i in 0..<c.elementCount {
            var rem = i, src = 0
            for k in 0..<out.count { let idx = rem / outStrides[k]; rem %= outStrides[k]; src += idx * inStrides[perm[k]] }
            bytes[(i * size)..<((i + 1) * size)] = c.bytes[(src * size)..<((src + 1) * size)]
        }
        return Tensor(dtype: c.dtype, shape: out, bytes: bytes)!
    }
}

/// ReduceMean over the two spatial axes of a rank-4 NCHW tensor is GlobalAveragePool (then Flatten without
/// keepdims): the form every runtime quantizes (QLinearGlobalAveragePool). Keras exports spell global average
/// pooling as ReduceMean.
public struct ReduceMeanToPool: Pass {
    public let name = "reducemean-to-pool"
    public init() {}

    public func patches(_ model: Model) throws -> [Patch] {
        let g = model.graph
        let facts = ShapeInference.run(model).facts
        var names = FreshNames(g)
        var result: [Patch] = []
        for (i, n) in g.nodes.enumerated() where n.isDefaultDomain && n.opType == "ReduceMean" && n.inputs.count == 1 {
            guard let x = n.input(0), facts[x]?.rank == 4, facts[x]?.dtype == .float,
                  let axes = n.ints("axes")?.map({ $0 < 0 ? $0 + 4 : $0 }), Set(axes) == [2, 3], axes.count == 2, let y = n.outputs.first else { continue }
            let keep = (n.int("keepdims") ?? 1) != 0
            let pooled = keep ? y : names.make("\(y)_pooled")
            var edits: [Edit] = [.replace(node: i, with: Node(name: n.name, opType: "GlobalAveragePool", inputs: [x], outputs: [pooled]))]
            if !keep { edits.append(.insert([Node(name: "\(n.name)_flatten", opType: "Flatten", inputs: [pooled], outputs: [y], attributes: [Attribute(name: "axis", value: .int(1))])])) }
            result.append(Patch("ReduceMean '\(n.displayName)' over H and W is GlobalAveragePool", edits))
        }
        return result
    }
}

/// MatMul of a rank-2 activation by a constant [K, N] matrix followed by an Add of a constant [N] (or [1, N])
/// bias, the MatMul's only reader, is Gemm with that bias (Keras' Dense): one quantized layer with an int32 bias
/// instead of a MatMul and an Add.
public struct MatMulAddToGemm: Pass {
    public let name = "matmul-add-to-gemm"
    public init() {}

    public func patches(_ model: Model) throws -> [Patch] {
        let g = model.graph
        let inits = g.initializerTable
        let consumers = g.consumers()
        let facts = ShapeInference.run(model).facts
        let outputs = Set(g.outputs.map(\.name))
        var result: [Patch] = []
        var used = Set<Int>()
        for (i, n) in g.nodes.enumerated() where n.isDefaultDomain && n.opType == "MatMul" && n.inputs.count == 2 {
            guard let x = n.input(0), facts[x]?.rank == 2, let w = inits[n.inputs[1]], w.shape.count == 2, w.dtype == .float,
                  let y = n.outputs.first, !outputs.contains(y), let r = consumers[y], r.count == 1, !used.contains(r[0]) else { continue }
            let add = g.nodes[r[0]]
            guard add.opType == "Add", add.isDefaultDomain, add.inputs.count == 2 else { continue }
            let other = add.inputs[0] == y ? add.inputs[1] : add.inputs[0]
            guard let b = inits[other], b.dtype == .float, b.elementCount == w.shape[1], b.shape.count <= 2, b.shape.first == w.shape[1] || b.shape.first == 1 else { continue }
            used.formUnion([i, r[0]])
            let gemm = Node(name: n.name, opType: "Gemm", inputs: [x, n.inputs[1], other], outputs: add.outputs)
            result.append(Patch("MatMul '\(n.displayName)' + Add '\(add.displayName)' is Gemm", [.replace(node: i, with: gemm), .remove(node: r[0])]))
        }
        return result
    }
}
