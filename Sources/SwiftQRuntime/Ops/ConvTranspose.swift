import SwiftQCore

/// ConvTranspose (reference kernel), 2-D: groups, strides, dilations, pads, output_padding, output_shape and
/// auto_pad, following the ONNX spec's formulas for the output size and padding.
struct ConvTransposeOp: Operator {
    let fail: NodeFailure
    let setup: OperatorSetup
    let group: Int

    init(_ s: OperatorSetup) throws {
        setup = s
        fail = NodeFailure(s)
        group = s.int("group", 1)
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail), w = try inputs.required(1, fail)
        let b = inputs.count > 2 ? inputs[2] : nil
        guard x.dtype == .float, x.rank == 4, w.rank == 4, x.shape[1] == w.shape[0], group > 0, x.shape[1] % group == 0 else {
            throw fail.invalid("needs float N×C×H×W input and C×(M/group)×KH×KW weight, got \(x.shape) and \(w.shape)")
        }
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3]
        let mpg = w.shape[1], m = mpg * group, kh = w.shape[2], kw = w.shape[3], cpg = c / group
        let s = setup.ints("strides") ?? [1, 1], d = setup.ints("dilations") ?? [1, 1]
        let outPad = setup.ints("output_padding") ?? [0, 0]
        var pads = setup.ints("pads") ?? [0, 0, 0, 0]
        let autoPad = setup.node.string("auto_pad") ?? "NOTSET"
        var out = [0, 0]
        let ins = [h, wd], ks = [kh, kw]
        for i in 0..<2 {
            let full = s[i] * (ins[i] - 1) + outPad[i] + (ks[i] - 1) * d[i] + 1
            if let os = setup.ints("output_shape") {
                out[i] = os[os.count - 2 + i]
                let total = max(0, full - out[i])
                pads[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                pads[i + 2] = total - pads[i]
            } else if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
                out[i] = ins[i] * s[i]
                let total = max(0, full - out[i])
                pads[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                pads[i + 2] = total - pads[i]
            } else {
                out[i] = full - pads[i] - pads[i + 2]
            }
        }
        guard out[0] > 0 && out[1] > 0 else { throw fail.invalid("output size \(out) is not positive") }
        let y = ctx.alloc(.float, [n, m, out[0], out[1]])
        for i in 0..<y.count { y.f[i] = 0 }
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
        if let b {
            guard b.count == m else { throw fail.invalid("bias has \(b.count) values for \(m) channels") }
            let plane = out[0] * out[1]
            for i in 0..<y.count { y.f[i] += b.f[(i / plane) % m] }
        }
        return [y]
    }
}
