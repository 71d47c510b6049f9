import Foundation

/// Integer-only requantization (Jacob et al. 2018): a positive real multiplier M = s_in·s_w/s_out is stored
/// as a Q31 mantissa M0 in [2^30, 2^31) and a power of two, M = M0 · 2^(exponent − 31). `apply` multiplies
/// the int32 accumulator by M0 in 64 bits and shifts right by 31 − exponent with one rounding, half to even
/// (as QuantizeLinear and ONNX Runtime's float requantization round), so it equals round(acc · M0 · 2^(exponent − 31))
/// exactly. (gemmlowp's two-step rounding, SRDHM then a rounding shift, differs from this by one LSB often
/// enough to cost agreement with ONNX Runtime, which rounds once.)
public struct FixedPointMultiplier: Sendable, Equatable {
    public let mantissa: Int32
    public let exponent: Int

    /// The right shift the C kernels apply after the 64-bit product (31 − exponent, at most 63: beyond that the
    /// result is 0 either way, as |acc · M0| < 2^62).
    public var kernelShift: Int32 { Int32(min(31 - exponent, 63)) }

    public init(mantissa: Int32, exponent: Int) {
        self.mantissa = mantissa
        self.exponent = exponent
    }

    /// The representation of `real` (> 0); nil for 0, negative, NaN or a value beyond 2^31.
    public init?(_ real: Double) {
        guard real > 0, real.isFinite, real < 2_147_483_648 else { return nil }
        let (fraction, exp) = (frexp(real).0, frexp(real).1)   // real = fraction · 2^exp, fraction in [0.5, 1)
        var q = Int64((fraction * 2_147_483_648).rounded())
        var e = exp
        if q == 1 << 31 { q /= 2; e += 1 }
        guard e > -62 else { return nil }
        mantissa = Int32(q)
        exponent = e
    }

    /// round_half_even(acc · M0 · 2^(exponent − 31)), saturated to Int32, in integers only.
    public func apply(_ acc: Int32) -> Int32 {
        let p = Int64(acc) * Int64(mantissa)
        let total = 31 - exponent
        if total <= 0 { return Int32(clamping: p << min(-total, 32)) }
        if total >= 63 { return 0 }
        let q = p >> Int64(total)                       // floor
        let rem = p - (q << Int64(total))               // in [0, 2^total)
        let half = Int64(1) << Int64(total - 1)
        let r = rem > half || (rem == half && q & 1 == 1) ? q + 1 : q
        return Int32(clamping: r)
    }
}
