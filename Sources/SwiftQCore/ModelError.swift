/// Everything that can be wrong with a model file or graph, with what a user needs to find it.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    /// The bytes are not an ONNX ModelProto (corrupt, truncated, or another kind of file).
    case notONNX(path: String, reason: String)
    /// A node whose op is not an ONNX operator in the opsets swiftq knows.
    case unknownOp(path: String, node: String, opType: String, domain: String)
    /// A tensor (initializer, Constant value or attribute) of a type swiftq cannot hold.
    case unsupportedTensorType(path: String, tensor: String, type: String)
    /// The file parses but breaks a rule of the ONNX format (missing data, bad shape, dangling input, …).
    case invalid(path: String, what: String)
    /// Shape inference could not give a node's output shape.
    case shape(node: String, opType: String, what: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .fileNotFound(let p): "\(p): no such file"
        case .unreadable(let p, let r): "\(p): cannot read: \(r)"
        case .notONNX(let p, let r): "\(p): not a valid ONNX model: \(r)"
        case .unknownOp(let p, let n, let op, let d):
            "\(p): node '\(n)': unknown operator '\(op)'" + (d.isEmpty ? " (not in the ONNX standard)" : " in domain '\(d)'")
        case .unsupportedTensorType(let p, let t, let ty): "\(p): tensor '\(t)': unsupported tensor type \(ty)"
        case .invalid(let p, let w): "\(p): invalid model: \(w)"
        case .shape(let n, let op, let w): "node '\(n)' (\(op)): \(w)"
        case .writeFailed(let p, let r): "\(p): cannot write: \(r)"
        }
    }
}
