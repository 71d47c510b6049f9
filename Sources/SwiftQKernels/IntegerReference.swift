/// Integer reference kernels: plain loops that define what the integer runtime computes, exactly. Values
/// arrive widened to Int32; products and sums are Int32 (int8 × int8 summed over fewer than 2^16 terms
/// cannot overflow). Convention: real = scale × (q − zero_point).
public enum IntegerReference {
    /// acc[n][m][oh][ow] = Σ (x − xZero) · (w − wZero[m]) over the window (+ bias[m]); padding contributes 0
    /// (it is xZero in the quantized input). `wZero` holds 1 value or one per output channel.
    public static func conv(x: [Int32], xZero: Int32, w: [Int32], wZero: [Int32], bias: [Int32]?, _ g: ConvGeometry) -> [Int32] {
        var y = [Int32](repeating: 0, count: g.batch * g.outChannels * g.outHeight * g.outWidth)
        for n in 0..<g.batch {
            for m in 0..<g.outChannels {
                let wz = wZero.count == 1 ? wZero[0] : wZero[m]
                for oh in 0..<g.outHeight {
                    for ow in 0..<g.outWidth {
                        var s: Int32 = bias?[m] ?? 0
                        g.forEachTap(n: n, m: m, oh: oh, ow: ow) { xi, wi in s = s &+ (x[xi] &- xZero) &* (w[wi] &- wz) }
                        y[((n * g.outChannels + m) * g.outHeight + oh) * g.outWidth + ow] = s
                    }
                }
            }
        }
        return y
    }

    /// C[i][j] = Σ_k (A[i][k] − aZero[i]) · (B[k][j] − bZero[j]) for one M×K by K×N product; `aZero` holds 1
    /// value or one per row, `bZero` 1 or one per column.
    public static func matmul(a: ArraySlice<Int32>, aZero: [Int32], b: ArraySlice<Int32>, bZero: [Int32], m: Int, n: Int, k: Int) -> [Int32] {
        var c = [Int32](repeating: 0, count: m * n)
        let a0 = a.startIndex, b0 = b.startIndex
        for i in 0..<m {
            let az = aZero.count == 1 ? aZero[0] : aZero[i]
            for j in 0..<n {
                let bz = bZero.count == 1 ? bZero[0] : bZero[j]
                var s: Int32 = 0
                for p in 0..<k { s = s &+ (a[a0 + i * k + p] &- az) &* (b[b0 + p * n + j] &- bz) }
                c[i * n + j] = s
            }
        }
        return c
    }

    /// q = clamp(round_half_even(acc × multiplier) + zero, lo, hi): the requantization of an int32 accumulator
    /// to the output's scale, multiplier = s_in · s_w / s_out (computed in Float, applied in Double, as the
    /// ONNX reference does).
    public static func requantize(_ acc: Int32, multiplier: Float, zero: Int32, lo: Int32, hi: Int32) -> Int32 {
        let r = (Double(acc) * Double(multiplier)).rounded(.toNearestOrEven) + Double(zero)
        return Int32(min(max(r, Double(lo)), Double(hi)))
    }
}
