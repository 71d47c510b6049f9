import SwiftQCore

/// One edit of a graph, addressed by node index in the graph the pass looked at.
public enum Edit: Sendable {
    /// Node `index` disappears.
    case remove(node: Int)
    /// Node `index` is replaced by `with`.
    case replace(node: Int, with: Node)
    /// Every reader of value `from` (nodes and graph outputs) reads `to` instead.
    case rewire(from: String, to: String)
    /// A new initializer (replaces one of the same name).
    case addInitializer(Initializer)
    /// Nodes added to the graph (the rewriter sorts the graph afterwards).
    case insert([Node])
    /// The default-domain opset version becomes `version`.
    case setOpset(Int64)
}

/// What a pass wants changed, with a line for the user saying what and why.
public struct Patch: Sendable {
    public var summary: String
    public var edits: [Edit]
    public init(_ summary: String, _ edits: [Edit]) {
        self.summary = summary
        self.edits = edits
    }
}

/// A graph rewrite rule: looks at a model and returns patches; it never edits the model itself. The patches
/// of one call must not touch the same node twice.
public protocol Pass: Sendable {
    var name: String { get }
    func patches(_ model: Model) throws -> [Patch]
}

/// Applies passes in order, each until it returns no patches, then removes nodes whose outputs nobody reads
/// and initializers nobody uses. Returns the model and every patch summary, in order.
public struct Rewriter: Sendable {
    public var passes: [any Pass]
    public var maxRounds = 50

    public init(_ passes: [any Pass]) { self.passes = passes }

    public func run(_ model: Model) throws -> (model: Model, log: [String]) {
        var m = model
        var log: [String] = []
        for pass in passes {
            for _ in 0..<maxRounds {
                let ps = try pass.patches(m)
                if ps.isEmpty { break }
                m = try apply(ps, to: m)
                log += ps.map { "\(pass.name): \($0.summary)" }
            }
        }
        return (removeDead(m), log)
    }

    /// Applies `patches` (computed on `model`) and restores topological order.
    public func apply(_ patches: [Patch], to model: Model) throws -> Model {
        var m = model
        var nodes: [Node?] = m.graph.nodes.map { $0 }
        var rewires: [String: String] = [:]
        var inits = m.graph.initializers
        var added: [Node] = []
        for p in patches {
            for e in p.edits {
                switch e {
                case .remove(let i): nodes[i] = nil
                case .replace(let i, let n): nodes[i] = n
                case .rewire(let from, let to): rewires[from] = to
                case .addInitializer(let t):
                    inits.removeAll { $0.name == t.name }
                    inits.append(t)
                case .insert(let ns): added += ns
                case .setOpset(let v):
                    m.opsetImports.removeAll { $0.domain.isEmpty || $0.domain == "ai.onnx" }
                    m.opsetImports.insert(OpsetID(domain: "", version: v), at: 0)
                }
            }
        }
        func resolve(_ name: String) -> String {
            var n = name, seen = 0
            while let t = rewires[n], seen < 64 { n = t; seen += 1 }
            return n
        }
        var all = nodes.compactMap { $0 } + added
        for i in all.indices { all[i].inputs = all[i].inputs.map { $0.isEmpty ? $0 : resolve($0) } }
        // A rewired graph output keeps its name: the node producing the new value writes the old name.
        for o in m.graph.outputs where resolve(o.name) != o.name {
            let to = resolve(o.name)
            if let k = all.firstIndex(where: { $0.outputs.contains(to) }) {
                all[k].outputs = all[k].outputs.map { $0 == to ? o.name : $0 }
                for j in all.indices { all[j].inputs = all[j].inputs.map { $0 == to ? o.name : $0 } }
            } else {
                all.append(Node(name: "\(o.name)_identity", opType: "Identity", inputs: [to], outputs: [o.name]))
            }
        }
        m.graph.nodes = all
        m.graph.initializers = inits
        let order = try m.graph.topologicalOrder()
        m.graph.nodes = order.map { m.graph.nodes[$0] }
        return m
    }

    /// Drops nodes none of whose outputs is read (repeatedly), then unused initializers and value infos.
    public func removeDead(_ model: Model) -> Model {
        var m = model
        let outputs = Set(m.graph.outputs.map(\.name))
        // Live nodes: those the graph outputs reach through producers (one walk; a node none of whose outputs
        // is read by a live node or the graph is dead, and so are the nodes only it reads).
        var producer: [String: Int] = [:]
        producer.reserveCapacity(m.graph.nodes.count)
        for (i, n) in m.graph.nodes.enumerated() { for o in n.outputs where !o.isEmpty { producer[o] = i } }
        var live = [Bool](repeating: false, count: m.graph.nodes.count)
        var stack = outputs.compactMap { producer[$0] }
        for i in stack { live[i] = true }
        var used = outputs
        while let i = stack.popLast() {
            for input in m.graph.nodes[i].inputs where !input.isEmpty {
                used.insert(input)
                if let p = producer[input], !live[p] { live[p] = true; stack.append(p) }
            }
        }
        if live.contains(false) { m.graph.nodes = m.graph.nodes.indices.filter { live[$0] }.map { m.graph.nodes[$0] } }
        // Older models also list initializers among the graph inputs: those entries go with them.
        let dropped = Set(m.graph.initializers.map(\.name).filter { !used.contains($0) })
        m.graph.initializers.removeAll { dropped.contains($0.name) }
        m.graph.inputs.removeAll { dropped.contains($0.name) }
        let values = used.union(m.graph.nodes.flatMap(\.outputs))
        m.graph.valueInfo.removeAll { !values.contains($0.name) }
        return m
    }
}

extension Rewriter {
    /// The rewrites before quantization, in order: pass-through nodes removed, constants computed, layout
    /// Transposes moved until they cancel, ReduceMean pooling and MatMul + bias made GlobalAveragePool and Gemm, BatchNorm
    /// and constant affine ops folded into the layer before them, Pad folded into Conv, the model moved to
    /// opset 13, spelled-out HardSigmoid/HardSwish made single ops, Div and Sub by constants made Mul and Add.
    public static let quantizationPreparation = Rewriter([
        DropIdentity(), FoldConstants(), PushTransposes(), ReduceMeanToPool(), MatMulAddToGemm(),
        FoldAffine(), FoldBatchNorm(), FoldAffine(), FoldAffineIntoNext(), FoldPadIntoConv(), UpgradeOpset(), FuseSpelledActivations(), ConstantDivToMul(),
    ])

    /// The rewrites a float model runs with (`swiftq bench`, `eval`): those of `quantizationPreparation` that save
    /// work and keep every result up to float rounding (BatchNorm and affine ops folded into the layers, spelled-out
    /// HardSwish as one op: the PP-OCRv4 detector's 24 HardSwish were four passes over the tensor each). Div by a
    /// constant stays Div: Mul by the reciprocal rounds differently and buys nothing in float.
    public static let execution = Rewriter(quantizationPreparation.passes.filter { !($0 is ConstantDivToMul) })
}
