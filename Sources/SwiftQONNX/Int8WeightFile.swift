import CZlib
import Foundation
import SwiftQCore

/// The int8 weight file (`.swq`) swiftq's integer runtime loads beside the Q/DQ ONNX graph. Little-endian:
///
///     "SWQ\0"  u16 version (1)  u16 flags (0)  u32 tensor count
///     per tensor:
///       u16 name length, name (UTF-8)       the quantized initializer's name in the ONNX graph
///       u8 ONNX element type (3 int8, 2 uint8, 6 int32, 22 int4)  u8 bits  i8 axis (−1: per tensor)
///       u8 rank, u64 × rank dims
///       u32 n, f32 × n scales, i32 × n zero points        real = scale × (q − zero point)
///       u64 raw bytes, u64 stored bytes, u32 CRC-32 of the raw bytes, stored bytes (zlib deflate)
///       (raw bytes: one per int8/uint8 value, four per int32, one per two int4 values, the first in the low nibble)
///     u32 CRC-32 of every byte before it
///
/// The ONNX model records the trailing CRC under `swiftq.weights_crc32` in its metadata, so a weight file
/// that does not belong to the graph is detected.
public enum Int8WeightFile {
    public static let magic: [UInt8] = [0x53, 0x57, 0x51, 0x00]
    public static let version: UInt16 = 1
    public static let metadataKey = "swiftq.weights_crc32"

    public struct Record: Sendable, Equatable {
        public var name: String
        public var dtype: DType
        public var bits: Int
        public var axis: Int?
        public var shape: [Int]
        public var scales: [Float]
        public var zeroPoints: [Int32]
        /// The values, one per element, widened to Int32.
        public var values: [Int32]

        public init(name: String, dtype: DType, bits: Int, axis: Int?, shape: [Int], scales: [Float], zeroPoints: [Int32], values: [Int32]) {
            self.name = name; self.dtype = dtype; self.bits = bits; self.axis = axis; self.shape = shape
            self.scales = scales; self.zeroPoints = zeroPoints; self.values = values
        }
    }

    /// The file's bytes; the last four are its CRC-32.
    public static func serialize(_ records: [Record]) throws -> [UInt8] {
        var out = magic
        put(&out, version); put(&out, UInt16(0)); put(&out, UInt32(records.count))
        for r in records {
            let name = Array(r.name.utf8)
            guard name.count <= Int(UInt16.max), r.shape.count <= 255, r.scales.count == r.zeroPoints.count else {
                throw WeightFileError.invalid("tensor '\(r.name)' cannot be stored")
            }
            put(&out, UInt16(name.count)); out += name
            out.append(UInt8(r.dtype.rawValue)); out.append(UInt8(r.bits)); out.append(UInt8(bitPattern: Int8(r.axis ?? -1)))
            out.append(UInt8(r.shape.count)); for d in r.shape { put(&out, UInt64(d)) }
            put(&out, UInt32(r.scales.count))
            for s in r.scales { put(&out, s.bitPattern) }
            for z in r.zeroPoints { put(&out, UInt32(bitPattern: z)) }
            let raw: [UInt8]
            switch r.dtype {
            case .int8: raw = r.values.map { UInt8(bitPattern: Int8(clamping: $0)) }
            case .uint8: raw = r.values.map { UInt8(clamping: $0) }
            case .int32: raw = r.values.withUnsafeBytes { Array($0) }
            case .int4:
                guard r.values.allSatisfy({ (-8...7).contains($0) }) else { throw WeightFileError.invalid("tensor '\(r.name)': a value does not fit int4") }
                raw = Nibbles.pack(r.values.map { UInt8(bitPattern: Int8($0)) })
            default: throw WeightFileError.invalid("tensor '\(r.name)': element type \(r.dtype) is not int8, uint8, int4 or int32")
            }
            let stored = try deflate(raw)
            put(&out, UInt64(raw.count)); put(&out, UInt64(stored.count)); put(&out, crc(raw))
            out += stored
        }
        put(&out, crc(out))
        return out
    }

    /// Reads and checks a weight file: magic, version, every tensor's CRC and the file's.
    public static func read(_ bytes: [UInt8], path: String = "weights") throws -> [Record] {
        var r = Reader(bytes: bytes, path: path)
        guard bytes.count >= 16, Array(bytes[0..<4]) == magic else { throw WeightFileError.corrupt(path, "not a swiftq weight file (bad magic)") }
        let stored = bytes.suffix(4).withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        guard crc(Array(bytes.dropLast(4))) == UInt32(littleEndian: stored) else { throw WeightFileError.corrupt(path, "file checksum mismatch (the file is damaged or cut short)") }
        r.offset = 4
        let v: UInt16 = try r.get()
        guard v == version else { throw WeightFileError.corrupt(path, "version \(v); this swiftq reads version \(version)") }
        let _: UInt16 = try r.get()
        let count: UInt32 = try r.get()
        var records: [Record] = []
        for _ in 0..<count {
            let nameLength: UInt16 = try r.get()
            let name = String(decoding: try r.bytes(Int(nameLength)), as: UTF8.self)
            let code: UInt8 = try r.get(), bits: UInt8 = try r.get(), axis: UInt8 = try r.get(), rank: UInt8 = try r.get()
            guard let dtype = DType(rawValue: Int32(code)) else { throw WeightFileError.corrupt(path, "tensor '\(name)': unknown element type \(code)") }
            var shape: [Int] = []
            for _ in 0..<rank {
                let d: UInt64 = try r.get()
                guard d <= UInt64(Int32.max) else { throw WeightFileError.corrupt(path, "tensor '\(name)': dimension \(d) is out of range") }
                shape.append(Int(d))
            }
            guard axis == 0xFF || Int(axis) < shape.count else {
                throw WeightFileError.corrupt(path, "tensor '\(name)': axis \(Int8(bitPattern: axis)) for rank \(shape.count)")
            }
            let n: UInt32 = try r.get()
            guard axis == 0xFF ? n == 1 : Int(n) == shape[Int(axis)] else {
                throw WeightFileError.corrupt(path, "tensor '\(name)': \(n) scales for shape \(shape)\(axis == 0xFF ? "" : " on axis \(axis)")")
            }
            var scales: [Float] = [], zps: [Int32] = []
            for _ in 0..<n { let s: UInt32 = try r.get(); scales.append(Float(bitPattern: s)) }
            for _ in 0..<n { let z: UInt32 = try r.get(); zps.append(Int32(bitPattern: z)) }
            let rawCount: UInt64 = try r.get(), storedCount: UInt64 = try r.get(), sum: UInt32 = try r.get()
            // Bounded before anything is allocated: the stored bytes lie in the file, and deflate expands at most
            // 1032 times.
            guard storedCount <= UInt64(bytes.count), rawCount <= min(storedCount * 1032 + 64, UInt64(Int32.max)) else {
                throw WeightFileError.corrupt(path, "tensor '\(name)': sizes \(rawCount) / \(storedCount) bytes are impossible")
            }
            let raw = try inflate(try r.bytes(Int(storedCount)), count: Int(rawCount), path: path)
            guard crc(raw) == sum else { throw WeightFileError.corrupt(path, "tensor '\(name)': checksum mismatch") }
            let values: [Int32]
            switch dtype {
            case .int8: values = raw.map { Int32(Int8(bitPattern: $0)) }
            case .uint8: values = raw.map { Int32($0) }
            case .int32: values = raw.withUnsafeBytes { b in (0..<raw.count / 4).map { Int32(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) } }
            case .int4:
                let n = Tensor.elementCount(shape) ?? -1
                guard raw.count == (n + 1) / 2 else { throw WeightFileError.corrupt(path, "tensor '\(name)': \(raw.count) bytes for \(n) int4 values") }
                values = Nibbles.unpack(raw, count: n, signed: true).map { Int32(Int8(bitPattern: $0)) }
            default: throw WeightFileError.corrupt(path, "tensor '\(name)': element type \(dtype)")
            }
            guard values.count == Tensor.elementCount(shape) else { throw WeightFileError.corrupt(path, "tensor '\(name)': \(values.count) values for shape \(shape)") }
            records.append(Record(name: name, dtype: dtype, bits: Int(bits), axis: axis == 0xFF ? nil : Int(axis), shape: shape,
                                  scales: scales, zeroPoints: zps, values: values))
        }
        return records
    }

    /// The CRC-32 a serialized weight file ends with (the value the model records).
    public static func fileChecksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.suffix(4).withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    }

    /// The value a model records under `metadataKey` for the serialized weight file `bytes`: its CRC-32 in hex.
    public static func metadataValue(_ bytes: [UInt8]) -> String { String(format: "%08x", fileChecksum(bytes)) }

    /// CRC-32 (zlib's) of `bytes`.
    public static func crc(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
    }

    static func put<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { out += $0 }
    }

    static func deflate(_ raw: [UInt8]) throws -> [UInt8] {
        var size = compressBound(uLong(raw.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = out.withUnsafeMutableBufferPointer { o in raw.withUnsafeBufferPointer { compress2(o.baseAddress, &size, $0.baseAddress, uLong(raw.count), 6) } }
        guard status == Z_OK else { throw WeightFileError.invalid("zlib compress failed (\(status))") }
        return Array(out[0..<Int(size)])
    }

    static func inflate(_ stored: [UInt8], count: Int, path: String) throws -> [UInt8] {
        var size = uLong(count)
        var out = [UInt8](repeating: 0, count: max(count, 1))
        let status = out.withUnsafeMutableBufferPointer { o in stored.withUnsafeBufferPointer { uncompress(o.baseAddress, &size, $0.baseAddress, uLong(stored.count)) } }
        guard status == Z_OK, Int(size) == count else { throw WeightFileError.corrupt(path, "compressed data is damaged") }
        return Array(out[0..<count])
    }

    struct Reader {
        let bytes: [UInt8]
        let path: String
        var offset = 0
        mutating func bytes(_ n: Int) throws -> [UInt8] {
            guard n >= 0, offset + n <= bytes.count - 4 else { throw WeightFileError.corrupt(path, "truncated") }
            defer { offset += n }
            return Array(bytes[offset..<offset + n])
        }
        mutating func get<T: FixedWidthInteger>() throws -> T {
            let b = try bytes(MemoryLayout<T>.size)
            return T(littleEndian: b.withUnsafeBytes { $0.loadUnaligned(as: T.self) })
        }
    }
}

public enum WeightFileError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    case corrupt(String, String)

    public var description: String {
        switch self {
        case .invalid(let w): "int8 weight file: \(w)"
        case .corrupt(let p, let w): "\(p): \(w)"
        }
    }
}
