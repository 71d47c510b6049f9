/// A dense tensor: element type, static shape and little-endian element bytes.
///
/// Contract: `bytes.count == elementCount * dtype.byteSize!`. Readers check this and throw
/// `ModelError` on mismatch; the convenience initializers establish it by construction.
public struct Tensor: Sendable, Equatable {
    public var dtype: DType
    public var shape: [Int]
    public var bytes: [UInt8]

    /// Builds a tensor from raw bytes; returns nil if the byte count does not fit the shape and type.
    public init?(dtype: DType, shape: [Int], bytes: [UInt8]) {
        guard let size = dtype.byteSize, let n = Tensor.elementCount(shape), n.multipliedReportingOverflow(by: size) == (bytes.count, false)
        else { return nil }
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    public init(floats: [Float], shape: [Int]) {
        precondition(Tensor.elementCount(shape) == floats.count, "shape \(shape) does not hold \(floats.count) values")
        self.dtype = .float
        self.shape = shape
        self.bytes = floats.withUnsafeBytes { Array($0) }
    }

    public init(int64s: [Int64], shape: [Int]) {
        precondition(Tensor.elementCount(shape) == int64s.count, "shape \(shape) does not hold \(int64s.count) values")
        self.dtype = .int64
        self.shape = shape
        self.bytes = int64s.withUnsafeBytes { Array($0) }
    }

    /// Builds a tensor of any fixed-width integer element type from its values.
    public init<T: FixedWidthInteger>(integers: [T], dtype: DType, shape: [Int]) {
        precondition(dtype.byteSize == MemoryLayout<T>.size, "\(T.self) does not store \(dtype)")
        precondition(Tensor.elementCount(shape) == integers.count, "shape \(shape) does not hold \(integers.count) values")
        self.dtype = dtype
        self.shape = shape
        self.bytes = integers.map { $0.littleEndian }.withUnsafeBytes { Array($0) }
    }

    /// Product of `shape`, or nil if a dimension is negative or the product overflows.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            if o { return nil }
            n = p
        }
        return n
    }

    public var elementCount: Int { bytes.count / (dtype.byteSize ?? 1) }

    private func load<T>(_: T.Type) -> [T] {
        bytes.withUnsafeBytes { raw in
            (0..<elementCount).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) }
        }
    }

    /// The values widened or converted to Float (float16, bfloat16 and double exactly or by rounding; integers by value).
    public func floats() -> [Float] {
        switch dtype {
        case .float:
            return [Float](unsafeUninitializedCapacity: elementCount) { buf, n in
                bytes.withUnsafeBytes { memcpyBytes(UnsafeMutableRawBufferPointer(buf), $0) }
                n = elementCount
            }
        case .float16: return load(UInt16.self).map { floatFromHalfBits(UInt16(littleEndian: $0)) }
        case .bfloat16: return load(UInt16.self).map { floatFromBFloat16Bits(UInt16(littleEndian: $0)) }
        case .double: return load(Double.self).map { Float($0) }
        default: return int64s().map { Float($0) }
        }
    }

    /// The values as Int64 (floating-point values truncated toward zero; bool as 0/1).
    public func int64s() -> [Int64] {
        switch dtype {
        case .int64: return load(Int64.self).map { Int64(littleEndian: $0) }
        case .int32: return load(Int32.self).map { Int64(Int32(littleEndian: $0)) }
        case .int16: return load(Int16.self).map { Int64(Int16(littleEndian: $0)) }
        case .int8, .int4: return load(Int8.self).map { Int64($0) }
        case .uint8, .bool, .uint4: return bytes.map { Int64($0) }
        case .uint16: return load(UInt16.self).map { Int64(UInt16(littleEndian: $0)) }
        case .uint32: return load(UInt32.self).map { Int64(UInt32(littleEndian: $0)) }
        case .uint64: return load(UInt64.self).map { Int64(truncatingIfNeeded: UInt64(littleEndian: $0)) }
        case .float, .float16, .bfloat16, .double:
            return floats().map { $0.isFinite ? Int64(exactly: $0.rounded(.towardZero)) ?? ($0 < 0 ? .min : .max) : 0 }
        case .string, .complex64, .complex128: return []
        }
    }
}

@inline(__always)
func memcpyBytes(_ dst: UnsafeMutableRawBufferPointer, _ src: UnsafeRawBufferPointer) {
    if let d = dst.baseAddress, let s = src.baseAddress { d.copyMemory(from: s, byteCount: min(dst.count, src.count)) }
}
