/// A dimension of a declared shape: a number, a named symbol (`batch_size`), or nothing known.
public enum Dim: Sendable, Hashable, CustomStringConvertible {
    case value(Int)
    case symbol(String)
    case unknown

    public var value: Int? { if case .value(let v) = self { v } else { nil } }
    public var description: String {
        switch self {
        case .value(let v): "\(v)"
        case .symbol(let s): s
        case .unknown: "?"
        }
    }
}

/// The declared type of a graph value. Non-tensor types (sequence, map, optional) are kept as the
/// packed `TypeProto` bytes so a model round-trips unchanged.
public enum ValueType: Sendable, Equatable {
    /// `elemType` is the ONNX data type code; `shape` nil means rank unknown.
    case tensor(elemType: Int32, shape: [Dim]?)
    case opaque(packedTypeProto: [UInt8])
}

public struct ValueInfo: Sendable, Equatable {
    public var name: String
    public var type: ValueType?
    public var docString: String

    public init(name: String, type: ValueType?, docString: String = "") {
        self.name = name
        self.type = type
        self.docString = docString
    }

    public init(name: String, dtype: DType, shape: [Dim]?) {
        self.init(name: name, type: .tensor(elemType: dtype.rawValue, shape: shape))
    }

    public var dtype: DType? { if case .tensor(let t, _)? = type { DType(rawValue: t) } else { nil } }
    public var shape: [Dim]? { if case .tensor(_, let s)? = type { s } else { nil } }
}

public indirect enum AttributeValue: Sendable, Equatable {
    case float(Float)
    case int(Int64)
    case string(String)
    case tensor(Tensor)
    case graph(Graph)
    case floats([Float])
    case ints([Int64])
    case strings([String])
    case tensors([Tensor])
    case graphs([Graph])
    /// Sparse tensors and type protos, which swiftq does not interpret: the packed `AttributeProto`.
    case opaque(packedAttribute: [UInt8])
}

public struct Attribute: Sendable, Equatable {
    public var name: String
    public var value: AttributeValue
    public var docString: String
    /// Set inside function bodies: the attribute takes the caller's attribute of this name.
    public var refAttrName: String

    public init(name: String, value: AttributeValue, docString: String = "", refAttrName: String = "") {
        self.name = name
        self.value = value
        self.docString = docString
        self.refAttrName = refAttrName
    }
}

public struct Node: Sendable, Equatable {
    public var name: String
    public var opType: String
    /// "" is the default ONNX domain (`ai.onnx`).
    public var domain: String
    /// "" stands for an omitted optional input or output.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [Attribute]
    public var docString: String

    public init(name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
                attributes: [Attribute] = [], docString: String = "") {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
        self.docString = docString
    }

    public var isDefaultDomain: Bool { domain.isEmpty || domain == "ai.onnx" }
    /// The op type, prefixed with its domain outside the default one (`com.microsoft:QLinearConv`).
    public var qualifiedOpType: String { isDefaultDomain ? opType : "\(domain):\(opType)" }

    public func attribute(_ name: String) -> AttributeValue? { attributes.first { $0.name == name }?.value }
    public func int(_ name: String) -> Int64? { if case .int(let v)? = attribute(name) { v } else { nil } }
    public func float(_ name: String) -> Float? { if case .float(let v)? = attribute(name) { v } else { nil } }
    public func string(_ name: String) -> String? { if case .string(let v)? = attribute(name) { v } else { nil } }
    public func ints(_ name: String) -> [Int64]? { if case .ints(let v)? = attribute(name) { v } else { nil } }
    public func floats(_ name: String) -> [Float]? { if case .floats(let v)? = attribute(name) { v } else { nil } }
    public func tensor(_ name: String) -> Tensor? { if case .tensor(let v)? = attribute(name) { v } else { nil } }

    /// The non-empty input at `index`, or nil when absent or omitted.
    public func input(_ index: Int) -> String? { index < inputs.count && !inputs[index].isEmpty ? inputs[index] : nil }

    /// A name for messages: the node name, or its first output when unnamed.
    public var displayName: String { name.isEmpty ? (outputs.first.map { "\(opType) → \($0)" } ?? opType) : name }
}

public struct Initializer: Sendable, Equatable {
    public var name: String
    public var tensor: Tensor
    public var docString: String

    public init(name: String, tensor: Tensor, docString: String = "") {
        self.name = name
        self.tensor = tensor
        self.docString = docString
    }
}

public struct Graph: Sendable, Equatable {
    public var name: String
    public var nodes: [Node]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var valueInfo: [ValueInfo]
    public var initializers: [Initializer]
    public var docString: String

    public init(name: String = "", nodes: [Node] = [], inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
                valueInfo: [ValueInfo] = [], initializers: [Initializer] = [], docString: String = "") {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.valueInfo = valueInfo
        self.initializers = initializers
        self.docString = docString
    }

    /// Initializers by name.
    public var initializerTable: [String: Tensor] {
        Dictionary(initializers.map { ($0.name, $0.tensor) }, uniquingKeysWith: { _, last in last })
    }

    /// Graph inputs that are not initializers (older models list initializers among the inputs too).
    public var dataInputs: [ValueInfo] {
        let inits = Set(initializers.map(\.name))
        return inputs.filter { !inits.contains($0.name) }
    }
}

public struct OpsetID: Sendable, Equatable {
    public var domain: String
    public var version: Int64
    public init(domain: String, version: Int64) {
        self.domain = domain
        self.version = version
    }
}

public struct Model: Sendable, Equatable {
    public var irVersion: Int64
    public var opsetImports: [OpsetID]
    public var producerName: String
    public var producerVersion: String
    public var domain: String
    public var modelVersion: Int64
    public var docString: String
    public var metadataProps: [(key: String, value: String)]
    public var graph: Graph
    /// Model-local functions and training info, which swiftq passes through: packed protos.
    public var packedFunctions: [[UInt8]]
    public var packedTrainingInfo: [[UInt8]]

    public init(irVersion: Int64 = 8, opsetImports: [OpsetID] = [OpsetID(domain: "", version: 13)],
                producerName: String = "swiftq", producerVersion: String = "", domain: String = "",
                modelVersion: Int64 = 0, docString: String = "", metadataProps: [(key: String, value: String)] = [],
                graph: Graph, packedFunctions: [[UInt8]] = [], packedTrainingInfo: [[UInt8]] = []) {
        self.irVersion = irVersion
        self.opsetImports = opsetImports
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.domain = domain
        self.modelVersion = modelVersion
        self.docString = docString
        self.metadataProps = metadataProps
        self.graph = graph
        self.packedFunctions = packedFunctions
        self.packedTrainingInfo = packedTrainingInfo
    }

    /// The opset version imported for the default ONNX domain (0 if none).
    public var opset: Int64 {
        opsetImports.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version ?? 0
    }

    public static func == (a: Model, b: Model) -> Bool {
        a.irVersion == b.irVersion && a.opsetImports == b.opsetImports && a.producerName == b.producerName
            && a.producerVersion == b.producerVersion && a.domain == b.domain && a.modelVersion == b.modelVersion
            && a.docString == b.docString && a.metadataProps.elementsEqual(b.metadataProps, by: { $0 == $1 })
            && a.graph == b.graph && a.packedFunctions == b.packedFunctions && a.packedTrainingInfo == b.packedTrainingInfo
    }
}

extension Graph {
    /// Indices of the nodes reading each value.
    public func consumers() -> [String: [Int]] {
        var table: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() {
            for x in Set(n.inputs) where !x.isEmpty { table[x, default: []].append(i) }
        }
        return table
    }

    /// The index of the node producing each value.
    public func producers() -> [String: Int] {
        var table: [String: Int] = [:]
        for (i, n) in nodes.enumerated() { for o in n.outputs where !o.isEmpty { table[o] = i } }
        return table
    }
}

/// New value and node names that no name of a graph uses (initializers, node outputs, inputs) nor any name given
/// out before: `base`, else `base_1`, `base_2`, …
public struct FreshNames: Sendable {
    private var taken: Set<String>

    public init(_ g: Graph) {
        taken = Set(g.initializers.map(\.name)).union(g.nodes.flatMap(\.outputs)).union(g.inputs.map(\.name))
    }

    public mutating func make(_ base: String) -> String {
        var name = base, k = 1
        while taken.contains(name) { name = "\(base)_\(k)"; k += 1 }
        taken.insert(name)
        return name
    }
}
