/// The requantization multiplier M = s_in·s_w/s_out as a fixed-point multiplier and shift (Jacob et al. 2018),
/// M = mantissa · 2^−shift with a 24-bit mantissa: exactly the float32 value of M, computed in Float as ONNX
/// Runtime computes it (`ortConv`, `ortPool`).
///
/// `apply` is the integer runtime's requantization rule, in integers only: round(v) to 24 significant bits,
/// multiply by the mantissa (exact, 48 bits), round the product to 24 significant bits, then shift right by
/// `shift` rounding to the nearest integer; every rounding half to even. That is what IEEE 754 float32 does
/// for round_half_even(float(v) · M), and so what ONNX Runtime's QLinearConv, QLinearGlobalAveragePool and
/// the float requantization of XNNPACK and TensorRT compute: the integer runtime agrees with them bit for bit.
/// (A 31-bit multiplier with a single rounding, as gemmlowp-style kernels use, differs from that in about one
/// output in 10^5; on MobileNetV2 such one-LSB differences grow through the network until about 3% of top-1
/// predictions change.) The C kernels compute the same function with float32 instructions
/// (cvtdq2ps, mulps, cvtps2dq under round-to-nearest-even); tests check both against `apply`.
public struct FixedPointMultiplier: Sendable, Equatable {
    /// In [2^23, 2^24) for a normal float; below for a subnormal one.
    public let mantissa: Int64
    /// M = mantissa · 2^−shift (negative for M ≥ 2^24).
    public let shift: Int

    /// The float32 multiplier this represents, exactly.
    public var float: Float { Float(sign: .plus, exponent: -shift, significand: Float(mantissa)) }

    /// The multiplier of `m` (finite and ≥ 0; 0 gives a multiplier that maps everything to 0).
    public init(_ m: Float) {
        precondition(m.isFinite && m >= 0, "requantization multiplier \(m) is not a finite non-negative number")
        if m == 0 { mantissa = 0; shift = 0; return }
        let bits = m.bitPattern
        let biased = Int((bits >> 23) & 0xFF), fraction = Int64(bits & 0x7F_FFFF)
        if biased == 0 { mantissa = fraction; shift = 149 } else { mantissa = fraction | 0x80_0000; shift = 150 - biased }
    }

    /// ONNX Runtime's QLinearConv multiplier: (s_x · s_w) / s_y in float32.
    public static func ortConv(x: Float, w: Float, y: Float) -> FixedPointMultiplier { FixedPointMultiplier(x * w / y) }

    /// ONNX Runtime's QLinearGlobalAveragePool multiplier for `count` summed values: s_x / (s_y · count) in float32.
    public static func ortPool(x: Float, y: Float, count: Int) -> FixedPointMultiplier { FixedPointMultiplier(x / (y * Float(count))) }

    /// round_half_even(v · M) with the float32 roundings described above, in integers; saturated to Int32.
    public func apply(_ v: Int32) -> Int32 {
        if mantissa == 0 || v == 0 { return 0 }
        let negative = v < 0
        let a = Self.round24(UInt64(v.magnitude))           // float(v)
        let p = Self.round24(a * UInt64(mantissa))          // float(v) · M in float32 (before the power of two)
        let r: UInt64
        if shift <= 0 {
            r = -shift >= 40 || p >= UInt64(1) << (63 + shift) ? UInt64(Int32.max) + 1 : p << UInt64(-shift)
        } else {
            r = Self.roundShift(p, shift)
        }
        if negative { return r > UInt64(Int32.max) + 1 ? Int32.min : Int32(truncatingIfNeeded: 0 &- Int64(r)) }
        return r > UInt64(Int32.max) ? Int32.max : Int32(r)
    }

    /// `x` rounded to 24 significant bits, half to even.
    static func round24(_ x: UInt64) -> UInt64 {
        let bits = 64 - x.leadingZeroBitCount
        guard bits > 24 else { return x }
        let s = bits - 24
        return roundShift(x, s) << UInt64(s)
    }

    /// x / 2^s rounded to the nearest integer, half to even (s ≥ 1).
    static func roundShift(_ x: UInt64, _ s: Int) -> UInt64 {
        if s >= 64 { return 0 }
        let q = x >> UInt64(s), rem = x & ((UInt64(1) << UInt64(s)) - 1), half = UInt64(1) << UInt64(s - 1)
        return rem > half || (rem == half && q & 1 == 1) ? q + 1 : q
    }
}
