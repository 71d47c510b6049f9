/// The facts `swiftq inspect` shows about a model.
public struct ModelReport: Sendable {
    public struct Value: Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Dim]?
    }

    public struct NodeCost: Sendable {
        public var node: String
        public var opType: String
        public var macs: Int
    }

    public struct QuantizableNode: Sendable {
        public var node: String
        public var opType: String
        public var role: QuantizationRole
    }

    public var producer: String
    public var producerVersion: String
    public var irVersion: Int64
    public var opsets: [OpsetID]
    public var inputs: [Value]
    public var outputs: [Value]
    /// Op type → count, most frequent first.
    public var ops: [(op: String, count: Int)]
    public var nodeCount: Int
    /// Elements and bytes of every initializer and Constant-node tensor.
    public var parameters: Int
    public var parameterBytes: Int
    /// Multiply-accumulates per inference (batch 1) of Conv, ConvTranspose, Gemm and MatMul nodes,
    /// nil when some of them have shapes that depend on unknown input dimensions.
    public var macs: Int?
    public var macsByNode: [NodeCost]
    /// Nodes whose MACs could not be counted (shape unknown).
    public var uncountedNodes: [String]
    public var quantizable: [QuantizableNode]
    /// Nodes that stay in float, Constant nodes not counted.
    public var floatNodeCount: Int { floatOps.reduce(0) { $0 + $1.count } }
    /// The ops of the nodes that stay in float, most frequent first (BatchNormalization among them until quantize
    /// folds it into the layer before it).
    public var floatOps: [(op: String, count: Int)]
    /// Ops outside the default ONNX domain (`domain:op`).
    public var customOps: [String]
    /// Shape inference problems (node, what is wrong).
    public var problems: [String]
    /// Inferred facts of every value.
    public var facts: [String: ValueFacts]

    /// Analyzes `model`. Leading symbolic input dimensions count as batch 1; `inputShapes` fixes others.
    public init(model: Model, inputShapes: [String: [Int]] = [:]) {
        let g = model.graph
        producer = model.producerName
        producerVersion = model.producerVersion
        irVersion = model.irVersion
        opsets = model.opsetImports
        let (facts, problems) = ShapeInference.run(model, inputShapes: inputShapes, bindBatch: true)
        self.facts = facts
        self.problems = problems.map(\.description)
        func value(_ v: ValueInfo) -> Value {
            let f = facts[v.name]
            let code: Int32? = if case .tensor(let t, _)? = v.type { t } else { nil }
            let declared = v.shape?.map { d -> Dim in if case .value(let x) = d, x < 0 { .unknown } else { d } }
            return Value(name: v.name, dtype: code.map { DType.name(ofCode: $0) } ?? "?", shape: inputShapes[v.name].map { $0.map { .value($0) } } ?? declared ?? f?.shape)
        }
        inputs = g.dataInputs.map(value)
        outputs = g.outputs.map { o in
            var v = value(o)
            if let s = facts[o.name]?.shape, v.shape == nil || v.shape!.contains(.unknown) { v.shape = s }
            return v
        }
        ops = Self.counted(g.nodes.map(\.qualifiedOpType))
        nodeCount = g.nodes.count
        customOps = ops.map(\.op).filter { $0.contains(":") }.sorted()

        var params = 0, bytes = 0
        var constants = Set(g.initializers.map(\.name))
        for i in g.initializers { params += i.tensor.elementCount; bytes += i.tensor.bytes.count }
        for n in g.nodes where n.opType == "Constant" && n.isDefaultDomain {
            constants.formUnion(n.outputs)
            if let t = n.tensor("value") { params += t.elementCount; bytes += t.bytes.count }
        }
        parameters = params
        parameterBytes = bytes

        var costs: [NodeCost] = []
        var uncounted: [String] = []
        for n in g.nodes where n.isDefaultDomain {
            guard ["Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"].contains(n.opType) else { continue }
            if let m = ModelReport.macs(of: n, facts: facts) {
                costs.append(NodeCost(node: n.displayName, opType: n.opType, macs: m))
            } else {
                uncounted.append(n.displayName)
            }
        }
        macsByNode = costs
        uncountedNodes = uncounted
        let total = costs.reduce((0, false)) { a, c in a.1 ? a : a.0.addingReportingOverflow(c.macs) }
        macs = uncounted.isEmpty && !total.1 ? total.0 : nil
        var quantizable: [QuantizableNode] = [], floatOps: [String] = []
        for n in g.nodes {
            let r = n.quantizationRole(constants: constants, inputType: n.input(0).flatMap { facts[$0]?.dtype })
            if r != .float {
                quantizable.append(QuantizableNode(node: n.displayName, opType: n.opType, role: r))
            } else if n.opType != "Constant" {
                floatOps.append(n.qualifiedOpType)
            }
        }
        self.quantizable = quantizable
        self.floatOps = Self.counted(floatOps)
    }

    /// How many times each op occurs, most frequent first (then by name).
    public static func counted(_ ops: [String]) -> [(op: String, count: Int)] {
        Dictionary(ops.map { ($0, 1) }, uniquingKeysWith: +).map { ($0.key, $0.value) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.op < $1.op }
    }

    /// Multiply-accumulates of one node from inferred shapes; nil when a needed shape is unknown.
    public static func macs(of n: Node, facts: [String: ValueFacts]) -> Int? {
        func shape(_ i: Int) -> [Int]? { n.input(i).flatMap { facts[$0]?.concreteShape } }
        guard let out = n.outputs.first.flatMap({ facts[$0]?.concreteShape }), let outCount = Tensor.elementCount(out) else { return nil }
        switch n.opType {
        case "Conv", "ConvInteger", "QLinearConv":
            guard let w = shape(n.opType == "QLinearConv" ? 3 : 1), w.count >= 2 else { return nil }
            return Tensor.elementCount([outCount] + w.dropFirst())
        case "ConvTranspose":
            guard let x = shape(0), let w = shape(1), w.count >= 2 else { return nil }
            return Tensor.elementCount(x + w.dropFirst())
        case "Gemm":
            guard let a = shape(0), a.count == 2 else { return nil }
            let k = (n.int("transA") ?? 0) != 0 ? a[0] : a[1]
            return Tensor.elementCount([outCount, k])
        case "MatMul", "MatMulInteger", "QLinearMatMul":
            guard let a = shape(0), let k = a.last else { return nil }
            return Tensor.elementCount([outCount, k])
        default: return nil
        }
    }
}
