import Foundation
import SwiftQCore

/// One quantization convention everywhere: real = scale × (q − zeroPoint), q rounded half to even (as ONNX
/// QuantizeLinear does) and clamped to [qmin, qmax].
public struct QuantParams: Sendable, Equatable {
    /// One scale (per-tensor) or one per channel along `axis`.
    public var scales: [Float]
    public var zeroPoints: [Int32]
    public var axis: Int?
    /// The element type of the quantized tensor: .uint8, .int8, .int4 (weights of 4 bits or fewer) or .int32.
    public var dtype: DType
    /// Significant bits (2…8 inside an 8-bit container, or 2…4 in a 4-bit one; 32 for biases).
    public var bits: Int
    public var qmin: Int32
    public var qmax: Int32

    public init(scales: [Float], zeroPoints: [Int32], axis: Int?, dtype: DType, bits: Int, qmin: Int32, qmax: Int32) {
        self.scales = scales
        self.zeroPoints = zeroPoints
        self.axis = axis
        self.dtype = dtype
        self.bits = bits
        self.qmin = qmin
        self.qmax = qmax
    }

    /// Activation parameters for the real range [lo, hi] (widened to hold 0, so 0 is exact): asymmetric
    /// uint8 over 2^bits − 1 steps, or symmetric int8 with zero point 0 over ±(2^(bits−1) − 1).
    public static func activation(lo: Float, hi: Float, bits: Int, symmetric: Bool) -> QuantParams {
        let lo = Swift.min(lo.isFinite ? lo : 0, 0), hi = Swift.max(hi.isFinite ? hi : 0, 0)
        if symmetric {
            let qmax = Int32((1 << (bits - 1)) - 1)
            let t = Swift.max(abs(lo), abs(hi))
            return QuantParams(scales: [t > 0 ? t / Float(qmax) : 1], zeroPoints: [0], axis: nil, dtype: .int8, bits: bits, qmin: -qmax, qmax: qmax)
        }
        let qmax = Int32((1 << bits) - 1)
        guard hi > lo else { return QuantParams(scales: [1], zeroPoints: [0], axis: nil, dtype: .uint8, bits: bits, qmin: 0, qmax: qmax) }
        let scale = (hi - lo) / Float(qmax)
        let zp = Int32(Swift.min(Swift.max((-lo / scale).rounded(.toNearestOrEven), 0), Float(qmax)))
        return QuantParams(scales: [scale], zeroPoints: [zp], axis: nil, dtype: .uint8, bits: bits, qmin: 0, qmax: qmax)
    }

    /// Symmetric weight parameters, per channel along `axis` (maxima per channel) or per tensor.
    public static func weight(absMax: [Float], axis: Int?, bits: Int, packed: Bool = false) -> QuantParams {
        let qmax = Float((1 << (bits - 1)) - 1)
        return weight(steps: absMax.map { $0 > 0 && $0.isFinite ? $0 / qmax : 1 }, axis: axis, bits: bits, packed: packed)
    }

    /// Symmetric weight parameters with the given steps (one per channel along `axis`, or one); INT4 tensors
    /// when `packed` and the bits fit, else INT8.
    public static func weight(steps: [Float], axis: Int?, bits: Int, packed: Bool = false) -> QuantParams {
        let qmax = Int32((1 << (bits - 1)) - 1)
        return QuantParams(scales: steps, zeroPoints: Array(repeating: 0, count: steps.count), axis: axis, dtype: packed && bits <= 4 ? .int4 : .int8,
                           bits: bits, qmin: -qmax, qmax: qmax)
    }

    /// q = clamp(round_half_even(x / scale) + zeroPoint) with the scale and zero point of `channel`.
    @inline(__always)
    public func quantize(_ x: Float, channel: Int = 0) -> Int32 {
        let c = scales.count == 1 ? 0 : channel
        // In Double: int32 bias bounds are not exact in Float, and a huge ratio must clamp, not trap.
        let q = (Double(x) / Double(scales[c])).rounded(.toNearestOrEven) + Double(zeroPoints[c])
        return Int32(Swift.min(Swift.max(q.isNaN ? 0 : q, Double(qmin)), Double(qmax)))
    }
}
