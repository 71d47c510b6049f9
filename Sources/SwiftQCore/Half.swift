/// IEEE 754 binary16 and bfloat16 bit patterns widened to Float, exactly (every such value is a Float).
@inlinable
public func floatFromHalfBits(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int((h >> 10) & 0x1F)
    let mant = UInt32(h & 0x3FF)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        // Subnormal: value = mant * 2^-24.
        let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | (UInt32(exp + 112) << 23) | (mant << 13))
}

@inlinable
public func floatFromBFloat16Bits(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

/// Float to binary16 bits, rounding to nearest even (overflow gives infinity).
public func halfBitsFromFloat(_ f: Float) -> UInt16 {
    let bits = f.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    if f.isNaN { return sign | 0x7E00 }
    let a = abs(f)
    if a >= 65520 { return sign | 0x7C00 }
    if a < Float(sign: .plus, exponent: -14, significand: 1) {
        // Subnormal range: quantize to multiples of 2^-24 with round-half-even.
        let q = (a * Float(sign: .plus, exponent: 24, significand: 1)).rounded(.toNearestOrEven)
        return sign | UInt16(q)
    }
    let e = Int((bits >> 23) & 0xFF) - 127 + 15
    var mant = bits & 0x7F_FFFF
    var exp = UInt32(e)
    let rem = mant & 0x1FFF
    mant >>= 13
    if rem > 0x1000 || (rem == 0x1000 && (mant & 1) == 1) {
        mant += 1
        if mant == 0x400 { mant = 0; exp += 1 }
    }
    return sign | UInt16(exp << 10) | UInt16(mant)
}
