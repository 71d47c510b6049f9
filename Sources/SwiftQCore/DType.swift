/// Element types of ONNX tensors (`TensorProto.DataType` codes).
public enum DType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case float = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7, string = 8, bool = 9
    case float16 = 10, double = 11, uint32 = 12, uint64 = 13, complex64 = 14, complex128 = 15, bfloat16 = 16
    /// 4-bit integers (opset 21). Files pack them two per byte, first element in the low nibble; in memory swiftq
    /// holds one per byte (INT4 sign-extended), so every integer path reads them as it reads INT8/UINT8.
    case uint4 = 21, int4 = 22

    /// Bytes per element, or nil for types swiftq does not hold as dense data (string, complex).
    public var byteSize: Int? {
        switch self {
        case .uint8, .int8, .bool, .uint4, .int4: 1
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
        case .uint4: (0, 15)
        case .int4: (-8, 7)
        case .uint16: (0, 65535)
        case .int16: (-32768, 32767)
        case .int32: (.min, .max)
        default: nil
        }
    }

    /// Stored two per byte in files (INT4, UINT4).
    public var isNibble: Bool { self == .int4 || self == .uint4 }

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
        case .uint4: "UINT4"
        case .int4: "INT4"
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

/// Two 4-bit values per byte, the first in the low nibble (ONNX's INT4/UINT4 layout).
public enum Nibbles {
    /// Packs one value per byte (only the low 4 bits of each are kept).
    public static func pack(_ values: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (values.count + 1) / 2)
        for (i, v) in values.enumerated() { out[i / 2] |= (v & 0xF) << (i % 2 == 0 ? 0 : 4) }
        return out
    }

    /// `count` values from packed bytes, one per byte; INT4 (`signed`) sign-extended.
    public static func unpack(_ packed: [UInt8], count: Int, signed: Bool) -> [UInt8] {
        (0..<count).map { i in
            let v = (packed[i / 2] >> (i % 2 == 0 ? 0 : 4)) & 0xF
            return signed && v >= 8 ? v | 0xF0 : v
        }
    }
}
