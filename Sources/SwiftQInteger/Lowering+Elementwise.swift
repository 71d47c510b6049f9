import SwiftQCore
import SwiftQKernels
import SwiftQRuntime

/// Elementwise int8 rules: activations as 256-entry tables, Mul and broadcast Add.
extension Planner {
    /// Sigmoid, HardSigmoid, HardSwish, LeakyRelu, Tanh (any elementwise op of one varying input) between a
    /// dequantized input and a QuantizeLinear: one table of 256 bytes, made by running the float operator on the
    /// 256 dequantized values and quantizing its outputs as the QuantizeLinear does, so the table equals the
    /// float path DequantizeLinear → op → QuantizeLinear bit for bit.
    func lookupTable(_ n: Node) throws -> Bool {
        guard let x = q(n.input(0)), n.outputs.count == 1 else { return false }
        let consts = n.inputs.dropFirst().map { $0.isEmpty ? nil : p.inits[$0].map(RTensor.init) }
        guard zip(n.inputs.dropFirst(), consts).allSatisfy({ $0.isEmpty || $1 != nil }) else { return false }
        let values = RTensor(dtype: .float, shape: [256])
        var all = [UInt8](0...255)
        FastInteger.dequantize(&all, channels: 1, pixels: 256, scale: x.scale, zero: x.zero, nhwc: false, into: values.f)
        let f = try p.runFloatAll(n, [values] + consts)[0]
        guard f.dtype == .float, f.count == 256 else { return false }
        guard let o = outputQuantization(after: n.outputs[0]) else {
            // A float output (a detector's final Sigmoid): 256 floats, the same the float path computes.
            let table = f.floatArray(), planar = try planar(x)
            let slot = Slot()
            try add {
                let y = RTensor(dtype: .float, shape: planar.shape)
                let xb = planar.bytes
                table.withUnsafeBufferPointer { t in for i in 0..<planar.count { y.f[i] = t[Int(xb[i])] } }
                slot.f = y
            }
            plan.slots[n.outputs[0]] = slot
            return true
        }
        let y = QBuffer(shape: x.shape, nhwc: x.nhwc, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
        var table = [UInt8](repeating: 0, count: 256)
        FastInteger.quantize(f.f, channels: 1, pixels: 256, scale: o.scale, zero: y.zero, lo: o.lo, hi: o.hi, nhwc: false, into: &table)
        let t = RequantTable(bytes: table), count = x.count, threads = threads
        try add { FastInteger.lookup(x.bytes, count: count, table: t, into: y.bytes, threads: threads) }
        publish(y, o)
        return true
    }

    /// A constant operand stored as 8-bit activation-type values with one scale (Add's and Mul's constants), as a
    /// planar buffer.
    func quantizedConstant(_ name: String) -> QBuffer? {
        guard let r = p.constant(name), r.scales.count == 1, r.dtype == .uint8 || r.dtype == .int8 else { return nil }
        let b = QBuffer(shape: r.shape, nhwc: false, scale: r.scales[0], zeroPoint: r.zeroPoints[0], dtype: r.dtype)
        let lo = r.dtype.integerRange!.lo
        for (i, v) in r.values.enumerated() { b.bytes[i] = UInt8(truncatingIfNeeded: v - lo) }
        return b
    }

    /// Mul (ONNX Runtime's QLinearMul) and Add (QLinearAdd) of two 8-bit operands: the same shape, or a rank-4
    /// tensor by a per-channel [N or 1, C, 1, 1] tensor (a squeeze-excitation gate), or by one value (a constant).
    /// Broadcast operands become per-channel tables of 256 bytes.
    func binaryNode(_ n: Node) throws -> Bool {
        guard n.inputs.count == 2, let o = outputQuantization(after: n.outputs[0]),
              let a0 = q(n.inputs[0]) ?? quantizedConstant(n.inputs[0]), let b0 = q(n.inputs[1]) ?? quantizedConstant(n.inputs[1]) else { return false }
        // `big` is the operand with the output's shape.
        let swap = a0.count < b0.count
        let (big0, small0) = swap ? (b0, a0) : (a0, b0)
        let isMul = n.opType == "Mul"
        let yZero = o.zeroPoint - o.dtype.integerRange!.lo   // as stored (biased), like QBuffer.zero
        // The rescaling as a function of (big, small) stored bytes, in the operator's operand order.
        let mul = MulRescale(aScale: a0.scale, aZero: a0.zero, bScale: b0.scale, bZero: b0.zero, yScale: o.scale, yZero: yZero, lo: o.lo, hi: o.hi)
        let addR = AddRescale(aScale: a0.scale, aZero: a0.zero, bScale: b0.scale, bZero: b0.zero, yScale: o.scale, yZero: yZero, lo: o.lo, hi: o.hi,
                              offA: -a0.dtype.integerRange!.lo, offB: -b0.dtype.integerRange!.lo, offY: -o.dtype.integerRange!.lo)
        /// Writes the 256 results for every big-operand byte with the small operand fixed at `small`, by the kernels
        /// themselves (so tables and elementwise runs agree bit for bit).
        let ramp = [UInt8](0...255)
        func table(_ small: UInt8, into t: UnsafeMutablePointer<UInt8>) {
            let fixed = [UInt8](repeating: small, count: 256)
            ramp.withUnsafeBufferPointer { r in fixed.withUnsafeBufferPointer { f in
                let (a, b) = swap ? (f.baseAddress!, r.baseAddress!) : (r.baseAddress!, f.baseAddress!)
                if isMul { mul.run(a, b, y: t, count: 256) } else { FastInteger.add(a, b, addR, y: t, count: 256, threads: 1) }
            } }
        }
        if a0.shape == b0.shape {
            guard isMul else { return false }   // same-shape Add is `addNode`
            let a = a0.shape.count == 4 ? try nhwc(a0) : a0, b = b0.shape.count == 4 ? try nhwc(b0) : b0
            let y = QBuffer(shape: a.shape, nhwc: a.nhwc, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
            let threads = threads
            try add { mul.run(a.bytes, b.bytes, y: y.bytes, count: y.count, threads: threads) }
            publish(y, o)
            return true
        }
        if small0.count == 1 {
            // The table is made each run: the one value may be an activation, not a constant.
            var bytes = [UInt8](repeating: 0, count: 256)
            let y = QBuffer(shape: big0.shape, nhwc: big0.nhwc, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
            let count = y.count, threads = threads
            try add {
                table(small0.bytes[0], into: &bytes)
                FastInteger.lookup(big0.bytes, count: count, table: RequantTable(bytes: bytes), into: y.bytes, threads: threads)
            }
            publish(y, o)
            return true
        }
        // Per channel: the small operand right-aligned to [N or 1, C, 1, 1].
        guard big0.shape.count == 4, small0.shape.count <= 4 else { return false }
        let padded = [Int](repeating: 1, count: 4 - small0.shape.count) + small0.shape
        let (batch, c) = (big0.shape[0], big0.shape[1])
        guard padded[1] == c, padded[2] == 1, padded[3] == 1, padded[0] == 1 || padded[0] == batch else { return false }
        let perImage = padded[0] != 1
        let big = try nhwc(big0), small = small0
        let y = QBuffer(shape: big.shape, nhwc: true, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
        let hw = big.shape[2] * big.shape[3]
        var tables = [UInt8](repeating: 0, count: c * 256)
        let threads = threads
        try add {
            for i in 0..<batch {
                if i == 0 || perImage {
                    tables.withUnsafeMutableBufferPointer { t in
                        for ch in 0..<c { table(small.bytes[(perImage ? i * c : 0) + ch], into: t.baseAddress! + ch * 256) }
                    }
                }
                tables.withUnsafeBufferPointer { t in
                    FastInteger.tableChannels(big.bytes + i * hw * c, pixels: hw, channels: c, tables: t.baseAddress!, into: y.bytes + i * hw * c, threads: threads)
                }
            }
        }
        publish(y, o)
        return true
    }
}

extension Planner {
    /// ConvTranspose with one group: the columns Σ_c (x − z_x)·w[c, m, a, e] (ordered (a, e, m)) of every input pixel by the int8
    /// GEMM (exact integers), added into place (col2im) in int32 with the bias, then requantized once per output
    /// channel: round_half_even(acc · s_x·s_w[m]/s_y) + z_y. ONNX Runtime runs ConvTranspose in float between its
    /// DequantizeLinear and QuantizeLinear, so its rounding of the sums differs in the last bit now and then;
    /// this path rounds the exact sum.
    func convTranspose(_ n: Node) throws -> Bool {
        guard (n.int("group") ?? 1) == 1, let xq = q(n.input(0)), xq.shape.count == 4, let o = outputQuantization(after: n.outputs[0]),
              let (w, bias, wScale) = weights(n, outChannels: { $0.shape.count == 4 ? $0.shape[1] : 0 }), w.shape.count == 4,
              w.shape[0] == xq.shape[1], xq.shape[1] * 255 * 128 < 1 << 24 else { return false }
        let (c, mOut, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let (h, wd) = (xq.shape[2], xq.shape[3])
        let geometry = ConvTransposeGeometry(node: n, input: (h, wd), kernel: (kh, kw))
        let (s, d, pads) = (geometry.strides, geometry.dilations, geometry.pads)
        let (oh, ow) = (geometry.output[0], geometry.output[1])
        guard oh > 0, ow > 0 else { return false }
        let rows = mOut * kh * kw, taps = kh * kw
        // Row r = (a, e, m) of the GEMM holds w[·, m, a, e]: each tap's output channels side by side in the columns.
        var values = [Int32](repeating: 0, count: rows * c)
        for ci in 0..<c { for m in 0..<mOut { for t in 0..<taps { values[(t * mOut + m) * c + ci] = w.values[ci * rows + m * taps + t] } } }
        let packed = PackedConvWeights(values: values, outChannels: rows, groupInputs: c, kernelH: 1, kernelW: 1, group: 1)
        let x = try nhwc(xq)
        let rq = Requantization(bias: folding(x.zero, into: [Int32](repeating: 0, count: rows), weightSums: packed.rowSums),
                                floatScales: [Float](repeating: 1, count: rows))
        let geo = ConvGeometry(batch: 1, channels: c, height: h, width: wd, outChannels: rows, group: 1, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1,
                               dilationH: 1, dilationW: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0, outHeight: h, outWidth: wd)
        let y = QBuffer(shape: [x.shape[0], mOut, oh, ow], nhwc: true, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
        let columns = AlignedBuffer<Float>(count: h * wd * rows, repeating: 0)
        let scales = (0..<mOut).map { x.scale * wScale[$0] / o.scale }
        let zy = Float(y.zero), lo = Float(o.lo), hi = Float(o.hi), threads = threads
        try add {
            for img in 0..<x.shape[0] {
                FastInteger.conv(x: x.bytes + img * h * wd * c, xZero: x.zero, w: packed, rq: rq, geo, y: UnsafeMutableRawPointer(columns.p), scratch: nil, threads: threads)
                FastInteger.convTransposeColumns(columns.p, height: h, width: wd, channels: mOut, kernel: (kh, kw), stride: (s[0], s[1]), dilation: (d[0], d[1]),
                                                 pads: (pads[0], pads[1]), bias: bias, scales: scales, zero: zy, lo: lo, hi: hi,
                                                 into: y.bytes + img * oh * ow * mOut, outHeight: oh, outWidth: ow, threads: threads)
            }
        }
        publish(y, o)
        return true
    }
}

extension Planner {
    /// The spec, output shape and axis maps of a Resize of the rank-4 tensor `x` that keeps batch and channels
    /// (scales and sizes constant), or nil.
    func spatialResize(_ n: Node, _ x: QBuffer) throws -> (ResizeSpec, [Int], [ResizeAxis])? {
        guard x.shape.count == 4 else { return nil }
        let spec = try ResizeSpec(node: n, opset: p.model.opset)
        let constant = { (i: Int) in n.input(i).flatMap { self.p.inits[$0] } }
        let o = spec.operands(floats: { constant($0)?.floats() }, ints: { constant($0)?.int64s().map { Int(clamping: $0) } })
        let (shape, _, maps) = try spec.maps(input: x.shape, scales: o.scales, sizes: o.sizes, roi: o.roi)
        guard maps[0].isIdentity, maps[1].isIdentity else { return nil }
        return (spec, shape, maps)
    }

    /// Nearest Resize of a rank-4 tensor that keeps batch and channels: a byte gather on NHWC rows (the input's
    /// scale kept), with the index maps of `ResizeSpec`, the same the float operator uses.
    func resizeNearest(_ n: Node) throws -> Bool {
        guard let x0 = q(n.input(0)), let (spec, shape, maps) = try spatialResize(n, x0), spec.mode == .nearest,
              spec.coordinates != "tf_crop_and_resize" else { return false }
        let x = try nhwc(x0)
        let y = x.like(shape: shape, nhwc: true)
        let rows = maps[2].nearest.map { Int32($0) }, cols = maps[3].nearest.map { Int32($0) }
        let (h, w, c, threads) = (x.shape[2], x.shape[3], x.shape[1], threads)
        try add { FastInteger.resizeNearest(x.bytes, images: x.shape[0], height: h, width: w, channels: c, rows: rows, cols: cols, into: y.bytes, threads: threads) }
        plan.slots[n.outputs[0]] = Slot(q: y)   // same scale; a QuantizeLinear after it aliases or requantizes
        return true
    }
}

extension Planner {
    /// Linear or cubic Resize of the two spatial axes between a dequantized input and a QuantizeLinear: per output
    /// pixel and channel Σ wₕ·w_w·(x − z_x) over the taps of `ResizeSpec` (the float operator's own maps) in
    /// float32, then round_half_even(acc · s_x/s_y) + z_y. ONNX Runtime runs this Resize in float between its
    /// DequantizeLinear and QuantizeLinear, one axis after the other, so a byte can differ from it by one
    /// where the two float sums round to either side of a half.
    func resizeLinear(_ n: Node) throws -> Bool {
        guard let x0 = q(n.input(0)), let o = outputQuantization(after: n.outputs[0]), let (spec, shape, maps) = try spatialResize(n, x0),
              spec.mode != .nearest, spec.coordinates != "tf_crop_and_resize", !spec.antialias else { return false }
        let x = try nhwc(x0)
        let y = QBuffer(shape: shape, nhwc: true, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
        let (rows, cols) = (maps[2], maps[3])
        let (c, w, oh, ow) = (x.shape[1], x.shape[3], shape[2], shape[3])
        let ratio = x.scale / o.scale, zx = Float(x.zero), zy = Float(y.zero), lo = Float(o.lo), hi = Float(o.hi), threads = threads
        let images = x.shape[0], inPlane = x.shape[2] * w * c
        try add {
            for img in 0..<images {
                let src = x.bytes + img * inPlane, dst = y.bytes + img * oh * ow * c
                parallelRanges(oh, minimum: 16, threads: threads) { span in
                    var acc = [Float](repeating: 0, count: c)
                    for r in span {
                        for q in 0..<ow {
                            for k in 0..<c { acc[k] = 0 }
                            for a in 0..<rows.taps {
                                let wa = rows.weight[r * rows.taps + a], ir = rows.index[r * rows.taps + a]
                                if wa == 0 { continue }
                                for b in 0..<cols.taps {
                                    let wgt = wa * cols.weight[q * cols.taps + b]
                                    if wgt == 0 { continue }
                                    let px = src + (ir * w + cols.index[q * cols.taps + b]) * c
                                    for k in 0..<c { acc[k] += wgt * (Float(px[k]) - zx) }
                                }
                            }
                            let o = dst + (r * ow + q) * c
                            for k in 0..<c { o[k] = UInt8(min(max((acc[k] * ratio).rounded(.toNearestOrEven) + zy, lo), hi)) }
                        }
                    }
                }
            }
        }
        publish(y, o)
        return true
    }
}
