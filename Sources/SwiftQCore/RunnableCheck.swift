/// What must hold before swiftq runs, calibrates or quantizes a model. `inspect` and `convert` read and
/// write models that fail these (an opset from the future is still described); every job that executes
/// the graph checks them first, so a bad model is one line naming the file and node, not a crash, a
/// silently different op, or a model ONNX Runtime refuses.
extension Model {
    /// The newest default-domain opset whose operators swiftq knows (the ONNX backend node tests it passes go
    /// up to it).
    public static let newestKnownOpset: Int64 = 28

    /// The most values one tensor may hold: 2^28 float32 values, 1 GiB. The largest activation of a
    /// detector at 1x3x1280x1280 is about a tenth of it.
    public static let defaultMaxTensorElements = 1 << 28

    /// With the data inputs fixed to `inputShapes`, shape inference finds no node whose inputs contradict it,
    /// and every tensor whose size it can tell (inputs, activations, constants a node would compute) holds at
    /// most `maxElements` values. Checked before any tensor is allocated or any constant folded: a declared
    /// 1x3x100000x100000 input, or a ConstantOfShape of a terabyte, is one line naming the input or tensor instead of an allocation that kills the process.
    public func checkTensorSizes(path: String, inputShapes: [String: [Int]], maxElements: Int = Model.defaultMaxTensorElements) throws {
        // In floating point: the product of a hostile shape must not overflow while it is being refused.
        func values(_ dims: [Int]) -> Double { dims.map { Double(max(0, $0)) }.reduce(1, *) }
        func tooLarge(_ what: String, _ dims: [Int]) -> ModelError {
            let n = values(dims)
            return .invalid(path: path, what: "\(what) would hold \(dims.map(String.init).joined(separator: "x")) = \(n < 9e18 ? String(Int(n)) : String(n)) values, more than the limit of \(maxElements) (--max-tensor-elements)")
        }
        for (name, dims) in inputShapes.sorted(by: { $0.key < $1.key }) where values(dims) > Double(maxElements) {
            throw tooLarge("input '\(name)'", dims)
        }
        let (facts, problems) = ShapeInference.run(self, inputShapes: inputShapes)
        // A node whose inputs contradict its op for this input (a Reshape to a size the tensor does not have,
        // a Concat of mismatched shapes) would fail or misbehave at run time: refuse it now.
        if let problem = problems.first { throw ModelError.invalid(path: path, what: problem.description) }
        let producers = Dictionary(graph.nodes.flatMap { n in n.outputs.map { ($0, n) } }, uniquingKeysWith: { a, _ in a })
        for (name, fact) in facts.sorted(by: { $0.key < $1.key }) {
            guard let shape = fact.shape else { continue }
            let dims = shape.compactMap(\.value)
            guard dims.count == shape.count, values(dims) > Double(maxElements) else { continue }
            let node = producers[name].map { " (output of node '\($0.displayName)' (\($0.opType)))" } ?? ""
            throw tooLarge("tensor '\(name)'\(node)", dims)
        }
    }

    public func checkRunnable(path: String) throws {
        func invalid(_ what: String) -> ModelError { .invalid(path: path, what: what) }
        if graph.outputs.isEmpty { throw invalid("the graph has no outputs: nothing to compute") }
        if opset > Self.newestKnownOpset {
            throw invalid("opset \(opset) is newer than swiftq knows (up to \(Self.newestKnownOpset))")
        }
        let weights = graph.initializerTable
        for n in graph.nodes {
            let name = "node '\(n.displayName)' (\(n.qualifiedOpType))"
            if !n.isDefaultDomain {
                throw invalid("\(name): operators of domain '\(n.domain)' are not ONNX's; swiftq cannot run them")
            }
            for a in n.attributes {
                guard let want = Self.attributeKinds[a.name] else { continue }
                if !want.matches(a.value) {
                    throw invalid("\(name): attribute '\(a.name)' must be \(want.description), not \(AttributeKind.describe(a.value))")
                }
            }
            if ["Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "ConvInteger", "QLinearConv"].contains(n.opType) {
                try checkWindow(n, name: name, weights: weights, invalid: invalid)
            }
        }
    }

    private func checkWindow(_ n: Node, name: String, weights: [String: Tensor], invalid: (String) -> ModelError) throws {
        let weightIndex = n.opType == "QLinearConv" ? 3 : 1
        let isConv = n.opType.contains("Conv")
        var spatial: Int? = nil
        if isConv, let w = n.input(weightIndex).flatMap({ weights[$0] }) {
            guard w.shape.count >= 3 else { throw invalid("\(name): weight '\(n.input(weightIndex)!)' has rank \(w.shape.count); a convolution needs 3 or more") }
            spatial = w.shape.count - 2
            if let k = n.ints("kernel_shape"), k.map(Int.init) != Array(w.shape[2...]) {
                throw invalid("\(name): attribute 'kernel_shape' \(k) does not match weight '\(n.input(weightIndex)!)' of shape \(w.shape)")
            }
            if let g = n.int("group") {
                let out = n.opType == "ConvTranspose" ? w.shape[1] * Int(g) : w.shape[0]
                guard g > 0, out % Int(g) == 0 else { throw invalid("\(name): attribute 'group' \(g) does not divide the \(out) output channels") }
            }
        }
        if let k = n.ints("kernel_shape") {
            if let s = spatial, k.count != s { throw invalid("\(name): attribute 'kernel_shape' has \(k.count) values for \(s) spatial dimensions") }
            spatial = k.count
            if k.contains(where: { $0 <= 0 }) { throw invalid("\(name): attribute 'kernel_shape' \(k) must be positive") }
        } else if !isConv {
            throw invalid("\(name): attribute 'kernel_shape' is required")
        }
        guard let s = spatial else { return }
        for (attr, count, minimum) in [("strides", s, Int64(1)), ("dilations", s, 1), ("pads", 2 * s, 0), ("output_padding", s, 0)] {
            guard let v = n.ints(attr) else { continue }
            if v.count != count { throw invalid("\(name): attribute '\(attr)' has \(v.count) values; \(count) expected for \(s) spatial dimensions") }
            if v.contains(where: { $0 < minimum }) { throw invalid("\(name): attribute '\(attr)' \(v) must be \(minimum == 0 ? "0 or more" : "positive")") }
        }
    }

    /// The kind of the standard ONNX attributes swiftq's operators read, by name (the names keep one kind
    /// across ONNX's operators).
    static let attributeKinds: [String: AttributeKind] = {
        var k: [String: AttributeKind] = [:]
        for n in ["kernel_shape", "strides", "dilations", "pads", "output_padding", "output_shape", "perm"] { k[n] = .ints }
        for n in ["group", "axis", "keepdims", "transA", "transB", "ceil_mode", "count_include_pad", "storage_order",
                  "to", "blocksize", "noop_with_empty_axes", "select_last_index", "largest", "sorted", "exclude_outside",
                  "upper", "p", "size", "detect_negative", "detect_positive", "fmod", "reverse", "exclusive",
                  "batch_dims", "broadcast", "stash_type", "num_groups", "saturate", "block_size"] { k[n] = .int }
        for n in ["alpha", "beta", "gamma", "epsilon", "bias", "lambd", "cubic_coeff_a", "extrapolation_value", "momentum"] { k[n] = .float }
        for n in ["auto_pad", "mode", "coordinate_transformation_mode", "nearest_mode", "direction", "approximate"] { k[n] = .string }
        return k
    }()
}

/// An attribute's expected kind.
enum AttributeKind: CustomStringConvertible {
    case int, ints, float, string

    func matches(_ v: AttributeValue) -> Bool {
        switch (self, v) {
        case (.int, .int), (.ints, .ints), (.float, .float), (.string, .string): true
        default: false
        }
    }

    var description: String {
        switch self {
        case .int: "an integer"
        case .ints: "a list of integers"
        case .float: "a float"
        case .string: "a string"
        }
    }

    static func describe(_ v: AttributeValue) -> String {
        switch v {
        case .float: "a float"
        case .int: "an integer"
        case .string: "a string"
        case .tensor: "a tensor"
        case .graph: "a graph"
        case .floats: "a list of floats"
        case .ints: "a list of integers"
        case .strings: "a list of strings"
        case .tensors: "a list of tensors"
        case .graphs: "a list of graphs"
        case .opaque: "a sparse tensor or type"
        }
    }
}
