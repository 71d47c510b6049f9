import CKernels
import Foundation
import SwiftQCore
import SwiftQKernels
import SwiftQRuntime

/// How weights are rounded onto their grid.
public enum WeightRounding: String, Sendable, CaseIterable, Codable {
    /// Each weight to the nearest grid point (with the per-channel absolute maximum as the range).
    case nearest
    /// GPTQ (Frantar et al. 2023): columns in order of decreasing input energy, each rounded to the grid and its
    /// error pushed onto the columns not yet rounded through the inverse input Hessian; grid ranges chosen to
    /// minimize the Hessian-diagonal-weighted rounding error first, each channel's step refitted to its integers
    /// after.
    case gptq
}

/// GPTQ's parameters.
public struct GPTQOptions: Sendable, Equatable {
    /// Added to the Hessian's diagonal, as a fraction of its mean diagonal (GPTQ's percdamp).
    public var dampening = 0.01
    /// Quantize columns in order of decreasing diag(H) (GPTQ's act_order) instead of their stored order.
    public var activationOrder = true
    /// Inputs (images) whose rows enter each layer's Hessian: the first this many of the calibration pass. 128 kept
    /// W4 top-1 within noise of 500 on the shared models (MobileNetV2 76.23 vs 76.08, EfficientNet-Lite0 80.54 vs
    /// 80.92, SqueezeNet 66.62 vs 66.69) at a quarter of the cost: a Hessian costs about 3x the forward pass.
    public var hessianImages = 128
    /// Per output channel, try ranges from the absolute maximum down to this fraction of it and keep the one
    /// with the least diag(H)-weighted rounding error (1 turns the search off).
    public var smallestRange: Float = 0.5
    /// After rounding, each output channel's step is refitted to the integers GPTQ chose: s = qᵀHw / qᵀHq, the step
    /// that minimizes the layer's output error (w − s·q)ᵀ H (w − s·q) for those integers (per-channel grids only).
    public var refitSteps = true
    public init() {}
}

/// The input second moments of one weighted layer, Σ x xᵀ over every input row it saw (im2col rows for Conv, one
/// matrix per group; input rows for Gemm), accumulated in Double.
public struct LayerHessian: Sendable {
    /// Columns of the layer's weight matrix per group (C/group · kh · kw for Conv, K for Gemm).
    public let columns: Int
    public let groups: Int
    /// Group after group, each columns × columns row-major.
    public var sums: [Double]
    /// Input rows accumulated (per group).
    public var rows: Double

    public init(columns: Int, groups: Int, sums: [Double], rows: Double) {
        self.columns = columns
        self.groups = groups
        self.sums = sums
        self.rows = rows
    }

    /// Group `g`'s matrix.
    public func matrix(_ g: Int) -> [Double] { Array(sums[(g * columns * columns)..<((g + 1) * columns * columns)]) }
}

/// Streams the inputs of weighted layers into their `LayerHessian`s during a calibration pass: memory is one
/// K×K matrix per layer and group, never the activations.
public final class HessianCollector: @unchecked Sendable {
    /// One layer's running sums.
    final class Accumulator {
        let columns: Int, groups: Int
        let sums: UnsafeMutablePointer<Double>
        var rows = 0.0
        var inputs = 0
        init(columns: Int, groups: Int) {
            self.columns = columns
            self.groups = groups
            sums = .allocate(capacity: columns * columns * groups)
            sums.initialize(repeating: 0, count: columns * columns * groups)
        }
        deinit { sums.deallocate() }
    }

    var accumulators: [Int: Accumulator] = [:]
    /// Guards `accumulators` (threads working on different images add to different layers at once).
    private let lock = NSLock()
    let graph: Graph
    let opset: Int64
    let inits: [String: Tensor]
    /// Input tensor → the weighted nodes reading it.
    let readers: [String: [Int]]
    let threads: Int
    let maxInputs: Int
    /// Per thread: im2col columns, their transpose, the product, and the GEMM's packing space.
    private(set) var scratch: [(cols: Scratch, colsT: Scratch, product: Scratch, pack: Scratch)]

    /// Collects for `nodes` (indices into `graph`; those that are not Conv or Gemm with a constant weight are
    /// ignored), from the first `maxInputs` inputs each sees.
    public init(graph: Graph, opset: Int64, nodes: [Int], threads: Int, maxInputs: Int = .max) {
        self.maxInputs = maxInputs
        self.graph = graph
        self.opset = opset
        self.threads = max(1, threads)
        inits = graph.initializerTable
        var r: [String: [Int]] = [:]
        for i in nodes where HessianCollector.supports(graph.nodes[i], inits) { r[graph.nodes[i].inputs[0], default: []].append(i) }
        readers = r
        scratch = (0..<max(1, threads)).map { _ in (Scratch(), Scratch(), Scratch(), Scratch()) }
    }

    /// The sums so far, by node index.
    public var hessians: [Int: LayerHessian] {
        accumulators.mapValues { a in
            var sums = Array(UnsafeBufferPointer(start: a.sums, count: a.columns * a.columns * a.groups))
            let k = a.columns
            for g in 0..<a.groups { for r in 0..<k { for c in (r + 1)..<max(r + 1, k) { sums[g * k * k + r * k + c] = sums[g * k * k + c * k + r] } } }
            return LayerHessian(columns: k, groups: a.groups, sums: sums, rows: a.rows)
        }
    }

    /// Conv (1-D or 2-D), Gemm without transA, MatMul by a matrix and 2-D ConvTranspose without groups, whose
    /// weight is an initializer.
    static func supports(_ n: Node, _ inits: [String: Tensor]) -> Bool {
        guard n.inputs.count >= 2, let w = inits[n.inputs[1]] else { return false }
        switch n.opType {
        case "Conv": return w.shape.count == 3 || w.shape.count == 4
        case "Gemm": return (n.int("transA") ?? 0) == 0 && w.shape.count == 2
        case "MatMul": return w.shape.count == 2
        case "ConvTranspose": return w.shape.count == 4 && (n.int("group") ?? 1) == 1
        default: return false
        }
    }

    /// The tensors whose values enter a Hessian.
    public var inputNames: [String] { readers.keys.sorted() }

    /// For `Interpreter.run(_:observe:)`: on the calling thread with the collector's threads.
    public func observe(_ name: String, _ t: RTensor) { observe(name, t, worker: 0, threads: threads) }

    /// Scratch for `workers` threads observing different images at once, one thread each (call before they start).
    public func reserve(workers: Int) {
        while scratch.count < workers { scratch.append((Scratch(), Scratch(), Scratch(), Scratch())) }
    }

    /// Adds `t` to the Hessians of the layers reading it, using scratch slots `worker` ..< `worker + threads`.
    /// Threads may observe different tensors at once; one tensor's images must come one at a time, in order.
    public func observe(_ name: String, _ t: RTensor, worker: Int, threads: Int) {
        guard let nodes = readers[name], t.dtype == .float else { return }
        for i in nodes {
            lock.lock()
            let seen = accumulators[i]?.inputs ?? 0
            lock.unlock()
            guard seen < maxInputs else { continue }
            accumulate(i, t, slot: worker, threads: threads)
            lock.lock()
            accumulators[i]?.inputs += 1
            lock.unlock()
        }
    }

    func accumulator(_ i: Int, columns: Int, groups: Int) -> Accumulator? {
        lock.lock()
        defer { lock.unlock() }
        if accumulators[i] == nil { accumulators[i] = Accumulator(columns: columns, groups: groups) }
        let a = accumulators[i]!
        return a.columns == columns && a.groups == groups ? a : nil
    }

    func accumulate(_ i: Int, _ t: RTensor, slot base: Int, threads: Int) {
        let n = graph.nodes[i]
        let w = inits[n.inputs[1]]!
        let x = UnsafePointer(t.f)
        if n.opType == "Gemm" || n.opType == "MatMul" {
            // A MatMul's leading dimensions are rows as a Gemm's batch is.
            guard n.opType == "Gemm" ? t.rank == 2 : t.rank >= 2 else { return }
            let k = t.shape[t.rank - 1], rows = t.count / max(k, 1)
            guard k == ((n.int("transB") ?? 0) != 0 ? w.shape[1] : w.shape[0]), let acc = accumulator(i, columns: k, groups: 1) else { return }
            add(acc, group: 0, rows: rows, slot: base, threads: threads) { cols in
                // K × rows: the transpose of x.
                for r in 0..<rows { for c in 0..<k { cols[c * rows + r] = x[r * k + c] } }
            }
            acc.rows += Double(rows)
            return
        }
        if n.opType == "ConvTranspose" {
            accumulateTransposed(i, n, t, weightShape: w.shape, slot: base, threads: threads)
            return
        }
        let setup = OperatorSetup(node: n, opset: opset, constants: [])
        guard let g = try? convGeometry(x: t.shape, w: w.shape, setup: setup, group: Int(n.int("group") ?? 1), fail: NodeFailure(setup)) else { return }
        let cpg = g.channels / g.group, k = cpg * g.kernelH * g.kernelW, hw = g.height * g.width, ohw = g.outHeight * g.outWidth
        guard let acc = accumulator(i, columns: k, groups: g.group) else { return }
        for b in 0..<g.batch {
            func one(_ grp: Int, slot: Int, threads: Int) {
                let xg = x + (b * g.channels + grp * cpg) * hw
                // A 1x1 convolution at stride 1 without pads reads the planes themselves as its columns.
                add(acc, group: grp, rows: ohw, slot: slot, threads: threads, columns: g.isPointwise ? xg : nil) { col in
                    sq_im2col(xg, Int32(cpg), Int32(g.height), Int32(g.width), Int32(g.kernelH), Int32(g.kernelW), Int32(g.strideH), Int32(g.strideW),
                              Int32(g.dilationH), Int32(g.dilationW), Int32(g.padTop), Int32(g.padLeft), Int32(g.outHeight), Int32(g.outWidth),
                              0, Int32(g.outHeight), col)
                }
            }
            if g.group >= threads && k <= HessianCollector.smallColumns {
                // Many small groups (depthwise): the groups are split between threads.
                let per = (g.group + threads - 1) / threads
                parallelFor(threads, threads: threads) { p in
                    for grp in (p * per)..<min(g.group, (p + 1) * per) { one(grp, slot: base + p, threads: 1) }
                }
            } else {
                for grp in 0..<g.group { one(grp, slot: base, threads: threads) }
            }
            acc.rows += Double(ohw)
        }
    }

    /// A ConvTranspose's rows: one per output pixel, its columns (input channel, tap) in the weight's order, each
    /// the input value that tap of that pixel reads (0 where the tap falls between inputs or outside them). Output
    /// pixels are taken by stride phase (oy mod stride, ox mod stride): within a phase the same taps can read,
    /// the others are 0 for every pixel, so each phase adds the Gram matrix of its taps' columns only (a 2x2
    /// kernel at stride 2 reads one tap per phase: a quarter of the columns, a sixteenth of the products).
    /// Rows are taken in chunks of about `transposedChunk` pixels, so the columns never hold a whole map.
    func accumulateTransposed(_ i: Int, _ n: Node, _ t: RTensor, weightShape ws: [Int], slot: Int, threads: Int) {
        guard t.rank == 4, t.shape[1] == ws[0] else { return }
        let c = t.shape[1], h = t.shape[2], wd = t.shape[3], kh = ws[2], kw = ws[3]
        let geo = ConvTransposeGeometry(node: n, input: (h, wd), kernel: (kh, kw))
        let (oh, ow) = (geo.output[0], geo.output[1]), (sy, sx) = (geo.strides[0], geo.strides[1])
        guard oh > 0, ow > 0, sy > 0, sx > 0, let acc = accumulator(i, columns: c * kh * kw, groups: 1) else { return }
        let x = UnsafePointer(t.f)
        // The taps along one axis that can read at output positions ≡ phase (mod stride).
        func taps(phase: Int, axis a: Int, count: Int) -> [Int] {
            (0..<count).filter { k in ((phase + geo.pads[a] - k * geo.dilations[a]) % geo.strides[a] + geo.strides[a]) % geo.strides[a] == 0 }
        }
        // Where tap k of output position o reads along one axis (o in its tap's phase): the input index, or -1.
        func source(_ o: Int, _ k: Int, axis a: Int, size: Int) -> Int {
            let p = o + geo.pads[a] - k * geo.dilations[a]
            return p >= 0 && p / geo.strides[a] < size ? p / geo.strides[a] : -1
        }
        for py in 0..<min(sy, oh) {
            for px in 0..<min(sx, ow) {
                let ky = taps(phase: py, axis: 0, count: kh), kx = taps(phase: px, axis: 1, count: kw)
                guard !ky.isEmpty, !kx.isEmpty else { continue }  // no tap reaches these pixels: zero rows
                let index = (0..<c).flatMap { ci in ky.flatMap { a in kx.map { b in (ci * kh + a) * kw + b } } }
                let ys = Array(stride(from: py, to: oh, by: sy)), xs = Array(stride(from: px, to: ow, by: sx))
                let band = max(1, transposedChunk / xs.count)
                let ixs = kx.map { bx in xs.map { source($0, bx, axis: 1, size: wd) } }
                for b in 0..<t.shape[0] {
                    let xb = x + b * c * h * wd
                    for r0 in stride(from: 0, to: ys.count, by: band) {
                        let rowsHere = ys[r0..<min(ys.count, r0 + band)], pixels = rowsHere.count * xs.count
                        add(acc, group: 0, rows: pixels, slot: slot, threads: threads, index: index) { cols in
                            var col = cols
                            for ci in 0..<c {
                                for a in ky {
                                    for ix in ixs {
                                        for (r, oy) in rowsHere.enumerated() {
                                            let iy = source(oy, a, axis: 0, size: h), row = col + r * xs.count
                                            guard iy >= 0 else { row.update(repeating: 0, count: xs.count); continue }
                                            let plane = xb + (ci * h + iy) * wd
                                            for j in 0..<xs.count { row[j] = ix[j] >= 0 ? plane[ix[j]] : 0 }
                                        }
                                        col += pixels
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        acc.rows += Double(t.shape[0] * oh * ow)
    }

    /// Output pixels per chunk of a ConvTranspose's Hessian rows.
    public var transposedChunk = 16384

    /// Below this many columns the Gram matrix is summed directly (sq_gram), above by GEMM.
    static let smallColumns = 32

    /// Adds cols·colsᵀ of the K × rows matrix `columns` (or, when nil, the one `fill` writes) to group `group` of
    /// `acc`, with scratch `slot`; with `index`, the K = index.count columns are columns index[0] < index[1] < …
    /// of the layer's matrix (the others are 0 in these rows).
    func add(_ acc: Accumulator, group: Int, rows: Int, slot: Int, threads: Int, columns: UnsafePointer<Float>? = nil, index: [Int]? = nil,
             fill: (UnsafeMutablePointer<Float>) -> Void) {
        let k = index?.count ?? acc.columns, s = scratch[slot]
        let cols: UnsafePointer<Float>
        if let columns { cols = columns } else {
            let c = s.cols.floats(k * rows)
            fill(c)
            cols = UnsafePointer(c)
        }
        let h = s.product.floats(k * k)
        if k <= HessianCollector.smallColumns {
            sq_gram(cols, Int32(k), Int32(rows), h)
        } else {
            let colsT = s.colsT.floats(k * rows)
            // Transposed in 32 x 32 tiles (a column-by-column copy strides through memory K floats at a time).
            sq_transpose(cols, Int32(k), Int32(rows), colsT)
            // The lower triangle by bands of 64 rows (each band against the columns up to its end), then mirrored:
            // about half the products of the full matrix.
            for a in stride(from: 0, to: k, by: 64) {
                let m = min(64, k - a)
                Fast.matmul(m: m, n: a + m, k: rows, a: cols + a * rows, lda: rows, b: colsT, ldb: k, c: h + a * k, ldc: k, scratch: s.pack, threads: threads)
            }
        }
        // The lower triangle only (both paths fill it); `hessians` mirrors it.
        if let index {
            // Increasing indices keep the lower triangle lower.
            let full = acc.columns, sums = acc.sums + group * full * full
            for a in 0..<k { for b in 0...a { sums[index[a] * full + index[b]] += Double(h[a * k + b]) } }
        } else {
            sq_add_lower_f64(h, Int32(k), acc.sums + group * k * k)
        }
    }
}

/// The outcome of rounding one weight matrix.
public struct RoundedWeight: Sendable {
    /// Per output channel.
    public var scales: [Float]
    /// Integer weights in the weight tensor's own layout.
    public var values: [Int32]
    public var bits: Int
    public var error: RoundingError
}

/// Σ over output channels of Δwᵀ H Δw (Δw = dequantized − float weights): the layer's squared output error summed
/// over the calibration inputs, for nearest rounding with absolute-maximum ranges and for the rounding chosen; and
/// Σ wᵀ H w, the output's energy.
public struct RoundingError: Sendable, Equatable {
    public var nearest: Double
    public var rounded: Double
    public var energy: Double

    /// The output SQNR in dB of nearest rounding and of the rounding chosen, on the calibration inputs.
    public var sqnrNearest: Double { 10 * log10(energy / Swift.max(nearest, .leastNormalMagnitude)) }
    public var sqnrRounded: Double { 10 * log10(energy / Swift.max(rounded, .leastNormalMagnitude)) }

    static func + (a: RoundingError, b: RoundingError) -> RoundingError {
        RoundingError(nearest: a.nearest + b.nearest, rounded: a.rounded + b.rounded, energy: a.energy + b.energy)
    }
}

public enum GPTQ {
    /// Rounds `w` (rows × columns row-major; each row one output channel, columns in the order of `h`) onto the
    /// symmetric grid of ±`qmax` per row (one grid for all rows, tensorMax / qmax, when `tensorMax` is given) with GPTQ. `h` is the columns × columns input second-moment matrix (symmetric).
    /// Rows are independent given H, so they are split between `threads`.
    public static func round(_ w: [Float], rows: Int, columns k: Int, hessian h: [Double], qmax: Int32, tensorMax: Float? = nil,
                             options: GPTQOptions = GPTQOptions(), threads: Int = 1) -> (scales: [Float], q: [Int32], error: RoundingError) {
        precondition(w.count == rows * k && h.count == k * k)
        var hd = h
        // Columns that never saw input: their weights cannot matter on these inputs; a unit diagonal keeps H invertible.
        for c in 0..<k where hd[c * k + c] <= 0 { hd[c * k + c] = 1 }
        var meanDiag = (0..<k).reduce(0.0) { $0 + hd[$1 * k + $1] } / Double(k)
        if meanDiag > 1e30 || meanDiag < 1e-30 {
            // The inverse factor (about H^-1/2) is applied in Float: for inputs this large or small it would leave Float's
            // range. GPTQ's updates are ratios of its entries, so H scaled to a unit mean diagonal gives the same result.
            for i in hd.indices { hd[i] /= meanDiag }
            meanDiag = 1
        }
        let refitting = options.refitSteps && tensorMax == nil
        // H as the error is measured (unit diagonal where no input came, scaled), before dampening: what the refit fits.
        let measured = refitting ? hd.map(Float.init) : []
        let damp = options.dampening * meanDiag
        for c in 0..<k { hd[c * k + c] += damp }
        let order = options.activationOrder ? (0..<k).sorted { hd[$0 * k + $0] > hd[$1 * k + $1] } : Array(0..<k)
        var hp = [Double](repeating: 0, count: k * k)
        for a in 0..<k { for b in 0..<k { hp[a * k + b] = hd[order[a] * k + order[b]] } }
        // The factorization reads one triangle: a value that is not finite in either sends the layer to nearest rounding.
        let finite = hp.allSatisfy(\.isFinite)
        let u = (finite ? inverseCholeskyUpper(hp, k) : nil) ?? {
            // Not positive definite even dampened (numerically singular): more dampening until it is.
            var extra = hp
            var d = damp + meanDiag
            for _ in 0..<40 where d.isFinite && finite {
                for c in 0..<k { extra[c * k + c] = hp[c * k + c] + d }
                if let u = inverseCholeskyUpper(extra, k) { return u }
                d *= 10
            }
            // Past any dampening (values that overflow the factorization): the identity, each column rounded to nearest
            // with nothing pushed onto the others.
            var identity = [Double](repeating: 0, count: k * k)
            for c in 0..<k { identity[c * k + c] = 1 }
            return identity
        }()
        let diag = (0..<k).map { h[$0 * k + $0] }
        let uf = u.map(Float.init)
        let qm = Float(qmax)
        var scales = [Float](repeating: 1, count: rows)
        var q = [Int32](repeating: 0, count: rows * k)
        // Δw of nearest rounding and of the result, for the error report.
        var dNearest = [Float](repeating: 0, count: rows * k)
        scales.withUnsafeMutableBufferPointer { scales in
        q.withUnsafeMutableBufferPointer { q in
        dNearest.withUnsafeMutableBufferPointer { dNearest in
            parallelRanges(rows, minimum: 8, threads: threads) { range in
                // Sixteen rows at a time, one lane each: every row of U is read once per sixteen rows (U of a 1280-column
                // layer is 6.5 MB). Each weight gets the same updates, in the same order, as one row at a time.
                typealias Lanes = SIMD16<Float>
                var wb = [Lanes](repeating: Lanes(), count: k)
                var steps = Lanes(repeating: 1)
                for r0 in stride(from: range.lowerBound, to: range.upperBound, by: Lanes.scalarCount) {
                    let lanes = Swift.min(Lanes.scalarCount, range.upperBound - r0)
                    for l in 0..<Lanes.scalarCount {
                        guard l < lanes else {
                            steps[l] = 1
                            for c in 0..<k { wb[c][l] = 0 }
                            continue
                        }
                        let r = r0 + l
                        let row = w[(r * k)..<(r * k + k)]
                        let absMax = tensorMax ?? row.reduce(Float(0)) { Swift.max($0, abs($1)) }
                        let base = absMax > 0 && absMax.isFinite ? absMax / qm : 1
                        let s = tensorMax != nil ? base : bestScale(Array(row), diag: diag, base: base, qmax: qm, smallest: options.smallestRange)
                        scales[r] = s
                        steps[l] = s
                        for c in 0..<k { wb[c][l] = row[r * k + order[c]] }
                        for c in 0..<k {
                            let v = row[r * k + c]
                            dNearest[r * k + c] = Swift.min(Swift.max(roundedEven(v / base), -qm), qm) * base - v
                        }
                    }
                    wb.withUnsafeMutableBufferPointer { wb in
                    uf.withUnsafeBufferPointer { uf in
                        for c in 0..<k {
                            let wc = wb[c], d = uf[c * k + c]
                            var e = Lanes()
                            for l in 0..<lanes {
                                let v = roundedEven(wc[l] / steps[l])
                                let qc = Swift.min(Swift.max(v.isNaN ? 0 : v, -qm), qm)
                                q[(r0 + l) * k + order[c]] = Int32(qc)
                                e[l] = (wc[l] - qc * steps[l]) / d
                            }
                            let urow = uf.baseAddress! + c * k
                            for j in (c + 1)..<k { wb[j] -= e * urow[j] }
                        }
                    } }
                }
            }
        } } }
        if refitting { refit(&scales, q: q, w: w, h: measured, rows: rows, k: k, threads: threads) }
        var dRounded = [Float](repeating: 0, count: rows * k)
        for j in 0..<(rows * k) { dRounded[j] = Float(q[j]) * scales[j / k] - w[j] }
        let hf = h.map(Float.init)
        let error = RoundingError(nearest: quadratic(dNearest, hf, rows: rows, k: k, threads: threads),
                                  rounded: quadratic(dRounded, hf, rows: rows, k: k, threads: threads),
                                  energy: quadratic(w, hf, rows: rows, k: k, threads: threads))
        return (scales, q, error)
    }

    /// Each row's step replaced by the least-squares one for its integers, s = qᵀHw / qᵀHq (kept when that is not a
    /// positive finite number: integers all zero, or pointing away from w).
    static func refit(_ scales: inout [Float], q: [Int32], w: [Float], h: [Float], rows: Int, k: Int, threads: Int) {
        let qf = q.map(Float.init)
        let qh = timesH(qf, h, rows: rows, k: k, threads: threads)
        for r in 0..<rows {
            var num = 0.0, den = 0.0
            for j in (r * k)..<(r * k + k) {
                num += Double(qh[j]) * Double(w[j])
                den += Double(qh[j]) * Double(qf[j])
            }
            let s = Float(num / den)
            if s > 0 && s.isFinite { scales[r] = s }
        }
    }

    /// Σ over rows v of vᵀ H v for the rows × k matrix `v`.
    static func quadratic(_ v: [Float], _ h: [Float], rows: Int, k: Int, threads: Int) -> Double {
        let vh = timesH(v, h, rows: rows, k: k, threads: threads)
        var s = 0.0
        for j in 0..<(rows * k) { s += Double(v[j]) * Double(vh[j]) }
        return s
    }

    /// v · H for the rows × k matrix `v` and the k × k matrix `h`.
    static func timesH(_ v: [Float], _ h: [Float], rows: Int, k: Int, threads: Int) -> [Float] {
        var vh = [Float](repeating: 0, count: rows * k)
        Fast.matmul(m: rows, n: k, k: k, a: v, lda: k, b: h, ldb: k, c: &vh, ldc: k, scratch: Scratch(), threads: threads)
        return vh
    }

    /// The step among base · {1, 0.98, …, smallest} whose nearest rounding has the least Σ diag(H)·Δw².
    static func bestScale(_ row: [Float], diag: [Double], base: Float, qmax: Float, smallest: Float) -> Float {
        guard smallest < 1 else { return base }
        var best = base, bestErr = Double.infinity
        var f: Float = 1
        row.withUnsafeBufferPointer { row in
        diag.withUnsafeBufferPointer { diag in
            while f >= smallest - 1e-6 {
                let s = base * f
                var e = 0.0
                for c in 0..<row.count {
                    let v = row[c]
                    let qv = Swift.min(Swift.max(roundedEven(v / s), -qmax), qmax)
                    let d = Double(qv * s - v)
                    e += diag[c] * d * d
                }
                if e < bestErr { bestErr = e; best = s }
                f -= 0.02
            }
        } }
        return best
    }

    /// x rounded half to even, as `x.rounded(.toNearestOrEven)` (whose baseline x86-64 code is a call to rintf per
    /// value): below 2²³ in magnitude, adding and taking away 1.5 · 2²³ leaves the nearest integer, ties to even (1.5 · 2²³
    /// is even); from 2²³ on every Float is an integer; NaN stays NaN. The sign of a zero may differ, which no use
    /// here sees (it is clamped, multiplied and subtracted).
    @inline(__always)
    static func roundedEven(_ x: Float) -> Float {
        let magic: Float = 12_582_912
        return abs(x) < 8_388_608 ? (x + magic) - magic : x
    }

    /// U upper triangular with H⁻¹ = Uᵀ U (the Cholesky factor of the inverse GPTQ reads its updates from), or nil
    /// when H is not positive definite. With J the order reversal, J H J = L Lᵀ (Cholesky), so H = R Rᵀ with
    /// R = J L J upper triangular and H⁻¹ = R⁻ᵀ R⁻¹: U = R⁻¹ = J L⁻¹ J, one factorization and one triangular inverse
    /// (C kernels, linalg.c) where inverting H and factoring the inverse take twice the arithmetic.
    static func inverseCholeskyUpper(_ h: [Double], _ k: Int) -> [Double]? {
        var reversed = [Double](repeating: 0, count: k * k)
        for a in 0..<k { for b in 0..<k { reversed[a * k + b] = h[(k - 1 - a) * k + (k - 1 - b)] } }
        guard let l = cholesky(reversed, k) else { return nil }
        var m = [Double](repeating: 0, count: k * k)
        sq_lower_inverse(l, Int32(k), &m)
        var u = [Double](repeating: 0, count: k * k)
        for a in 0..<k { for b in a..<k { u[a * k + b] = m[(k - 1 - a) * k + (k - 1 - b)] } }
        return u
    }

    /// The lower Cholesky factor L of a symmetric positive definite k × k matrix (H = L Lᵀ), nil when it is not.
    static func cholesky(_ h: [Double], _ k: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: k * k)
        return sq_cholesky(h, Int32(k), &l) != 0 ? l : nil
    }
}
