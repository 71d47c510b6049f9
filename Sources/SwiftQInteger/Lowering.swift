import Foundation
import SwiftQCore
import SwiftQKernels
import SwiftQONNX
import SwiftQRuntime

/// The QuantizeLinear after a layer (index), the fused Relu/Clip (index), the output's scale, zero point and type,
/// and the clamp in bytes.
typealias OutputQuantization = (q: Int, act: Int?, scale: Float, zeroPoint: Int32, dtype: DType, lo: Int32, hi: Int32)

/// Lowers the graph node by node into a `Plan`, running each step once as it is made (so every shape,
/// float islands included, is known when the next node is lowered).
final class Planner {
    let p: IntegerProgram
    let plan: Plan
    var skip = Set<Int>()
    let threads: Int
    /// Layout conversions already made, by source buffer.
    var converted: [ObjectIdentifier: QBuffer] = [:]
    var graph: Graph { p.model.graph }
    /// The node being lowered, as a step label.
    var current = ""
    /// Which steps touch the buffers made here (for `Plan.share`).
    let uses = BufferUses()

    init(_ program: IntegerProgram, feeds: [String: RTensor]) {
        p = program
        threads = program.threads
        plan = Plan(inputShapes: feeds.mapValues(\.shape), threads: threads)
        for (k, v) in feeds { plan.slots[k] = Slot(f: v) }
    }

    func build() throws -> Plan {
        defer { for b in uses.buffers { b.uses = nil } }   // ends the record (and the buffers' references to it), also on a throw
        for i in p.order where !skip.contains(i) {
            let n = graph.nodes[i]
            current = "\(n.opType) \(n.displayName)"
            if try lower(n) { plan.integerNodes += 1 } else { try floatNode(n); plan.floatOps[n.opType, default: 0] += 1 }
        }
        plan.outputNames = graph.outputs.map(\.name)
        let outputs = Set(plan.outputNames.compactMap { plan.slots[$0]?.q.map(ObjectIdentifier.init) })
        plan.buffers = uses.buffers
        plan.pools = Plan.pools(uses.buffers, keeping: outputs)
        return plan
    }

    /// Adds a step to the plan and runs it once.
    func add(_ step: @escaping () throws -> Void) throws {
        plan.steps.append(step)
        plan.labels.append(current)
        uses.step = plan.steps.count - 1
        defer { uses.step = nil }
        try step()
    }

    func q(_ name: String?) -> QBuffer? { name.flatMap { plan.slots[$0]?.q } }

    /// The output quantization of the layer writing `name`: the QuantizeLinear after it (through a Relu/Clip,
    /// whose bounds narrow the clamp). lo/hi are in bytes.
    func outputQuantization(after name: String) -> OutputQuantization? {
        guard let (qi, act, rlo, rhi) = p.quantizer(after: name), let (ys, yz, yt) = p.params(graph.nodes[qi]) else { return nil }
        var (lo, hi) = yt.integerRange!
        let bias = lo
        // A real clamp bound as the quantized value it maps to (kept within Int32).
        func quantized(_ r: Float) -> Int32 { Int32(min(max((r / ys).rounded(.toNearestOrEven) + Float(yz), -1e9), 1e9)) }
        if rlo.isFinite { lo = max(lo, quantized(rlo)) }
        if rhi.isFinite { hi = min(hi, quantized(rhi)) }
        return (qi, act, ys, yz, yt, lo - bias, hi - bias)
    }

    /// The int32 bias with the input zero point folded in: bias[c] − zero · Σ w[c] (the kernels sum x · w on raw bytes).
    func folding(_ zero: Int32, into bias: [Int32], weightSums: [Int32]) -> [Int32] {
        zip(bias, weightSums).map { $0 &- zero &* $1 }
    }

    /// A weighted layer's requantization to the output quantization `o`: multipliers s_x · s_w[c] / s_y (in float32, as
    /// ONNX Runtime's QLinearConv computes them).
    func requantization(bias: [Int32], x: QBuffer, wScale: [Float], to o: OutputQuantization) -> Requantization {
        Requantization(bias: bias, multipliers: wScale.map { .ortConv(x: x.scale, w: $0, y: o.scale) }, zero: o.zeroPoint - o.dtype.integerRange!.lo,
                       lo: o.lo, hi: o.hi)
    }

    /// Publishes a layer's output as the QuantizeLinear's (and skips the Q and the fused activation).
    func publish(_ y: QBuffer, _ o: OutputQuantization) {
        plan.slots[graph.nodes[o.q].outputs[0]] = Slot(q: y)
        skip.insert(o.q)
        if let a = o.act { skip.insert(a) }
    }

    /// `x` as NHWC bytes (a conversion step when it is a planar rank-4 tensor).
    func nhwc(_ x: QBuffer) throws -> QBuffer { try layout(x, nhwc: true) }

    /// `x` in its logical (NCHW) byte order.
    func planar(_ x: QBuffer) throws -> QBuffer { try layout(x, nhwc: false) }

    /// `x` in the wanted layout: itself, or a transposed copy made by a step (once per buffer).
    func layout(_ x: QBuffer, nhwc: Bool) throws -> QBuffer {
        guard x.shape.count == 4, x.nhwc != nhwc else { return x }
        if let c = converted[ObjectIdentifier(x)] { return c }
        let y = x.like(shape: x.shape, nhwc: nhwc)
        let (c, hw, images) = x.image
        let (rows, cols) = nhwc ? (c, hw) : (hw, c)
        try add { for n in 0..<images { FastInteger.transpose(x.bytes + n * c * hw, rows: rows, cols: cols, into: y.bytes + n * c * hw) } }
        converted[ObjectIdentifier(x)] = y
        return y
    }

    // MARK: - rules

    /// Lowers `n` to integer steps when its pattern allows; false leaves it to float.
    func lower(_ n: Node) throws -> Bool {
        switch n.opType {
        case "DequantizeLinear": return try dequantize(n)
        case "Cast": return widening(n)
        case "QuantizeLinear": return try quantize(n)
        case "Conv": return try conv(n)
        case "ConvTranspose": return try convTranspose(n)
        case "Gemm", "MatMul": return try gemm(n)
        case "Add": return try addNode(n) || binaryNode(n)
        case "Mul": return try binaryNode(n)
        case "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Tanh", "Relu", "Clip": return try lookupTable(n)
        case "MaxPool": return try maxPool(n)
        case "GlobalAveragePool", "AveragePool": return try averagePool(n)
        case "Concat": return try concat(n)
        case "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Slice", "Split": return try move(n)
        case "Resize": return (n.string("mode") ?? "nearest") == "nearest" ? try resizeNearest(n) || move(n) : try resizeLinear(n)
        default: return false
        }
    }

    func dequantize(_ n: Node) throws -> Bool {
        guard let x = n.input(0) else { return false }
        if let xq = q(x) {
            plan.slots[n.outputs[0]] = Slot(q: xq)   // stays integer; readers that need floats dequantize
            return true
        }
        guard let src = p.recordName(x), let record = p.integerConstants[src] else { return false }
        // Weights and biases: integer layers read the weight file; a float reader gets the values once.
        var ins = n.inputs.map { $0.isEmpty ? nil : p.inits[$0].map(RTensor.init) }
        if src != x { ins[0] = RTensor(Tensor(integers: record.values.map { Int8($0) }, dtype: .int8, shape: record.shape)) }
        let outs = try p.runFloatAll(n, ins)
        plan.slots[n.outputs[0]] = Slot(f: outs[0])
        return true
    }

    /// A Cast widening INT4 weights to INT8 that only DequantizeLinear reads: nothing to run (`dequantize` reads
    /// the weight file's record).
    func widening(_ n: Node) -> Bool {
        guard let out = n.outputs.first, p.recordName(out) != nil, let readers = p.consumers[out] else { return false }
        return readers.allSatisfy { p.model.graph.nodes[$0].opType == "DequantizeLinear" }
    }

    func quantize(_ n: Node) throws -> Bool {
        guard let x = n.input(0), let slot = plan.slots[x], let (s, z, t) = p.params(n) else { return false }
        if let xq = slot.q {
            if xq.scale == s && xq.zeroPoint == z && xq.dtype == t {
                plan.slots[n.outputs[0]] = Slot(q: xq)
                return true
            }
            let out = QBuffer(shape: xq.shape, nhwc: xq.nhwc, scale: s, zeroPoint: z, dtype: t, uses: uses)
            let table = RequantTable(xScale: xq.scale, xZero: xq.zero, yScale: s, yZero: out.zero, lo: 0, hi: 255)
            try add { FastInteger.copy(xq.bytes, ldx: xq.count, rows: 1, count: xq.count, table: table, into: out.bytes, ldy: xq.count) }
            plan.slots[n.outputs[0]] = Slot(q: out)
            return true
        }
        guard let f = slot.f, f.dtype == .float else { return false }
        let y = QBuffer(shape: f.shape, nhwc: true, scale: s, zeroPoint: z, dtype: t, uses: uses)
        let (c, hw, images) = y.image
        let name = n.displayName, threads = threads
        try add {
            guard let x = slot.f, x.shape == y.shape else { throw IntegerRuntimeError("node '\(name)': input shape changed within a plan") }
            for i in 0..<images {
                FastInteger.quantize(x.f + i * c * hw, channels: c, pixels: hw, scale: s, zero: y.zero, lo: 0, hi: 255, nhwc: y.nhwc, into: y.bytes + i * c * hw, threads: threads)
            }
        }
        plan.slots[n.outputs[0]] = Slot(q: y)
        return true
    }

    /// The int8 weights and int32 bias of a layer, with the weight scale of each output channel.
    func weights(_ n: Node, outChannels: (Int8WeightFile.Record) -> Int) -> (w: Int8WeightFile.Record, bias: [Int32], wScale: [Float])? {
        guard let w = n.input(1).flatMap(p.constant), w.dtype == .int8 || w.dtype == .int4, w.zeroPoints.allSatisfy({ $0 == 0 }) else { return nil }
        let m = outChannels(w)
        guard w.scales.count == 1 || w.scales.count == m else { return nil }
        var bias = [Int32](repeating: 0, count: m)
        if let b = n.input(2) {
            guard let r = p.constant(b), r.dtype == .int32, r.values.count == m else { return nil }
            bias = r.values
        }
        return (w, bias, (0..<m).map { w.scales.count == 1 ? w.scales[0] : w.scales[$0] })
    }

    func conv(_ n: Node) throws -> Bool {
        guard let xq = q(n.input(0)), xq.shape.count == 4, let (w, bias, wScale) = weights(n, outChannels: { $0.shape[0] }), w.shape.count == 4 else { return false }
        let x = try nhwc(xq)
        let setup = OperatorSetup(node: n, opset: p.model.opset, constants: [])
        let geo = try convGeometry(x: x.shape, w: w.shape, setup: setup, group: Int(n.int("group") ?? 1), fail: NodeFailure(setup))
        let outShape = [geo.batch, geo.outChannels, geo.outHeight, geo.outWidth]
        let o = outputQuantization(after: n.outputs[0])
        let threads = threads
        if geo.isDepthwise && geo.dilationH == 1 && geo.dilationW == 1 {
            guard let o else { return false }
            let packed = PackedDepthwiseWeights(values: w.values, channels: geo.channels, kernelH: geo.kernelH, kernelW: geo.kernelW)
            let rq = requantization(bias: folding(x.zero, into: bias, weightSums: packed.tapSums), x: x, wScale: wScale, to: o)
            let y = QBuffer(shape: outShape, nhwc: true, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
            let bytes = FastInteger.depthwiseScratchBytes(geo, threads: threads), scratch = plan.scratch
            scratch.reserve(bytes)
            try add { FastInteger.depthwise(x: x.bytes, xZero: x.zero, w: packed, rq: rq, geo, y: y.bytes, scratch: bytes > 0 ? scratch.bytes : nil, threads: threads) }
            publish(y, o)
            return true
        }
        let packed = PackedConvWeights(values: w.values, outChannels: geo.outChannels, groupInputs: geo.channels / geo.group, kernelH: geo.kernelH, kernelW: geo.kernelW, group: geo.group)
        let shifted = folding(x.zero, into: bias, weightSums: packed.rowSums)
        let scratch = plan.scratch
        scratch.reserve(FastInteger.scratchBytes(geo, threads: threads))
        if let o {
            let rq = requantization(bias: shifted, x: x, wScale: wScale, to: o)
            let y = QBuffer(shape: outShape, nhwc: true, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
            try add { FastInteger.conv(x: x.bytes, xZero: x.zero, w: packed, rq: rq, geo, y: UnsafeMutableRawPointer(y.bytes), scratch: scratch.bytes, threads: threads) }
            publish(y, o)
        } else {
            // Float output: the accumulators dequantized (NHWC staging, then NCHW).
            let rq = Requantization(bias: shifted, floatScales: wScale.map { x.scale * $0 })
            let staging = AlignedBuffer<Float>(count: outShape.reduce(1, *), repeating: 0)
            let slot = Slot()
            try add {
                FastInteger.conv(x: x.bytes, xZero: x.zero, w: packed, rq: rq, geo, y: UnsafeMutableRawPointer(staging.p), scratch: scratch.bytes, threads: threads)
                slot.f = Planner.nchw(staging.p, outShape)
            }
            plan.slots[n.outputs[0]] = slot
        }
        return true
    }

    func gemm(_ n: Node) throws -> Bool {
        guard let x = q(n.input(0)), x.shape.count == 2 else { return false }
        let transB = n.opType == "Gemm" && (n.int("transB") ?? 0) != 0
        if n.opType == "Gemm" {
            guard (n.int("transA") ?? 0) == 0, (n.float("alpha") ?? 1) == 1, (n.float("beta") ?? 1) == 1 else { return false }
        } else if n.inputs.count > 2 { return false }
        guard let (w, bias, wScale) = weights(n, outChannels: { transB ? $0.shape[0] : $0.shape[1] }), w.shape.count == 2 else { return false }
        let (k, m) = transB ? (w.shape[1], w.shape[0]) : (w.shape[0], w.shape[1])
        guard k == x.shape[1] else { return false }
        let rows: [Int32] = transB ? w.values : (0..<(m * k)).map { i in w.values[(i % k) * m + i / k] }
        let packed = PackedConvWeights(values: rows, outChannels: m, groupInputs: k, kernelH: 1, kernelW: 1, group: 1)
        // The rows of x are the pixels of a 1 × N image.
        let batch = x.shape[0]
        let geo = ConvGeometry(batch: 1, channels: k, height: 1, width: batch, outChannels: m, group: 1, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1,
                               dilationH: 1, dilationW: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0, outHeight: 1, outWidth: batch)
        let shifted = folding(x.zero, into: bias, weightSums: packed.rowSums)
        let threads = threads
        if let o = outputQuantization(after: n.outputs[0]) {
            let rq = requantization(bias: shifted, x: x, wScale: wScale, to: o)
            let y = QBuffer(shape: [batch, m], nhwc: false, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
            try add { FastInteger.conv(x: x.bytes, xZero: x.zero, w: packed, rq: rq, geo, y: UnsafeMutableRawPointer(y.bytes), scratch: nil, threads: threads) }
            publish(y, o)
        } else {
            let rq = Requantization(bias: shifted, floatScales: wScale.map { x.scale * $0 })
            let slot = Slot()
            try add {
                let y = RTensor(dtype: .float, shape: [batch, m])
                FastInteger.conv(x: x.bytes, xZero: x.zero, w: packed, rq: rq, geo, y: UnsafeMutableRawPointer(y.f), scratch: nil, threads: threads)
                slot.f = y
            }
            plan.slots[n.outputs[0]] = slot
        }
        return true
    }

    func addNode(_ n: Node) throws -> Bool {
        guard n.inputs.count == 2, let a0 = q(n.inputs[0]), let b0 = q(n.inputs[1]), a0.shape == b0.shape,
              let o = outputQuantization(after: n.outputs[0]) else { return false }
        let a = a0.shape.count == 4 ? try nhwc(a0) : a0, b = b0.shape.count == 4 ? try nhwc(b0) : b0
        let y = QBuffer(shape: a.shape, nhwc: a.nhwc, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
        let r = AddRescale(aScale: a.scale, aZero: a.zero, bScale: b.scale, bZero: b.zero, yScale: o.scale, yZero: y.zero, lo: o.lo, hi: o.hi,
                           offA: -a.dtype.integerRange!.lo, offB: -b.dtype.integerRange!.lo, offY: -o.dtype.integerRange!.lo)
        let threads = threads
        try add { FastInteger.add(a.bytes, b.bytes, r, y: y.bytes, count: y.count, threads: threads) }
        publish(y, o)
        return true
    }

    func maxPool(_ n: Node) throws -> Bool {
        guard let xq = q(n.input(0)), xq.shape.count == 4, n.outputs.count == 1 || n.outputs[1].isEmpty, (n.int("storage_order") ?? 0) == 0 else { return false }
        let x = try nhwc(xq)
        let setup = OperatorSetup(node: n, opset: p.model.opset, constants: [])
        let geo = try convGeometry(x: x.shape, w: nil, setup: setup, group: 1, fail: NodeFailure(setup))
        let y = x.like(shape: [geo.batch, geo.channels, geo.outHeight, geo.outWidth], nhwc: true)
        let threads = threads, inSize = geo.channels * geo.height * geo.width, outSize = geo.channels * geo.outHeight * geo.outWidth
        try add { for i in 0..<geo.batch { FastInteger.maxPool(x.bytes + i * inSize, geo, into: y.bytes + i * outSize, threads: threads) } }
        plan.slots[n.outputs[0]] = Slot(q: y)   // same scale; a QuantizeLinear after it aliases or requantizes
        return true
    }

    func averagePool(_ n: Node) throws -> Bool {
        guard let xq = q(n.input(0)), xq.shape.count == 4 else { return false }
        let x = try nhwc(xq)
        let (c, hw, images) = x.image
        let o = outputQuantization(after: n.outputs[0])
        if n.opType == "GlobalAveragePool" {
            let shape = [images, c, 1, 1]
            // mean = Σ (x − zero) / HW, requantized by s_x / (s_y · HW) as ONNX Runtime's QLinearGlobalAveragePool, or dequantized.
            if let o {
                let m = FixedPointMultiplier.ortPool(x: x.scale, y: o.scale, count: hw)
                let y = QBuffer(shape: shape, nhwc: true, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
                try add {
                    let yb = y.bytes
                    for i in 0..<images {
                        let sums = FastInteger.sumPixels(x.bytes + i * c * hw, pixels: hw, channels: c)
                        for ch in 0..<c {
                            let v = m.apply(sums[ch] &- Int32(hw) &* x.zero) &+ y.zero
                            yb[i * c + ch] = UInt8(min(max(v, o.lo), o.hi))
                        }
                    }
                }
                publish(y, o)
            } else {
                let slot = Slot()
                try add {
                    let t = RTensor(dtype: .float, shape: shape)
                    for i in 0..<images {
                        let sums = FastInteger.sumPixels(x.bytes + i * c * hw, pixels: hw, channels: c)
                        for ch in 0..<c { t.f[i * c + ch] = Float(Double(sums[ch] &- Int32(hw) &* x.zero) * Double(x.scale) / Double(hw)) }
                    }
                    slot.f = t
                }
                plan.slots[n.outputs[0]] = slot
            }
            return true
        }
        let setup = OperatorSetup(node: n, opset: p.model.opset, constants: [])
        let geo = try convGeometry(x: x.shape, w: nil, setup: setup, group: 1, fail: NodeFailure(setup))
        let includePad = (n.int("count_include_pad") ?? 0) != 0
        guard let o, geo.dilationH == 1, geo.dilationW == 1, !(includePad && (n.int("ceil_mode") ?? 0) != 0) else { return false }
        let taps = geo.kernelH * geo.kernelW
        let multipliers = (1...taps).map { FixedPointMultiplier.ortPool(x: x.scale, y: o.scale, count: $0) }
        let y = QBuffer(shape: [geo.batch, geo.channels, geo.outHeight, geo.outWidth], nhwc: true, scale: o.scale, zeroPoint: o.zeroPoint, dtype: o.dtype, uses: uses)
        let outSize = geo.channels * geo.outHeight * geo.outWidth
        try add {
            for i in 0..<images {
                FastInteger.averagePool(x.bytes + i * c * hw, geo, xZero: x.zero, countIncludePad: includePad, multipliers: multipliers, yZero: y.zero,
                                        lo: o.lo, hi: o.hi, into: y.bytes + i * outSize)
            }
        }
        publish(y, o)
        return true
    }

    func concat(_ n: Node) throws -> Bool {
        let ins = n.inputs.map { q($0) }
        guard !ins.isEmpty, ins.allSatisfy({ $0 != nil }), let first = ins[0] else { return false }
        let rank = first.shape.count
        var axis = Int(n.int("axis") ?? 1)
        if axis < 0 { axis += rank }
        guard axis >= 0, axis < rank, ins.allSatisfy({ x in x!.shape.count == rank && x!.shape.indices.allSatisfy { $0 == axis || x!.shape[$0] == first.shape[$0] } }) else { return false }
        if !(axis == 1 && rank == 4) { return try concatPlanar(n, ins.map { $0! }, axis: axis) }
        let xs = try ins.map { try nhwc($0!) }
        // The output takes the QuantizeLinear's parameters when one follows (it then aliases), else the first input's.
        let target = p.quantizer(after: n.outputs[0]).flatMap { $0.act == nil ? p.params(graph.nodes[$0.q]) : nil }
        let (ys, yz, yt) = target ?? (first.scale, first.zeroPoint, first.dtype)
        let total = xs.reduce(0) { $0 + $1.shape[1] }
        var shape = first.shape
        shape[1] = total
        let y = QBuffer(shape: shape, nhwc: true, scale: ys, zeroPoint: yz, dtype: yt, uses: uses)
        let (_, hw, images) = y.image
        var offset = 0
        var parts: [(x: QBuffer, offset: Int, table: RequantTable?)] = []
        for x in xs {
            let same = x.scale == ys && x.zero == y.zero
            parts.append((x, offset, same ? nil : RequantTable(xScale: x.scale, xZero: x.zero, yScale: ys, yZero: y.zero, lo: 0, hi: 255)))
            offset += x.shape[1]
        }
        try add {
            for part in parts {
                let ci = part.x.shape[1]
                for i in 0..<images {
                    FastInteger.copy(part.x.bytes + i * hw * ci, ldx: ci, rows: hw, count: ci, table: part.table,
                                     into: y.bytes + i * hw * total + part.offset, ldy: total)
                }
            }
        }
        plan.slots[n.outputs[0]] = Slot(q: y)
        return true
    }

    /// Concat on any axis of planar buffers: per outer index, each input's rows copied (through a 256-byte table
    /// when its scale is not the output's).
    func concatPlanar(_ n: Node, _ ins0: [QBuffer], axis: Int) throws -> Bool {
        let xs = try ins0.map { try planar($0) }
        let first = xs[0]
        let target = p.quantizer(after: n.outputs[0]).flatMap { $0.act == nil ? p.params(graph.nodes[$0.q]) : nil }
        let (ys, yz, yt) = target ?? (first.scale, first.zeroPoint, first.dtype)
        var shape = first.shape
        shape[axis] = xs.reduce(0) { $0 + $1.shape[axis] }
        let y = QBuffer(shape: shape, nhwc: false, scale: ys, zeroPoint: yz, dtype: yt, uses: uses)
        let outer = shape[..<axis].reduce(1, *), rowOut = shape[axis...].reduce(1, *)
        var parts: [(x: QBuffer, offset: Int, row: Int, table: RequantTable?)] = []
        var offset = 0
        for x in xs {
            let row = x.shape[axis...].reduce(1, *)
            parts.append((x, offset, row, x.scale == ys && x.zero == y.zero ? nil : RequantTable(xScale: x.scale, xZero: x.zero, yScale: ys, yZero: y.zero, lo: 0, hi: 255)))
            offset += row
        }
        try add {
            for part in parts {
                FastInteger.copy(part.x.bytes, ldx: part.row, rows: outer, count: part.row, table: part.table, into: y.bytes + part.offset, ldy: rowOut)
            }
        }
        plan.slots[n.outputs[0]] = Slot(q: y)
        return true
    }

    /// Flatten, Reshape, Squeeze, Unsqueeze: the bytes in logical order under a new shape. Transpose, Slice, Split
    /// and nearest Resize: the float operator on the byte values (exact for 8-bit values), every output keeping
    /// the input's scale.
    func move(_ n: Node) throws -> Bool {
        guard let x0 = q(n.input(0)) else { return false }
        let consts = n.inputs.dropFirst().map { $0.isEmpty ? nil : p.inits[$0].map(RTensor.init) }
        guard zip(n.inputs.dropFirst(), consts).allSatisfy({ $0.isEmpty || $1 != nil }) else { return false }
        let x = try planar(x0)
        if ["Transpose", "Slice", "Split", "Resize"].contains(n.opType) {
            let f = RTensor(dtype: .float, shape: x.shape)
            let ys = try p.runFloatAll(n, [f] + consts).map { x.like(shape: $0.shape, nhwc: false) }
            guard ys.count == n.outputs.count else { return false }
            unowned let program = p
            try add {
                let xb = x.bytes
                for i in 0..<x.count { f.f[i] = Float(xb[i]) }
                let ts = try program.runFloatAll(n, [f] + consts)
                for (t, y) in zip(ts, ys) {
                    let yb = y.bytes
                    for i in 0..<y.count { yb[i] = UInt8(t.f[i]) }
                }
            }
            for (name, y) in zip(n.outputs, ys) where !name.isEmpty { plan.slots[name] = Slot(q: y) }
            return true
        }
        let outShape = try p.runFloatAll(n, [RTensor(dtype: .float, shape: x.shape)] + consts)[0].shape
        let y = x.like(shape: outShape, nhwc: false)
        try add { y.bytes.update(from: x.bytes, count: x.count) }
        plan.slots[n.outputs[0]] = Slot(q: y)
        return true
    }

    /// A node the integer rules do not cover: float on dequantized inputs, every run.
    func floatNode(_ n: Node) throws {
        let sources: [(Slot?, RTensor?)] = n.inputs.map { name in
            if name.isEmpty { return (nil, nil) }
            if let s = plan.slots[name] { return (s, nil) }
            return (nil, p.inits[name].map(RTensor.init))
        }
        let outs = n.outputs.map { _ in Slot() }
        // The program owns the plan and so this step: unowned, or program -> plan -> step -> program is a cycle
        // that kept every program with a float island (and its model) alive forever.
        unowned let program = p
        try add {
            let ins: [RTensor?] = sources.map { s, c in s.map { $0.q?.dequantized() ?? $0.f } ?? c }
            let ys = try program.runFloatAll(n, ins)
            for (k, o) in outs.enumerated() where k < ys.count { o.f = ys[k] }
        }
        for (k, o) in n.outputs.enumerated() where !o.isEmpty { plan.slots[o] = outs[k] }
    }

    /// NHWC floats to an NCHW tensor.
    static func nchw(_ x: UnsafeMutablePointer<Float>, _ shape: [Int]) -> RTensor {
        let t = RTensor(dtype: .float, shape: shape)
        let (c, hw) = (shape[1], shape[2] * shape[3])
        for i in 0..<shape[0] { for p in 0..<hw { for ch in 0..<c { t.f[(i * c + ch) * hw + p] = x[(i * hw + p) * c + ch] } } }
        return t
    }
}
