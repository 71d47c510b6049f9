/// Element types of ONNX tensors (`TensorProto.DataType` codes).
public enum DType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7, string = 8, bool = 9
    case float16 = 10, double = 11, uint32 = 12, uint64 = 13, complex64 = 14, complex128 = 15, bfloat16 = 16

    /// Bytes per element, or nil for types swiftq does not hold as dense data (string, complex).
    public var byteSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16, .float16, .bfloat16: 2
        case .float, .int32, .uint32: 4
        case .int64, .uint64, .double: 8
        case .string, .complex64, .complex128: nil
        }
    }

    /// The values an 8-, 16- or 32-bit integer type holds (the saturation range of quantized tensors).
    public var integerRange: (lo: Int32, hi: Int32)? {
        switch self {
        case .uint8: (0, 255)
        case .int8: (-128, 127)
        case .uint16: (0, 65535)
        case .int16: (-32768, 32767)
        case .int32: (.min, .max)
        default: nil
        }
    }

    public var isFloatingPoint: Bool { self == .float || self == .float16 || self == .double || self == .bfloat16 }

    /// The ONNX spelling (`FLOAT`, `INT8`, …).
    public var description: String {
        switch self {
        case .float: "FLOAT"
        case .uint8: "UINT8"
        case .int8: "INT8"
        case .uint16: "UINT16"
        case .int16: "INT16"
        case .int32: "INT32"
        case .int64: "INT64"
        case .string: "STRING"
        case .bool: "BOOL"
        case .float16: "FLOAT16"
        case .double: "DOUBLE"
        case .uint32: "UINT32"
        case .uint64: "UINT64"
        case .complex64: "COMPLEX64"
        case .complex128: "COMPLEX128"
        case .bfloat16: "BFLOAT16"
        }
    }

    /// A readable name for any ONNX data type code, including ones newer than this enum.
    public static func name(ofCode code: Int32) -> String {
        if let t = DType(rawValue: code) { return t.description }
        switch code {
        case 17: return "FLOAT8E4M3FN"
        case 18: return "FLOAT8E4M3FNUZ"
        case 19: return "FLOAT8E5M2"
        case 20: return "FLOAT8E5M2FNUZ"
        case 21: return "UINT4"
        case 22: return "INT4"
        case 23: return "FLOAT4E2M1"
        default: return "data type \(code)"
        }
    }
}
