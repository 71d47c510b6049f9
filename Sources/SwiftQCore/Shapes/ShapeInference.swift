/// What static analysis knows about one graph value.
public struct ValueFacts: Sendable, Equatable {
    public var dtype: DType?
    /// nil: rank unknown.
    public var shape: [Dim]?
    /// The element values of a small integer tensor (shape arithmetic: Shape → Gather → Concat → Reshape),
    /// row-major; a value may be symbolic (a batch size) or unknown.
    public var values: [Dim]?
    /// The element values of a small float constant (Resize's scales).
    public var floats: [Float]?

    public init(dtype: DType?, shape: [Dim]?, values: [Dim]? = nil, floats: [Float]? = nil) {
        self.dtype = dtype
        self.shape = shape
        self.values = values
        self.floats = floats
    }

    public static let unknown = ValueFacts(dtype: nil, shape: nil)

    /// The shape when every dimension is a number.
    public var concreteShape: [Int]? {
        guard let shape else { return nil }
        let v = shape.compactMap { d -> Int? in if case .value(let x) = d, x >= 0 { x } else { nil } }
        return v.count == shape.count ? v : nil
    }

    public var rank: Int? { shape?.count }

    /// Known integer values when all are numbers.
    public var intValues: [Int]? {
        guard let values else { return nil }
        let v = values.compactMap(\.value)
        return v.count == values.count ? v : nil
    }
}

/// The inputs a shape rule sees.
public struct ShapeContext {
    public let node: Node
    public let inputs: [ValueFacts?]
    public let opset: Int64

    /// Facts of input `i`; nil when omitted.
    public func input(_ i: Int) -> ValueFacts? { i < inputs.count ? inputs[i] : nil }

    public func fail(_ what: String) -> ModelError { .shape(node: node.displayName, opType: node.opType, what: what) }

    /// Input `i` with a known rank, or an error naming it.
    public func ranked(_ i: Int) throws -> (facts: ValueFacts, shape: [Dim]) {
        guard let f = input(i) else { throw fail("input \(i) is missing") }
        guard let s = f.shape else { throw ShapeUnknown() }
        return (f, s)
    }
}

/// Thrown by rules when an input's rank is unknown: the outputs become unknown without an error.
public struct ShapeUnknown: Error {}

public typealias ShapeRule = @Sendable (ShapeContext) throws -> [ValueFacts]

/// The largest magnitude shape arithmetic works with: 2^30 − 1. A dimension or shape value past it (an
/// attribute, a constant, a declared dim) is taken as this bound, so that every rule's sums and pairwise
/// products stay far inside Int (2^60) and a hostile model (Reshape to 2^40 x 2^40, pads of 2^62) cannot make
/// inference trap; the tensor-size check then refuses the model. No real tensor has a dimension this large,
/// and Slice's "to the end" (INT64_MAX) keeps its meaning.
public let shapeBound = (1 << 30) - 1

public func shapeInt<T: BinaryInteger>(_ v: T) -> Int {
    v > shapeBound ? shapeBound : v < -shapeBound ? -shapeBound : Int(v)
}

extension Dim {
    /// The dimension with its value held within ±`shapeBound`.
    var bounded: Dim { if case .value(let v) = self, abs(v) > shapeBound { .value(shapeInt(v)) } else { self } }
}

/// Static shape, type and small-constant inference over a graph in topological order.
public enum ShapeInference {
    /// Op type → rule. Ops not listed get unknown outputs (or the model's own `value_info`, if it has one).
    public static let rules: [String: ShapeRule] = [
        "Conv": convShape, "ConvInteger": convShape, "QLinearConv": qlinearConvShape, "ConvTranspose": convTransposeShape,
        "MaxPool": poolShape, "AveragePool": poolShape, "LpPool": poolShape,
        "GlobalAveragePool": globalPoolShape, "GlobalMaxPool": globalPoolShape, "GlobalLpPool": globalPoolShape,
        "Gemm": gemmShape, "MatMul": matMulShape, "MatMulInteger": matMulShape, "QLinearMatMul": qlinearMatMulShape,
        "BatchNormalization": batchNormShape,
        "Relu": sameShape, "LeakyRelu": sameShape, "PRelu": sameShape, "Clip": sameShape, "Sigmoid": sameShape,
        "HardSigmoid": sameShape, "HardSwish": sameShape, "Tanh": sameShape, "Softmax": sameShape, "LogSoftmax": sameShape,
        "LRN": sameShape, "Identity": sameShape, "Dropout": dropoutShape, "Elu": sameShape, "Selu": sameShape,
        "Exp": sameShape, "Log": sameShape, "Sqrt": sameShape, "Abs": sameShape, "Neg": sameShape, "Erf": sameShape,
        "Floor": sameShape, "Ceil": sameShape, "Round": sameShape, "Reciprocal": sameShape, "Softplus": sameShape,
        "Mish": sameShape, "Gelu": sameShape, "InstanceNormalization": sameShape, "LayerNormalization": sameShape,
        "Cast": castShape, "QuantizeLinear": quantizeShape, "DequantizeLinear": dequantizeShape,
        "Add": broadcastShape, "Sub": broadcastShape, "Mul": broadcastShape, "Div": broadcastShape, "Pow": broadcastShape,
        "Sum": broadcastShape, "Max": broadcastShape, "Min": broadcastShape, "Mean": broadcastShape,
        "Equal": compareShape, "Less": compareShape, "Greater": compareShape, "Where": whereShape,
        "Concat": concatShape, "Split": splitShape, "Slice": sliceShape, "Flatten": flattenShape, "Reshape": reshapeShape,
        "Transpose": transposeShape, "Squeeze": squeezeShape, "Unsqueeze": unsqueezeShape, "Gather": gatherShape,
        "Shape": shapeShape, "Size": sizeShape, "Constant": constantShape, "ConstantOfShape": constantOfShapeShape,
        "Pad": padShape, "ReduceMean": reduceShape, "ReduceSum": reduceShape, "ReduceMax": reduceShape,
        "ReduceMin": reduceShape, "ReduceProd": reduceShape, "ReduceL2": reduceShape, "Expand": expandShape,
        "Tile": tileShape, "Range": rangeShape, "Resize": resizeShape, "Upsample": resizeShape,
        "Hardmax": sameShape, "Sign": sameShape, "Softsign": sameShape, "Celu": sameShape, "ThresholdedRelu": sameShape,
        "GroupNormalization": sameShape, "Not": sameShape, "LessOrEqual": compareShape, "GreaterOrEqual": compareShape,
        "And": compareShape, "Or": compareShape, "Xor": compareShape, "ReduceL1": reduceShape, "ReduceSumSquare": reduceShape,
        "ReduceLogSum": reduceShape, "ReduceLogSumExp": reduceShape, "ArgMax": argExtremeShape, "ArgMin": argExtremeShape,
        "TopK": topKShape, "DepthToSpace": depthSpaceShape, "SpaceToDepth": depthSpaceShape,
    ]

    /// Infers facts for every value. `inputShapes` overrides declared input shapes (e.g. to fix a dynamic
    /// width); `bindBatch` gives symbolic or unknown leading dimensions of data inputs the value 1.
    /// Problems (a node whose inputs contradict its op) are returned, not thrown: later nodes still get facts.
    public static func run(_ model: Model, inputShapes: [String: [Int]] = [:], bindBatch: Bool = false)
        -> (facts: [String: ValueFacts], problems: [ModelError])
    {
        let graph = model.graph
        var facts: [String: ValueFacts] = [:]
        var problems: [ModelError] = []
        for v in graph.inputs {
            var shape = v.shape?.map { d -> Dim in if case .value(let x) = d, x < 0 { .unknown } else { d.bounded } }
            if let given = inputShapes[v.name] { shape = given.map { .value(shapeInt($0)) } }
            else if bindBatch, var s = shape, let first = s.first, first.value == nil { s[0] = .value(1); shape = s }
            facts[v.name] = ValueFacts(dtype: v.dtype, shape: shape)
        }
        for i in graph.initializers { facts[i.name] = constantFacts(i.tensor) }
        var declared: [String: ValueInfo] = [:]
        for v in graph.valueInfo + graph.outputs { declared[v.name] = v }
        let order = (try? graph.topologicalOrder()) ?? Array(graph.nodes.indices)
        for index in order {
            let node = graph.nodes[index]
            let ctx = ShapeContext(node: node, inputs: node.inputs.map { $0.isEmpty ? nil : facts[$0] ?? .unknown }, opset: model.opset)
            var out: [ValueFacts] = []
            if node.isDefaultDomain, let rule = rules[node.opType] {
                do { out = try rule(ctx) } catch let e as ModelError { problems.append(e) } catch {}
            }
            for (k, name) in node.outputs.enumerated() where !name.isEmpty {
                var f = k < out.count ? out[k] : .unknown
                if f.shape == nil || f.dtype == nil, let d = declared[name] {
                    if f.shape == nil { f.shape = d.shape }
                    if f.dtype == nil { f.dtype = d.dtype }
                }
                f.shape = f.shape?.map(\.bounded)
                f.values = f.values?.map(\.bounded)
                facts[name] = f
            }
        }
        return (facts, problems)
    }

    /// Facts of a known tensor; values kept for small integer tensors.
    public static func constantFacts(_ t: Tensor) -> ValueFacts {
        let isInt = !t.dtype.isFloatingPoint && t.dtype != .bool
        let values = isInt && t.elementCount <= 1024 ? t.int64s().map { Dim.value(shapeInt($0)) } : nil
        let floats = t.dtype.isFloatingPoint && t.elementCount <= 64 ? t.floats() : nil
        return ValueFacts(dtype: t.dtype, shape: t.shape.map { .value($0) }, values: values, floats: floats)
    }
}
