import CKernels

/// int8 weights packed once for `FastInteger.conv` (group 1): the GEMM layout and each row's sum, which
/// turns Σ w·x into Σ w·(x − zero) without touching the activations.
public final class PackedInt8Weights: @unchecked Sendable {
    public let rows: Int, cols: Int
    let packed: [Int8]
    let rowSums: [Int32]

    /// `values`: rows × cols int8 weights (widened to Int32), row-major.
    public init(rows: Int, cols: Int, values: [Int32]) {
        self.rows = rows
        self.cols = cols
        let a = values.map { Int8(clamping: $0) }
        var p = [Int8](repeating: 0, count: sq_qgemm_packed_size(Int32(rows), Int32(cols)))
        sq_qgemm_pack_a(Int32(rows), Int32(cols), a, &p)
        packed = p
        rowSums = (0..<rows).map { r in (0..<cols).reduce(Int32(0)) { $0 &+ values[r * cols + $1] } }
    }
}

public enum FastInteger {
    /// The int32 accumulators of a group-1 convolution, the same integers as `IntegerReference.conv`:
    /// uint8 im2col padded with the zero point, the int8 GEMM (VNNI when present), then
    /// acc = Σ w·x − zero·Σ w (+ bias). `x` holds values in [lo, lo + 255] (lo −128 for int8 activations).
    public static func conv(x: [Int32], xZero: Int32, lo: Int32, w: PackedInt8Weights, bias: [Int32]?, _ g: ConvGeometry, threads: Int) -> [Int32] {
        precondition(g.group == 1 && w.rows == g.outChannels && w.cols == g.channels * g.kernelH * g.kernelW)
        let ohw = g.outHeight * g.outWidth, k = w.cols, m = w.rows
        let zero = xZero - lo
        var y = [Int32](repeating: 0, count: g.batch * m * ohw)
        var col = [UInt8](repeating: 0, count: k * ohw)
        var acc = [Int32](repeating: 0, count: ohw * m)
        for n in 0..<g.batch {
            let image = x[(n * g.channels * g.height * g.width)..<((n + 1) * g.channels * g.height * g.width)].map { UInt8(truncatingIfNeeded: $0 - lo) }
            sq_im2col_u8(image, Int32(g.channels), Int32(g.height), Int32(g.width), Int32(g.kernelH), Int32(g.kernelW), Int32(g.strideH), Int32(g.strideW),
                         Int32(g.dilationH), Int32(g.dilationW), Int32(g.padTop), Int32(g.padLeft), Int32(g.outHeight), Int32(g.outWidth), UInt8(zero), &col)
            w.packed.withUnsafeBufferPointer { a in
                col.withUnsafeBufferPointer { b in
                    acc.withUnsafeMutableBufferPointer { c in
                        let parts = threads > 1 && ohw >= 64 ? threads : 1
                        let chunk = (ohw + parts - 1) / parts
                        let (ap, bp, cp) = (a.baseAddress!, b.baseAddress!, c.baseAddress!)
                        parallelFor(parts, threads: threads) { p in
                            let n0 = p * chunk, n1 = min(ohw, n0 + chunk)
                            if n0 < n1 { sq_qgemm_u8s8(Int32(m), Int32(ohw), Int32(k), ap, bp, Int32(ohw), cp, Int32(m), Int32(n0), Int32(n1)) }
                        }
                    }
                }
            }
            for o in 0..<m {
                let shift = (bias?[o] ?? 0) &- zero &* w.rowSums[o]
                let base = (n * m + o) * ohw
                for p in 0..<ohw { y[base + p] = acc[p * m + o] &+ shift }
            }
        }
        return y
    }

    /// The int32 accumulators of a depthwise convolution (dilation 1), the same integers as
    /// `IntegerReference.conv`; `x` holds values in [lo, lo + 255].
    public static func depthwise(x: [Int32], xZero: Int32, lo: Int32, w: [Int8], bias: [Int32]?, _ g: ConvGeometry, threads: Int) -> [Int32] {
        precondition(g.isDepthwise && g.dilationH == 1 && g.dilationW == 1 && w.count == g.channels * g.kernelH * g.kernelW)
        let ohw = g.outHeight * g.outWidth
        var y = [Int32](repeating: 0, count: g.batch * g.channels * ohw)
        let bytes = x.map { UInt8(truncatingIfNeeded: $0 - lo) }
        bytes.withUnsafeBufferPointer { xb in
            w.withUnsafeBufferPointer { wb in
                y.withUnsafeMutableBufferPointer { yb in
                    let (xp, wp, yp) = (xb.baseAddress!, wb.baseAddress!, yb.baseAddress!)
                    for n in 0..<g.batch {
                        let parts = min(threads, g.channels), per = (g.channels + parts - 1) / parts
                        parallelFor(parts, threads: threads) { p in
                            let c0 = p * per, c1 = min(g.channels, c0 + per)
                            guard c0 < c1 else { return }
                            let run = { (b: UnsafePointer<Int32>?) in
                                sq_depthwise_u8s8(xp + n * g.channels * g.height * g.width, Int32(g.height), Int32(g.width), wp, Int32(g.kernelH), Int32(g.kernelW),
                                                  Int32(g.strideH), Int32(g.strideW), Int32(g.padTop), Int32(g.padLeft), xZero - lo,
                                                  yp + n * g.channels * ohw, Int32(g.outHeight), Int32(g.outWidth), b, Int32(c0), Int32(c1))
                            }
                            if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress) } } else { run(nil) }
                        }
                    }
                }
            }
        }
        return y
    }
}
