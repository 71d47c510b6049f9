import CKernels
import Foundation

/// Per-channel requantization of int32 accumulators, owning the arrays the C kernels read (padded to a
/// multiple of 16 channels). To bytes: q = clamp(zero + M[c](acc + bias[c]), lo, hi) with M[c] a
/// `FixedPointMultiplier` (ONNX Runtime's rounding); or, to floats, (acc + bias[c]) · scale[c]. Bytes are
/// "biased": an int8 tensor is stored as q + 128 with its zero point and limits moved the same way, so every
/// kernel reads uint8.
public final class Requantization: @unchecked Sendable {
    public let channels: Int
    private let biasBuffer: AlignedBuffer<Int32>, scaleBuffer: AlignedBuffer<Float>
    var bias: UnsafeMutablePointer<Int32> { biasBuffer.p }
    /// The multipliers M[c] as float32 (exactly), or the float output's scales.
    var scale: UnsafeMutablePointer<Float> { scaleBuffer.p }
    public let producesFloats: Bool
    public let zero: Int32, lo: Int32, hi: Int32

    private init(channels: Int, floats: Bool, zero: Int32, lo: Int32, hi: Int32) {
        self.channels = channels
        let n = (channels + 15) / 16 * 16
        biasBuffer = AlignedBuffer(count: n, repeating: 0)
        scaleBuffer = AlignedBuffer(count: n, repeating: 0)
        producesFloats = floats
        self.zero = zero; self.lo = lo; self.hi = hi
    }

    /// Requantization to bytes by per-channel multipliers (`FixedPointMultiplier.ortConv` for a weighted layer).
    public convenience init(bias: [Int32], multipliers: [FixedPointMultiplier], zero: Int32, lo: Int32, hi: Int32) {
        self.init(channels: bias.count, floats: false, zero: zero, lo: lo, hi: hi)
        for c in 0..<bias.count { self.bias[c] = bias[c]; scale[c] = multipliers[c].float }
    }

    /// Dequantization of the accumulators to floats: (acc + bias[c]) · scales[c].
    public convenience init(bias: [Int32], floatScales: [Float]) {
        self.init(channels: bias.count, floats: true, zero: 0, lo: 0, hi: 0)
        for c in 0..<bias.count { self.bias[c] = bias[c]; scale[c] = floatScales[c] }
    }

    /// The C view.
    func c() -> sq_qrequant {
        sq_qrequant(bias: bias, scale: scale, zero: zero, lo: lo, hi: hi, out_float: producesFloats ? 1 : 0)
    }

    private var groupSlices: [Requantization] = []

    /// One requantization per group of a grouped convolution (made once).
    func slices(_ groups: Int) -> [Requantization] {
        if groups == 1 { return [self] }
        if groupSlices.count != groups {
            let per = channels / groups
            groupSlices = (0..<groups).map { Requantization(copying: self, from: $0 * per, count: per) }
        }
        return groupSlices
    }

    private convenience init(copying r: Requantization, from first: Int, count: Int) {
        self.init(channels: count, floats: r.producesFloats, zero: r.zero, lo: r.lo, hi: r.hi)
        for c in 0..<count { bias[c] = r.bias[first + c]; scale[c] = r.scale[first + c] }
    }

    /// The reference: the byte for one accumulator of channel `c` (`FixedPointMultiplier.apply` in integers,
    /// then the zero point, then the clamp).
    public func reference(_ acc: Int32, channel c: Int) -> Int32 {
        let v = Int64(FixedPointMultiplier(scale[c]).apply(acc &+ bias[c])) + Int64(zero)
        return Int32(min(max(v, Int64(lo)), Int64(hi)))
    }

    /// The reference of the float output.
    public func referenceFloat(_ acc: Int32, channel c: Int) -> Float { Float(acc &+ bias[c]) * scale[c] }
}

/// int8 convolution weights packed once for `FastInteger.conv`: per group, the GEMM layout of
/// W[m][(kh·KW + kw)·C + c] (the NHWC im2col order) and each row's sum, which removes the input zero point.
public final class PackedConvWeights: @unchecked Sendable {
    public let outChannels: Int, groupInputs: Int, kernelH: Int, kernelW: Int, group: Int
    public var rowLength: Int { groupInputs * kernelH * kernelW }
    let packed: [AlignedBuffer<Int8>]
    /// Σ_k W[m][k] per output channel.
    public let rowSums: [Int32]

    /// `values`: the ONNX weight [M][C/group][KH][KW], int8 widened to Int32.
    public init(values: [Int32], outChannels m: Int, groupInputs c: Int, kernelH kh: Int, kernelW kw: Int, group: Int) {
        outChannels = m; groupInputs = c; kernelH = kh; kernelW = kw; self.group = group
        let k = c * kh * kw, mg = m / group
        var packs: [AlignedBuffer<Int8>] = []
        var sums = [Int32](repeating: 0, count: m)
        for g in 0..<group {
            var rows = [Int8](repeating: 0, count: mg * k)
            for r in 0..<mg {
                let o = g * mg + r
                for ci in 0..<c {
                    for t in 0..<(kh * kw) {
                        let v = values[(o * c + ci) * kh * kw + t]
                        rows[r * k + t * c + ci] = Int8(clamping: v)
                        sums[o] &+= v
                    }
                }
            }
            let p = AlignedBuffer<Int8>(count: sq_qgemm_packed_size(Int32(mg), Int32(k)), repeating: 0)
            sq_qgemm_pack_a(Int32(mg), Int32(k), rows, p.p)
            packs.append(p)
        }
        packed = packs
        rowSums = sums
    }
}

/// Depthwise weights packed once for `FastInteger.depthwise` (16 channels × 4 taps per 64-byte group), and each
/// channel's sum over the window, which removes the input zero point.
public final class PackedDepthwiseWeights: @unchecked Sendable {
    public let channels: Int, kernelH: Int, kernelW: Int
    let packed: AlignedBuffer<Int8>
    public let tapSums: [Int32]

    /// `values`: the ONNX weight [C][1][KH][KW], int8 widened to Int32.
    public init(values: [Int32], channels c: Int, kernelH kh: Int, kernelW kw: Int) {
        channels = c; kernelH = kh; kernelW = kw
        let w = values.map { Int8(clamping: $0) }
        packed = AlignedBuffer(count: sq_qdw_packed_size(Int32(c), Int32(kh), Int32(kw)), repeating: 0)
        sq_qdw_pack(Int32(c), Int32(kh), Int32(kw), w, packed.p)
        tapSums = (0..<c).map { ch in values[(ch * kh * kw)..<((ch + 1) * kh * kw)].reduce(0, &+) }
    }
}

public enum FastInteger {
    /// y[i] = table[x[i]] over `count` bytes, split between threads.
    public static func lookup(_ x: UnsafePointer<UInt8>, count: Int, table: RequantTable, into y: UnsafeMutablePointer<UInt8>, threads: Int = 1) {
        table.bytes.withUnsafeBufferPointer { t in
            parallelRanges(count, minimum: 1 << 16, threads: threads) { r in
                sq_qcopy_channels(x + r.lowerBound, Int32(r.count), 1, Int32(r.count), t.baseAddress, y + r.lowerBound, Int32(r.count))
            }
        }
    }

    /// NHWC bytes (P pixels of C channels) through one 256-entry table per channel.
    public static func tableChannels(_ x: UnsafePointer<UInt8>, pixels: Int, channels: Int, tables: UnsafePointer<UInt8>, into y: UnsafeMutablePointer<UInt8>, threads: Int = 1) {
        parallelRanges(pixels, minimum: (1 << 16) / max(1, channels), threads: threads) { r in
            sq_qtable_channels(x + r.lowerBound * channels, Int32(r.count), Int32(channels), tables, y + r.lowerBound * channels)
        }
    }

    /// ConvTranspose's col2im and requantization for one image: `columns` holds per input pixel the KH·KW·M exact
    /// sums as floats (tap (a, e) of channel m at (a·KW + e)·M + m); output pixel (r, q), channel m, gathers the taps that land on it, adds bias[m], and becomes
    /// clamp(rint(acc · scales[m]) + zy, lo, hi) in NHWC bytes. Split by output rows between threads.
    public static func convTransposeColumns(_ columns: UnsafePointer<Float>, height: Int, width: Int, channels m: Int, kernel: (Int, Int),
                                            stride: (Int, Int), dilation: (Int, Int), pads: (Int, Int), bias: [Int32], scales: [Float],
                                            zero: Float, lo: Float, hi: Float, into y: UnsafeMutablePointer<UInt8>, outHeight: Int, outWidth: Int, threads: Int = 1) {
        bias.withUnsafeBufferPointer { b in scales.withUnsafeBufferPointer { s in
            parallelRanges(outHeight, minimum: (1 << 15) / max(1, outWidth * m), threads: threads) { rows in
                let (r0, r1) = (rows.lowerBound, rows.upperBound)
                var acc = [Int32](repeating: 0, count: m)
                acc.withUnsafeMutableBufferPointer { a in
                    sq_qconvtranspose_rows(columns, Int32(height), Int32(width), Int32(m), Int32(kernel.0), Int32(kernel.1), Int32(stride.0), Int32(stride.1),
                                           Int32(dilation.0), Int32(dilation.1), Int32(pads.0), Int32(pads.1), b.baseAddress, s.baseAddress, zero, lo, hi,
                                           y, Int32(outWidth), Int32(r0), Int32(r1), a.baseAddress)
                }
            }
        } }
    }

    /// Nearest Resize of NHWC images: output pixel (oh, ow) of each image is input pixel (rows[oh], cols[ow]).
    public static func resizeNearest(_ x: UnsafePointer<UInt8>, images: Int, height: Int, width: Int, channels: Int, rows: [Int32], cols: [Int32],
                                     into y: UnsafeMutablePointer<UInt8>, threads: Int = 1) {
        let oh = rows.count, ow = cols.count
        rows.withUnsafeBufferPointer { r in cols.withUnsafeBufferPointer { c in
            for i in 0..<images {
                parallelRanges(oh, minimum: (1 << 16) / max(1, ow * channels), threads: threads) { span in
                    sq_qresize_nearest_nhwc(x + i * height * width * channels, Int32(width), Int32(channels), r.baseAddress, c.baseAddress, Int32(ow),
                                            y + i * oh * ow * channels, Int32(span.lowerBound), Int32(span.upperBound))
                }
            }
        } }
    }

    /// Bytes of im2col scratch `conv` needs for `g` on up to `threads` threads (0 when it reads the input directly:
    /// 1x1, stride 1, no padding, one group): a chunk of rows per thread, or every row when the threads split
    /// output channels instead (fewer than 48 pixels).
    public static func scratchBytes(_ g: ConvGeometry, threads: Int) -> Int {
        if direct(g) { return 0 }
        let k4 = rowBytes(g), ohw = g.outHeight * g.outWidth
        return k4 * max(min(ohw, 48), max(1, threads) * min(ohw, chunkPixels(k4)))
    }

    static func direct(_ g: ConvGeometry) -> Bool {
        g.group == 1 && g.kernelH == 1 && g.kernelW == 1 && g.strideH == 1 && g.strideW == 1 && g.padTop == 0 && g.padLeft == 0
    }

    /// Bytes of one im2col row: a group's K rounded up to 4.
    static func rowBytes(_ g: ConvGeometry) -> Int { (g.channels / g.group * g.kernelH * g.kernelW + 3) / 4 * 4 }

    /// Pixels of im2col made at a time before the GEMM reads them: about 128 KiB (still in cache when read, where
    /// a thread's whole share written first went out to memory and back: a 3x3 layer of 96 channels at 160x160
    /// writes 22 MB of rows), a multiple of 24 so that every tile height divides it.
    static func chunkPixels(_ k4: Int) -> Int { min(2016, max(24, (1 << 17) / k4 / 24 * 24)) }

    /// A convolution (any group count) of NHWC bytes `x` (zero point `xZero`) into NHWC `y` (bytes, or floats when
    /// `rq` produces floats), requantized per output channel. `rq`'s bias must already hold bias − xZero · rowSums.
    /// The int8 GEMM (VNNI when present) over the input itself or over NHWC im2col rows in `scratch`
    /// (`scratchBytes(g, threads:)`, padded with the zero point), made a chunk at a time per thread.
    public static func conv(x: UnsafePointer<UInt8>, xZero: Int32, w: PackedConvWeights, rq: Requantization, _ g: ConvGeometry,
                            y: UnsafeMutableRawPointer, scratch: UnsafeMutablePointer<UInt8>?, threads: Int) {
        precondition(w.outChannels == g.outChannels && w.group == g.group && w.groupInputs * g.group == g.channels)
        let ohw = g.outHeight * g.outWidth, m = g.outChannels, mg = m / g.group, cg = w.groupInputs, k = w.rowLength
        let k4 = (k + 3) / 4 * 4, isDirect = direct(g)
        precondition(isDirect || k4 == rowBytes(g))
        let elem = rq.producesFloats ? 4 : 1
        let groups = rq.slices(g.group)
        let chunk = chunkPixels(k4)
        for n in 0..<g.batch {
            let xn = x + n * g.height * g.width * g.channels
            let yn = y + n * ohw * m * elem
            for grp in 0..<g.group {
                // Pixels split over threads when there are enough, else output channels in blocks of 64.
                let byPixels = ohw >= 48 || mg <= 64
                let parts = threads <= 1 ? 1 : byPixels ? min(threads, max(1, ohw / 24)) : min(threads, (mg + 63) / 64)
                let w = w.packed[grp]
                var rc = groups[grp].c()
                let im2col = { (p0: Int, p1: Int, col: UnsafeMutablePointer<UInt8>) in
                    sq_im2col_nhwc(xn, Int32(g.height), Int32(g.width), Int32(g.channels), Int32(grp * cg), Int32(cg), Int32(g.kernelH), Int32(g.kernelW),
                                   Int32(g.strideH), Int32(g.strideW), Int32(g.dilationH), Int32(g.dilationW), Int32(g.padTop), Int32(g.padLeft),
                                   Int32(g.outWidth), UInt8(xZero), col, Int32(k4), Int32(p0), Int32(p1))
                }
                if !isDirect && !byPixels { im2col(0, ohw, scratch!) }
                let yg = yn + grp * mg * elem
                withUnsafePointer(to: &rc) { rp in
                    parallelFor(parts, threads: threads) { part in
                        var p0 = 0, p1 = ohw, m0 = 0, m1 = mg
                        if byPixels { p0 = ohw * part / parts; p1 = ohw * (part + 1) / parts } else {
                            let blocks = (mg + 63) / 64
                            m0 = blocks * part / parts * 64; m1 = min(mg, blocks * (part + 1) / parts * 64)
                        }
                        guard p0 < p1, m0 < m1 else { return }
                        if isDirect || !byPixels {
                            let (src, ld) = isDirect ? (xn, g.channels) : (UnsafePointer(scratch!), k4)
                            sq_qgemm_nhwc(Int32(mg), Int32(k), src, Int32(ld), w.p, rp, yg, Int32(m), Int32(p0), Int32(p1), Int32(m0), Int32(m1))
                            return
                        }
                        // This thread's rows a chunk at a time, each read by the GEMM right after it is made.
                        let col = scratch! + part * min(ohw, chunk) * k4
                        for q0 in stride(from: p0, to: p1, by: chunk) {
                            let q1 = min(p1, q0 + chunk)
                            im2col(q0, q1, col)
                            sq_qgemm_nhwc(Int32(mg), Int32(k), col, Int32(k4), w.p, rp, yg + q0 * m * elem, Int32(m), 0, Int32(q1 - q0), Int32(m0), Int32(m1))
                        }
                    }
                }
            }
        }
    }

    /// Bytes of scratch `depthwise` needs for `g` with up to `threads` threads (the VNNI and AVX2 paths' rings of
    /// padded, tap-interleaved input rows; 0 on the portable loop).
    public static func depthwiseScratchBytes(_ g: ConvGeometry, threads: Int) -> Int {
        max(1, threads) * sq_qdw_scratch_size(Int32(g.channels), Int32(g.kernelH), Int32(g.kernelW), Int32(g.strideW), Int32(g.outWidth))
    }

    /// A depthwise convolution (dilation 1) of NHWC bytes into NHWC bytes: acc = Σ x · w over the whole window,
    /// taps outside the image reading `xZero`, then `rq`, whose bias must hold bias − xZero · `w.tapSums`.
    /// Output rows are split over the threads; `scratch` holds `depthwiseScratchBytes(g, threads:)`.
    public static func depthwise(x: UnsafePointer<UInt8>, xZero: Int32, w: PackedDepthwiseWeights, rq: Requantization, _ g: ConvGeometry,
                                 y: UnsafeMutablePointer<UInt8>, scratch: UnsafeMutablePointer<UInt8>?, threads: Int) {
        precondition(g.isDepthwise && g.dilationH == 1 && g.dilationW == 1 && !rq.producesFloats && w.channels == g.channels)
        let ring = depthwiseScratchBytes(g, threads: 1)
        precondition(scratch != nil || ring == 0)
        let c = g.channels, oh = g.outHeight
        var rc = rq.c()
        let (H, W, C, KH, KW) = (Int32(g.height), Int32(g.width), Int32(c), Int32(g.kernelH), Int32(g.kernelW))
        let (SH, SW, PT, PL, OW) = (Int32(g.strideH), Int32(g.strideW), Int32(g.padTop), Int32(g.padLeft), Int32(g.outWidth))
        let parts = threads > 1 && oh >= 2 ? min(threads, oh) : 1
        withUnsafePointer(to: &rc) { rp in
            for n in 0..<g.batch {
                let xn = x + n * g.height * g.width * c, yn = y + n * oh * g.outWidth * c
                parallelFor(parts, threads: threads) { part in
                    sq_qdw_run(xn, ring > 0 ? scratch! + part * ring : nil, H, W, C, KH, KW, SH, SW, PT, PL, OW, UInt8(xZero), w.packed.p, rp, yn,
                               Int32(oh * part / parts), Int32(oh * (part + 1) / parts))
                }
            }
        }
    }

    /// The int8 Add of `count` bytes (see `AddRescale`).
    public static func add(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ r: AddRescale, y: UnsafeMutablePointer<UInt8>, count: Int, threads: Int) {
        var q = r.c
        withUnsafePointer(to: &q) { qp in
            let parts = threads > 1 && count >= 1 << 14 ? threads : 1
            parallelFor(parts, threads: threads) { part in
                sq_qadd_u8(a, b, qp, y, count * part / parts, count * (part + 1) / parts)
            }
        }
    }
}

extension FastInteger {
    /// One image's float planes (C × pixels, NCHW) to bytes: clamp(rint(x / scale) + zero, lo, hi) as
    /// QuantizeLinear rounds, written NHWC when `nhwc`; pixels split over the threads in runs of 64.
    public static func quantize(_ x: UnsafePointer<Float>, channels: Int, pixels: Int, scale: Float, zero: Int32, lo: Int32, hi: Int32, nhwc: Bool,
                                into y: UnsafeMutablePointer<UInt8>, threads: Int = 1) {
        let runs = (pixels + 63) / 64, parts = max(1, min(threads, runs / 16))
        parallelFor(parts, threads: threads) { part in
            let p0 = min(pixels, runs * part / parts * 64), p1 = min(pixels, runs * (part + 1) / parts * 64)
            if p0 < p1 { sq_quantize_planes(x, Int32(channels), Int32(pixels), scale, zero, lo, hi, y, nhwc ? 1 : 0, Int32(p0), Int32(p1)) }
        }
    }

    /// One image's bytes (NHWC when `nhwc`) to float planes: (b − zero) · scale.
    public static func dequantize(_ x: UnsafePointer<UInt8>, channels: Int, pixels: Int, scale: Float, zero: Int32, nhwc: Bool, into y: UnsafeMutablePointer<Float>) {
        sq_dequantize_planes(x, Int32(channels), Int32(pixels), scale, zero, y, nhwc ? 1 : 0)
    }

    /// y (cols × rows) = the transpose of x (rows × cols): NCHW ↔ NHWC for one image.
    public static func transpose(_ x: UnsafePointer<UInt8>, rows: Int, cols: Int, into y: UnsafeMutablePointer<UInt8>) {
        sq_transpose_u8(x, Int32(rows), Int32(cols), y)
    }

    /// `rows` rows of `count` bytes from x (stride ldx) to y (stride ldy) through `table` (a `RequantTable`), or
    /// copied when `table` is nil.
    public static func copy(_ x: UnsafePointer<UInt8>, ldx: Int, rows: Int, count: Int, table: RequantTable?, into y: UnsafeMutablePointer<UInt8>, ldy: Int) {
        if let table {
            table.bytes.withUnsafeBufferPointer { sq_qcopy_channels(x, Int32(ldx), Int32(rows), Int32(count), $0.baseAddress, y, Int32(ldy)) }
        } else {
            sq_qcopy_channels(x, Int32(ldx), Int32(rows), Int32(count), nil, y, Int32(ldy))
        }
    }

    /// Max pooling of one NHWC image (taps outside the image skipped).
    public static func maxPool(_ x: UnsafePointer<UInt8>, _ g: ConvGeometry, into y: UnsafeMutablePointer<UInt8>, threads: Int) {
        let ohw = g.outHeight * g.outWidth
        let parts = threads > 1 && ohw >= 16 ? threads : 1
        parallelFor(parts, threads: threads) { p in
            sq_qmaxpool_nhwc(x, Int32(g.height), Int32(g.width), Int32(g.channels), Int32(g.kernelH), Int32(g.kernelW), Int32(g.strideH), Int32(g.strideW),
                             Int32(g.dilationH), Int32(g.dilationW), Int32(g.padTop), Int32(g.padLeft), y, Int32(g.outWidth), Int32(ohw * p / parts), Int32(ohw * (p + 1) / parts))
        }
    }

    /// Average pooling of one NHWC image: clamp(yZero + M_n(Σ (x − xZero)), lo, hi) with M_n = `multipliers[n − 1]`
    /// for a window of n counted taps.
    public static func averagePool(_ x: UnsafePointer<UInt8>, _ g: ConvGeometry, xZero: Int32, countIncludePad: Bool, multipliers: [FixedPointMultiplier],
                                   yZero: Int32, lo: Int32, hi: Int32, into y: UnsafeMutablePointer<UInt8>) {
        let scales = multipliers.map(\.float)
        sq_qavgpool_nhwc(x, Int32(g.height), Int32(g.width), Int32(g.channels), Int32(g.kernelH), Int32(g.kernelW), Int32(g.strideH), Int32(g.strideW),
                         Int32(g.padTop), Int32(g.padLeft), xZero, countIncludePad ? 1 : 0, scales, yZero, lo, hi, y, Int32(g.outWidth), 0, Int32(g.outHeight * g.outWidth))
    }

    /// Σ over the pixels of one NHWC image, per channel.
    public static func sumPixels(_ x: UnsafePointer<UInt8>, pixels: Int, channels: Int) -> [Int32] {
        var s = [Int32](repeating: 0, count: channels)
        sq_qsum_pixels(x, Int32(pixels), Int32(channels), &s)
        return s
    }
}

/// A requantization of bytes from one quantization to another as a 256-entry table, as ONNX Runtime's
/// QLinearConcat builds it: dequantize ((b − z_x) · s_x in float32), then quantize (round_half_even(v / s_y) + z_y,
/// clamped to [lo, hi]). Zero points and limits in biased bytes.
public struct RequantTable: Sendable, Equatable {
    public let bytes: [UInt8]

    /// Any 256-entry byte map (an activation's lookup table).
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 256, "a byte table has 256 entries")
        self.bytes = bytes
    }

    public init(xScale: Float, xZero: Int32, yScale: Float, yZero: Int32, lo: Int32, hi: Int32) {
        bytes = (0..<256).map { b in
            let v = (Float(Int32(b) - xZero) * xScale / yScale).rounded(.toNearestOrEven) + Float(yZero)
            return UInt8(min(max(v, Float(lo)), Float(hi)))
        }
    }
}

/// The int8 Add's rescaling, ONNX Runtime's QLinearAdd bit for bit: with a, b the inputs' (unbiased) values,
/// y = clamp(round_half_even(fma(a, ra, fma(b, rb, fixed))), lo, hi), ra = s_a/s_y and rb = s_b/s_y in float32
/// and fixed = z_y − fma(z_a, ra, rb · z_b). (ONNX Runtime states the fixed part as z_y − (ra·z_a + rb·z_b);
/// its x86-64 build contracts that into the fma written here, which is what its outputs match.) Zero points
/// and limits as stored (biased); `offA`/`offB`/`offY` are the biases (128 for int8, 0 for uint8).
public struct AddRescale: Sendable, Equatable {
    public let ra: Float, rb: Float, fixed: Float
    public let offA: Int32, offB: Int32, offY: Int32, lo: Int32, hi: Int32

    public init(aScale: Float, aZero: Int32, bScale: Float, bZero: Int32, yScale: Float, yZero: Int32, lo: Int32, hi: Int32,
                offA: Int32 = 0, offB: Int32 = 0, offY: Int32 = 0) {
        ra = aScale / yScale
        rb = bScale / yScale
        fixed = Float(yZero - offY) - (rb * Float(bZero - offB)).addingProduct(Float(aZero - offA), ra)
        self.offA = offA; self.offB = offB; self.offY = offY; self.lo = lo; self.hi = hi
    }

    var c: sq_qadd { sq_qadd(ra: ra, rb: rb, fixed: fixed, off_a: offA, off_b: offB, off_y: offY, lo: lo, hi: hi) }

    /// The reference for one pair of stored bytes.
    public func apply(_ a: Int32, _ b: Int32) -> Int32 {
        let f = fixed.addingProduct(Float(b - offB), rb)
        let r = f.addingProduct(Float(a - offA), ra).rounded(.toNearestOrEven) + Float(offY)
        return Int32(min(max(r, Float(lo)), Float(hi)))
    }
}

/// The int8 Mul's rescaling, as ONNX Runtime's QLinearMul computes it: y = clamp(round_half_even(float((a − z_a)·(b − z_b))
/// · m) + z_y) with m = s_a · s_b / s_y in float32. Zero points and limits as stored (biased, like `AddRescale`).
public struct MulRescale: Sendable, Equatable {
    public let m: Float
    public let aZero: Int32, bZero: Int32, yZero: Int32, lo: Int32, hi: Int32

    public init(aScale: Float, aZero: Int32, bScale: Float, bZero: Int32, yScale: Float, yZero: Int32, lo: Int32, hi: Int32) {
        m = aScale * bScale / yScale
        self.aZero = aZero; self.bZero = bZero; self.yZero = yZero; self.lo = lo; self.hi = hi
    }

    /// The reference for one pair of stored bytes.
    public func apply(_ a: Int32, _ b: Int32) -> Int32 {
        let r = (Float((a - aZero) * (b - bZero)) * m).rounded(.toNearestOrEven) + Float(yZero)
        return Int32(min(max(r, Float(lo)), Float(hi)))
    }

    /// y[i] = apply(a[i], b[i]) over `count` bytes, split between threads.
    public func run(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, y: UnsafeMutablePointer<UInt8>, count: Int, threads: Int = 1) {
        parallelRanges(count, minimum: 1 << 16, threads: threads) { r in
            sq_qmul(a + r.lowerBound, b + r.lowerBound, Int32(r.count), m, aZero, bZero, Float(yZero), Float(lo), Float(hi), y + r.lowerBound)
        }
    }
}
