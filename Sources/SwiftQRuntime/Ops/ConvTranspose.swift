import CKernels
import SwiftQCore
import SwiftQKernels

/// ConvTranspose's output size and pads for an H x W input and a KH x KW kernel, by the ONNX spec's formulas:
/// `output_shape` (pads derived), `auto_pad` SAME_UPPER/SAME_LOWER (output = input · stride), else explicit pads
/// with `output_padding`. Pads are [top, left, bottom, right].
public struct ConvTransposeGeometry: Sendable {
    public let strides: [Int], dilations: [Int], pads: [Int], output: [Int]

    public init(node: Node, input: (Int, Int), kernel: (Int, Int)) {
        let s = node.ints("strides")?.map(Int.init) ?? [1, 1], d = node.ints("dilations")?.map(Int.init) ?? [1, 1]
        let outPad = node.ints("output_padding")?.map(Int.init) ?? [0, 0]
        var pads = node.ints("pads")?.map(Int.init) ?? [0, 0, 0, 0]
        let autoPad = node.string("auto_pad") ?? "NOTSET", shape = node.ints("output_shape")?.map(Int.init)
        var out = [0, 0]
        let ins = [input.0, input.1], ks = [kernel.0, kernel.1]
        for i in 0..<2 {
            let full = s[i] * (ins[i] - 1) + outPad[i] + (ks[i] - 1) * d[i] + 1
            if shape != nil || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
                out[i] = shape.map { $0[$0.count - 2 + i] } ?? ins[i] * s[i]
                let total = max(0, full - out[i])
                pads[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                pads[i + 2] = total - pads[i]
            } else {
                out[i] = full - pads[i] - pads[i + 2]
            }
        }
        strides = s; dilations = d; self.pads = pads; output = out
    }
}

/// ConvTranspose, 2-D: groups, strides, dilations, pads, output_padding, output_shape and auto_pad, following
/// the ONNX spec's formulas for the output size and padding. The reference kernel scatters every input value;
/// the fast one computes each group's columns Wᵀ·X with the GEMM (the weight transposed once when constant)
/// and adds them into place (col2im).
struct ConvTransposeOp: OwnsOneScratch {
    let fail: NodeFailure
    let setup: OperatorSetup
    let group: Int
    /// Per group, Wᵀ as a row-major (M/group · KH · KW) × (C/group) matrix, when the weight is a constant.
    let transposed: [[Float]]?
    var scratch = Scratch()

    init(_ s: OperatorSetup) throws {
        setup = s
        fail = NodeFailure(s)
        group = s.int("group", 1)
        if let w = s.constant(1), w.dtype == .float, w.shape.count == 4, group > 0, w.shape[0] % group == 0 {
            transposed = ConvTransposeOp.transpose(w.floats(), shape: w.shape, group: group)
        } else {
            transposed = nil
        }
    }

    static func transpose(_ w: [Float], shape: [Int], group: Int) -> [[Float]] {
        let cpg = shape[0] / group, cols = shape[1] * shape[2] * shape[3]
        return (0..<group).map { g in
            var t = [Float](repeating: 0, count: cpg * cols)
            for ci in 0..<cpg { for r in 0..<cols { t[r * cpg + ci] = w[(g * cpg + ci) * cols + r] } }
            return t
        }
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail), w = try inputs.required(1, fail)
        let b = inputs.count > 2 ? inputs[2] : nil
        guard x.dtype == .float, x.rank == 4, w.rank == 4, x.shape[1] == w.shape[0], group > 0, x.shape[1] % group == 0 else {
            throw fail.invalid("needs float N×C×H×W input and C×(M/group)×KH×KW weight, got \(x.shape) and \(w.shape)")
        }
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3]
        let mpg = w.shape[1], m = mpg * group, kh = w.shape[2], kw = w.shape[3], cpg = c / group
        let geo = ConvTransposeGeometry(node: setup.node, input: (h, wd), kernel: (kh, kw))
        let (s, d, pads, out) = (geo.strides, geo.dilations, geo.pads, geo.output)
        guard out[0] > 0 && out[1] > 0 else { throw fail.invalid("output size \(out) is not positive") }
        let y = ctx.alloc(.float, [n, m, out[0], out[1]])
        let yp = y.f, plane = out[0] * out[1]
        if let b { guard b.count == m else { throw fail.invalid("bias has \(b.count) values for \(m) channels") } }
        if !ctx.referenceOnly {
            // Each output plane starts at its bias; col2im then adds into it.
            let bias = b.map { UnsafePointer($0.f) }
            for p in 0..<(n * m) { (yp + p * plane).update(repeating: bias.map { $0[p % m] } ?? 0, count: plane) }
            let wt = transposed ?? ConvTransposeOp.transpose(w.floatArray(), shape: w.shape, group: group)
            let rows = mpg * kh * kw, oh = out[0], ow = out[1]
            // In bands of input rows whose columns stay in cache (at most 256 KiB): the whole image's columns were written
            // out and read back from memory (the PP-OCRv4 detector's 2x2 upsampling to 24 x 320 x 320: 9.8 MB of them).
            let band = max(1, min(h, Fast.im2colBandFloats / max(1, rows * wd)))
            let cols = ctx.alloc(.float, [rows, band * wd])
            defer { ctx.pool.give(cols.storage) }
            let colp = UnsafePointer(cols.f), xp = UnsafePointer(x.f)
            for b0 in 0..<n {
                for g in 0..<group {
                    for ih0 in stride(from: 0, to: h, by: band) {
                        let ih1 = min(h, ih0 + band), bn = (ih1 - ih0) * wd
                        wt[g].withUnsafeBufferPointer { a in
                            Fast.matmul(m: rows, n: bn, k: cpg, a: a.baseAddress!, lda: cpg, b: xp + (b0 * c + g * cpg) * h * wd + ih0 * wd, ldb: h * wd,
                                        c: cols.f, ldc: bn, scratch: scratch, threads: ctx.threads)
                        }
                        // col2im: column row (mo, a, e) adds into output (g·M/group + mo, ih·s − pad + a·d, iw·s − pad + e·d);
                        // output channels split between threads (each writes its own planes).
                        parallelRanges(mpg, minimum: 2, threads: ctx.threads) { range in
                            for mo in range {
                                let dstPlane = yp + (b0 * m + g * mpg + mo) * oh * ow
                                for a in 0..<kh { for e in 0..<kw {
                                    let src = colp + ((mo * kh + a) * kw + e) * bn
                                    // Input columns whose output column lies inside: q = iw·s − pad + e·d in [0, ow).
                                    let off = e * d[1] - pads[1]
                                    let iw0 = off >= 0 ? 0 : (-off + s[1] - 1) / s[1]
                                    let iw1 = min(wd, ow - off > 0 ? (ow - off + s[1] - 1) / s[1] : 0)
                                    if iw0 >= iw1 { continue }
                                    for ih in ih0..<ih1 {
                                        let r = ih * s[0] - pads[0] + a * d[0]
                                        if r < 0 || r >= oh { continue }
                                        let dst = dstPlane + (r * ow + off + iw0 * s[1]), row = src + ((ih - ih0) * wd + iw0)
                                        sq_col2im_add(dst, row, Int32(iw1 - iw0), Int32(s[1]))
                                    }
                                } }
                            }
                        }
                    }
                }
            }
            return [y]
        }
        for i in 0..<y.count { yp[i] = 0 }
        for b0 in 0..<n { for ci in 0..<c {
            let g = ci / cpg
            for ih in 0..<h { for iw in 0..<wd {
                let v = x.f[((b0 * c + ci) * h + ih) * wd + iw]
                for mo in 0..<mpg { for a in 0..<kh {
                    let oh = ih * s[0] - pads[0] + a * d[0]
                    if oh < 0 || oh >= out[0] { continue }
                    for e in 0..<kw {
                        let ow = iw * s[1] - pads[1] + e * d[1]
                        if ow < 0 || ow >= out[1] { continue }
                        y.f[((b0 * m + g * mpg + mo) * out[0] + oh) * out[1] + ow] += v * w.f[((ci * mpg + mo) * kh + a) * kw + e]
                    }
                } }
            } }
        } }
        if let b { for i in 0..<y.count { yp[i] += b.f[(i / plane) % m] } }
        return [y]
    }
}
