import Foundation

/// Integer-only requantization (Jacob et al. 2018; gemmlowp's fixed-point primitives): a positive real
/// multiplier M = s_in·s_w/s_out is stored as a Q31 mantissa M0 in [2^30, 2^31) and a power of two,
/// M = M0 · 2^(exponent − 31). Applying it to an int32 accumulator uses no floating point:
/// acc · 2^max(exponent, 0), then SaturatingRoundingDoublingHighMul with M0 (rounds half away from zero at
/// bit 31), then RoundingDivideByPOT by max(−exponent, 0) (rounds half away from zero). The result is within
/// 1 of round(acc · M); it differs when acc · M lies within 2^−(r+1) of a half, r the right shift (rare for
/// the multipliers of real layers, whose right shifts are 8 or more).
public struct FixedPointMultiplier: Sendable, Equatable {
    public let mantissa: Int32
    public let exponent: Int

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

    /// round(acc · M) in integers only (see the type's description).
    public func apply(_ acc: Int32) -> Int32 {
        let left = max(exponent, 0), right = max(-exponent, 0)
        let shifted = Int32(clamping: Int64(acc) << left)
        return Self.roundingDivideByPOT(Self.saturatingRoundingDoublingHighMul(shifted, mantissa), right)
    }

    /// gemmlowp's SaturatingRoundingDoublingHighMul: (a · b · 2 + 2^31 rounding) / 2^32, rounding half away from zero.
    public static func saturatingRoundingDoublingHighMul(_ a: Int32, _ b: Int32) -> Int32 {
        if a == .min && b == .min { return .max }
        let ab = Int64(a) * Int64(b)
        let nudge: Int64 = ab >= 0 ? 1 << 30 : 1 - (1 << 30)
        return Int32((ab + nudge) / (1 << 31))
    }

    /// gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded half away from zero.
    public static func roundingDivideByPOT(_ x: Int32, _ exponent: Int) -> Int32 {
        guard exponent > 0 else { return x }
        guard exponent < 32 else { return 0 }
        let mask = Int32((Int64(1) << exponent) - 1)
        let remainder = x & mask
        let threshold = (mask >> 1) + (x < 0 ? 1 : 0)
        return (x >> Int32(exponent)) + (remainder > threshold ? 1 : 0)
    }
}
