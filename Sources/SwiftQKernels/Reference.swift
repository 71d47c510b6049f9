/// Reference kernels: plain loops that define what the fast kernels must compute.
public enum Reference {
    /// y = conv(x, w) + bias, clamped to [lo, hi]. x: N×C×H×W, w: M×(C/group)×KH×KW, y: N×M×OH×OW.
    public static func conv(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                            y: UnsafeMutablePointer<Float>, _ g: ConvGeometry, lo: Float = -.infinity, hi: Float = .infinity) {
        for n in 0..<g.batch {
            for m in 0..<g.outChannels {
                for oh in 0..<g.outHeight {
                    for ow in 0..<g.outWidth {
                        var s: Float = bias?[m] ?? 0
                        g.forEachTap(n: n, m: m, oh: oh, ow: ow) { xi, wi in s += x[xi] * w[wi] }
                        y[((n * g.outChannels + m) * g.outHeight + oh) * g.outWidth + ow] = min(max(s, lo), hi)
                    }
                }
            }
        }
    }

    /// Max or average pooling of one plane (g.height × g.width into g.outHeight × g.outWidth): every window
    /// element checked against the image and the padding. Averages divide by the cells inside the image, or
    /// inside the padded image with `countIncludePad`.
    public static func pool(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, _ g: ConvGeometry, isMax: Bool, countIncludePad: Bool) {
        for oh in 0..<g.outHeight {
            for ow in 0..<g.outWidth {
                var best = -Float.infinity, sum: Float = 0
                var inside = 0, padded = 0
                for kh in 0..<g.kernelH {
                    let ih = oh * g.strideH - g.padTop + kh * g.dilationH
                    let rowInPad = ih >= -g.padTop && ih < g.height + g.padBottom
                    for kw in 0..<g.kernelW {
                        let iw = ow * g.strideW - g.padLeft + kw * g.dilationW
                        if rowInPad && iw >= -g.padLeft && iw < g.width + g.padRight { padded += 1 }
                        guard ih >= 0, ih < g.height, iw >= 0, iw < g.width else { continue }
                        let v = x[ih * g.width + iw]
                        best = max(best, v)
                        sum += v
                        inside += 1
                    }
                }
                y[oh * g.outWidth + ow] = isMax ? best : sum / Float(max(1, countIncludePad ? padded : inside))
            }
        }
    }

    /// C[M×N] = A[M×K] · B[K×N] (+ bias per row), row-major with the given row strides.
    public static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            c: UnsafeMutablePointer<Float>, ldc: Int, rowBias: UnsafePointer<Float>? = nil) {
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k { s += a[i * lda + p] * b[p * ldb + j] }
                c[i * ldc + j] = s + (rowBias?[i] ?? 0)
            }
        }
    }
}
