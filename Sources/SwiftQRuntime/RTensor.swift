import Foundation
import SwiftQCore

/// 64-byte aligned memory owned by one object; freed in `deinit`.
public final class Storage: @unchecked Sendable {
    public let raw: UnsafeMutableRawPointer
    public let byteCapacity: Int

    public init(byteCapacity: Int) {
        self.byteCapacity = byteCapacity
        raw = UnsafeMutableRawPointer(aligned_alloc(64, max(64, (byteCapacity + 63) / 64 * 64))!)
    }

    deinit { free(raw) }
}

/// A runtime tensor: element type, shape and storage (which views such as Reshape share).
public struct RTensor: @unchecked Sendable {
    public var dtype: DType
    public var shape: [Int]
    public var storage: Storage

    public init(dtype: DType, shape: [Int], storage: Storage) {
        precondition(dtype.byteSize != nil, "no dense storage for \(dtype)")
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// A new tensor with uninitialized contents.
    public init(dtype: DType, shape: [Int]) {
        let n = shape.reduce(1, *) * (dtype.byteSize ?? 1)
        self.init(dtype: dtype, shape: shape, storage: Storage(byteCapacity: n))
    }

    public init(floats: [Float], shape: [Int]) {
        self.init(dtype: .float, shape: shape)
        floats.withUnsafeBufferPointer { f.update(from: $0.baseAddress!, count: floats.count) }
    }

    /// A copy of an IR tensor (float16 and bfloat16 widened to float, double narrowed to float).
    public init(_ t: Tensor) {
        switch t.dtype {
        case .float16, .bfloat16, .double:
            self.init(floats: t.floats(), shape: t.shape)
        default:
            self.init(dtype: t.dtype, shape: t.shape)
            t.bytes.withUnsafeBytes { storage.raw.copyMemory(from: $0.baseAddress!, byteCount: t.bytes.count) }
        }
    }

    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * dtype.byteSize! }
    public var rank: Int { shape.count }

    /// The elements as floats; only for `.float` tensors.
    public var f: UnsafeMutablePointer<Float> { storage.raw.assumingMemoryBound(to: Float.self) }

    public func pointer<T>(_: T.Type) -> UnsafeMutablePointer<T> { storage.raw.assumingMemoryBound(to: T.self) }

    public func floatArray() -> [Float] {
        if dtype == .float { return Array(UnsafeBufferPointer(start: f, count: count)) }
        return doubles().map { Float($0) }
    }

    /// Every element widened to Double (any numeric type), for the generic reference paths.
    public func doubles() -> [Double] {
        let n = count
        switch dtype {
        case .float: return (0..<n).map { Double(f[$0]) }
        case .double: return (0..<n).map { pointer(Double.self)[$0] }
        case .int8, .int4: return (0..<n).map { Double(pointer(Int8.self)[$0]) }
        case .uint8, .bool, .uint4: return (0..<n).map { Double(pointer(UInt8.self)[$0]) }
        case .int16: return (0..<n).map { Double(pointer(Int16.self)[$0]) }
        case .uint16: return (0..<n).map { Double(pointer(UInt16.self)[$0]) }
        case .int32: return (0..<n).map { Double(pointer(Int32.self)[$0]) }
        case .uint32: return (0..<n).map { Double(pointer(UInt32.self)[$0]) }
        case .int64: return (0..<n).map { Double(pointer(Int64.self)[$0]) }
        case .uint64: return (0..<n).map { Double(pointer(UInt64.self)[$0]) }
        case .float16: return (0..<n).map { Double(floatFromHalfBits(pointer(UInt16.self)[$0])) }
        case .bfloat16: return (0..<n).map { Double(floatFromBFloat16Bits(pointer(UInt16.self)[$0])) }
        case .string, .complex64, .complex128: return []
        }
    }

    /// Integer elements exactly (floats truncated toward zero).
    public func int64s() -> [Int64] {
        let n = count
        switch dtype {
        case .int64: return Array(UnsafeBufferPointer(start: pointer(Int64.self), count: n))
        case .int32: return (0..<n).map { Int64(pointer(Int32.self)[$0]) }
        case .uint64: return (0..<n).map { Int64(truncatingIfNeeded: pointer(UInt64.self)[$0]) }
        default: return doubles().map { $0.isFinite ? Int64(exactly: $0.rounded(.towardZero)) ?? 0 : 0 }
        }
    }

    /// A tensor of `dtype` from Double values: integers wrap around like C casts of the integer value
    /// (float values are truncated toward zero first).
    public static func from(doubles v: [Double], dtype: DType, shape: [Int]) -> RTensor {
        let t = RTensor(dtype: dtype, shape: shape)
        func int(_ x: Double) -> Int64 { x.isFinite ? Int64(exactly: x.rounded(.towardZero)) ?? (x < 0 ? .min : .max) : 0 }
        for (i, x) in v.enumerated() {
            switch dtype {
            case .float: t.f[i] = Float(x)
            case .double: t.pointer(Double.self)[i] = x
            case .int8: t.pointer(Int8.self)[i] = Int8(truncatingIfNeeded: int(x))
            case .uint8: t.pointer(UInt8.self)[i] = UInt8(truncatingIfNeeded: int(x))
            case .int4: t.pointer(Int8.self)[i] = Int8(truncatingIfNeeded: (int(x) << 60) >> 60)
            case .uint4: t.pointer(UInt8.self)[i] = UInt8(truncatingIfNeeded: int(x) & 0xF)
            case .bool: t.pointer(UInt8.self)[i] = x != 0 ? 1 : 0
            case .int16: t.pointer(Int16.self)[i] = Int16(truncatingIfNeeded: int(x))
            case .uint16: t.pointer(UInt16.self)[i] = UInt16(truncatingIfNeeded: int(x))
            case .int32: t.pointer(Int32.self)[i] = Int32(truncatingIfNeeded: int(x))
            case .uint32: t.pointer(UInt32.self)[i] = UInt32(truncatingIfNeeded: int(x))
            case .int64: t.pointer(Int64.self)[i] = int(x)
            case .uint64: t.pointer(UInt64.self)[i] = UInt64(truncatingIfNeeded: int(x))
            case .float16: t.pointer(UInt16.self)[i] = halfBitsFromFloat(Float(x))
            case .bfloat16: t.pointer(UInt16.self)[i] = UInt16(Float(x).bitPattern >> 16)
            case .string, .complex64, .complex128: break
            }
        }
        return t
    }

    public static func from(int64s v: [Int64], shape: [Int]) -> RTensor {
        let t = RTensor(dtype: .int64, shape: shape)
        for (i, x) in v.enumerated() { t.pointer(Int64.self)[i] = x }
        return t
    }

    /// Back to an IR tensor (a copy of the bytes).
    public func tensor() -> Tensor {
        Tensor(dtype: dtype, shape: shape, bytes: Array(UnsafeRawBufferPointer(start: storage.raw, count: byteCount)))!
    }

    /// The same data under another shape (no copy).
    public func reshaped(_ s: [Int]) -> RTensor { RTensor(dtype: dtype, shape: s, storage: storage) }
}

/// Row-major strides of `shape`.
public func strides(of shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
    return s
}
