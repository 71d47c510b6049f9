import CKernels
import Dispatch
import Foundation

/// Runs `body(part)` for parts 0..<parts, on several threads when `threads` > 1.
/// `body` over `count` items in contiguous ranges, one per thread (one range in all when `count` is below
/// `minimum`, where splitting costs more than it saves).
public func parallelRanges(_ count: Int, minimum: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let parts = count >= minimum ? max(1, threads) : 1, chunk = (count + parts - 1) / max(parts, 1)
    parallelFor(parts, threads: threads) { p in
        let r = min(count, p * chunk)..<min(count, p * chunk + chunk)
        if !r.isEmpty { body(r) }
    }
}

public func parallelFor(_ parts: Int, threads: Int, _ body: (Int) -> Void) {
    if parts <= 1 || threads <= 1 {
        for p in 0..<parts { body(p) }
    } else {
        // The persistent pool in CKernels (pool.c): workers spin between the short jobs of one network run.
        withoutActuallyEscaping(body) { b in
            var task = b
            withUnsafeMutablePointer(to: &task) { ctx in
                sq_parallel(Int32(threads), Int32(parts), { ctx, part in
                    ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(part))
                }, ctx)
            }
        }
    }
}


/// The instruction set the fast kernels use on this CPU ("AVX-512", "AVX2", "portable").
public var kernelInstructionSet: String {
    switch sq_cpu_level() {
    case 3: "AVX-512"
    case 2: "AVX2+FMA"
    default: "portable C"
    }
}

/// A constant left-hand matrix (weights) packed once for `Fast.gemm`.
public final class PackedMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    let data: UnsafeMutablePointer<Float>
    /// Row-panel height of the packing (row ranges handed to threads are multiples of it).
    let panel: Int
    /// The instruction level it was packed for (the products use that level's micro-kernel).
    var level: Int { Int(data[0]) }

    /// Packs row-major `data` (rows × cols, row stride `ld`).
    public init(rows: Int, cols: Int, data: UnsafePointer<Float>, ld: Int) {
        self.rows = rows
        self.cols = cols
        self.data = .allocate(capacity: sq_packed_a_size(Int32(rows), Int32(cols)))
        sq_pack_a(Int32(rows), Int32(cols), data, Int32(ld), self.data)
        panel = Int(sq_packed_mr(self.data))
    }

    deinit { data.deallocate() }

    private let rowVectors = PackedOnFirstUse()

    /// The matrix repacked for `sq_gemm_mt` (vectors along the rows), made on first use: only matrices that meet a
    /// narrow B need it.
    var alongRows: UnsafePointer<Float> {
        rowVectors.floats(sq_pack_mt_size(Int32(rows), Int32(cols))) { sq_pack_mt(Int32(rows), Int32(cols), data, $0) }
    }
}

/// A second packing of constant weights, made by the first caller that needs it (under a lock: interpreters running
/// beside each other share the weights) and freed with its owner.
final class PackedOnFirstUse: @unchecked Sendable {
    private let lock = NSLock()
    private var data: UnsafeMutablePointer<Float>?

    deinit { data?.deallocate() }

    /// The packing, `count` floats that `fill` writes the first time.
    func floats(_ count: Int, _ fill: (UnsafeMutablePointer<Float>) -> Void) -> UnsafePointer<Float> {
        lock.lock()
        defer { lock.unlock() }
        if let p = data { return UnsafePointer(p) }
        let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
        fill(p)
        data = p
        return UnsafePointer(p)
    }
}

/// Constant 3x3 weights of a group-1 convolution packed for the direct AVX-512 kernel (sq_conv3x3_avx512),
/// which beats im2col + GEMM there; nil on CPUs without AVX-512.
public final class Direct3x3Weights: @unchecked Sendable {
    let outChannels: Int
    let channels: Int
    let data: UnsafeMutablePointer<Float>

    /// Whether the weights may run by Winograd's F(4x4, 3x3) (a stride-1, dilation-1 convolution with enough channels).
    let winogradEligible: Bool

    /// Packs `data` (outChannels × channels × 3 × 3). `winograd`: a stride-1, dilation-1 convolution, which may also
    /// run by `sq_winograd_conv3x3` where `winogradApplies`.
    public init?(outChannels: Int, channels: Int, data: UnsafePointer<Float>, winograd: Bool = false) {
        guard sq_cpu_level() == 3 else { return nil }
        self.outChannels = outChannels
        self.channels = channels
        self.data = .allocate(capacity: sq_conv3x3_packed_size(Int32(outChannels), Int32(channels)))
        sq_conv3x3_pack(Int32(outChannels), Int32(channels), data, self.data)
        winogradEligible = winograd && Self.winogradWorthIt(outChannels: outChannels, channels: channels)
    }

    deinit { data.deallocate() }

    private let winogradPacking = PackedOnFirstUse()

    /// The weights transformed and packed for `sq_winograd_conv3x3` (4x the weights' size), made from the direct
    /// packing on first use: only convolutions that run by Winograd need them (a 7x7 map never does).
    var winograd: UnsafePointer<Float> {
        winogradPacking.floats(sq_winograd_packed_size(Int32(outChannels), Int32(channels))) { out in
            let block = Int(SQ_CONV3X3_BLOCK), c9 = channels * 9
            var raw = [Float](repeating: 0, count: outChannels * c9)
            for m in 0..<outChannels {
                let b = data + (m / block) * block * c9 + m % block
                for k in 0..<c9 { raw[m * c9 + k] = b[k * block] }
            }
            sq_winograd_pack(Int32(outChannels), Int32(channels), raw, out)
        }
    }

    /// Channel counts below which the transforms and the 36 small products cost more than they save (1 thread, Zen 4:
    /// 8 → 16 at 28x28 0.56x the direct kernel's speed, 16 → 16 at 14x14 0.75x, 16 → 16 at 160x160 1.3x); and at most
    /// 4096 input channels, so that a thread's scratch stays under about 19 MiB (`winogradSplit`).
    static func winogradWorthIt(outChannels: Int, channels: Int) -> Bool { outChannels >= 16 && channels >= 16 && channels <= 4096 }

    /// Whether `g` runs by Winograd's F(4x4, 3x3): stride 1, at least 16 tiles of 4x4 outputs (maps of 13x13 and up:
    /// a 7x7 map's 4 tiles leave the products' columns mostly empty) and enough work to pay for the transforms
    /// (32 → 32 at 13x13 ran 0.63x the direct kernel's speed, 48 → 192 1.55x, 16 → 64 at 55x55 1.7x, 64 → 64 at 40x40
    /// 2.0x).
    public func winogradApplies(to g: ConvGeometry) -> Bool {
        winogradEligible && isThis3x3(g) && g.strideH == 1 && g.strideW == 1
            && Int(sq_winograd_tiles(Int32(g.outHeight), Int32(g.outWidth))) >= 16
            && channels * outChannels * g.outHeight * g.outWidth >= 1 << 19
    }

    /// How `threads` share a Winograd convolution with `tiles` tiles: `chunks` runs of about 128 tiles, fewer with
    /// over 512 input channels (a thread's scratch holds 36 x (channels + 48) x (the chunk's tiles + 16 to 31) floats:
    /// 11 MiB at 512 channels and 128 tiles, 19 MiB at 4096 channels and 16), each split into `rowParts` ranges of
    /// output channels when there are fewer chunks than threads can share evenly (each such part transforms the
    /// chunk's input again).
    func winogradSplit(tiles: Int, threads: Int) -> (chunks: Int, rowParts: Int) {
        let most = max(16, min(128, (1 << 16) / channels) / 16 * 16)
        var chunks = max(1, (tiles + most - 1) / most), rowParts = 1
        if threads > 1 && chunks % threads != 0 {
            if tiles >= 64 * threads { chunks = (chunks + threads - 1) / threads * threads } else { rowParts = threads }
        }
        return (chunks, rowParts)
    }

    private let lanePacking = PackedOnFirstUse()

    /// The weights repacked for `sq_conv3x3_lanes_avx512` (32 output channels a group), made on first use: only
    /// convolutions on small maps need them.
    var lanes: UnsafePointer<Float> {
        lanePacking.floats(sq_conv3x3_lanes_size(Int32(outChannels), Int32(channels))) {
            sq_conv3x3_lanes_pack(Int32(outChannels), Int32(channels), data, $0)
        }
    }

    /// Whether `g` runs with the output channels in the lanes (`sq_conv3x3_lanes_avx512`): it keeps the map's size
    /// (stride 1, one pad each side) on a map under 16 wide, where the flat walk leaves lanes empty.
    func lanesApply(to g: ConvGeometry) -> Bool {
        g.strideH == 1 && g.strideW == 1 && g.padTop == 1 && g.padLeft == 1 && g.padBottom == 1 && g.padRight == 1
            && g.outHeight == g.height && g.outWidth == g.width && g.width < 16
    }

    /// Whether the stride-2 convolution `c` and the max pooling `p` after it run with the output channels in the lanes
    /// (`sq_stem_pool_lanes_avx512`): a stem (at most 4 input channels) and a 3x3 stride-2 pooling.
    func stemPoolApplies(_ c: ConvGeometry, _ p: ConvGeometry) -> Bool {
        c.strideH == 2 && c.channels <= 4 && p.kernelH == 3 && p.kernelW == 3 && p.strideH == 2 && p.strideW == 2
    }

    /// How `threads` share `g`: bands of output rows (each thread reads only the input rows its band needs) unless
    /// the rows split unevenly enough that runs of whole channel blocks leave the busiest thread less to do. Costs
    /// count 16-wide vectors per block: the flat walk takes a band's outputs 16 at a time, the row walk each row's
    /// ceil(OW / 16). SqueezeNet's 13x13 maps: rows 7 + 6 give bands of 6 and 5 vectors, where 32 blocks go 16 + 16.
    func split(_ g: ConvGeometry, threads: Int) -> (parts: Int, per: Int, byChannels: Bool, blocks: Int) {
        let blocks = (g.outChannels + Int(SQ_CONV3X3_BLOCK) - 1) / Int(SQ_CONV3X3_BLOCK)
        let rowParts = min(threads, g.outHeight), rows = (g.outHeight + rowParts - 1) / rowParts
        guard threads > 1, blocks >= threads else { return (rowParts, rows, false, blocks) }
        let flat = g.strideH == 1 && g.padTop == 1 && g.padLeft == 1 && g.outHeight == g.height && g.outWidth == g.width && g.width % 16 != 0
        func vectors(_ r0: Int, _ r1: Int) -> Int { flat ? ((r1 - r0) * g.outWidth + 15) / 16 : (r1 - r0) * ((g.outWidth + 15) / 16) }
        let rowCost = (0..<rowParts).map { vectors(min(g.outHeight, $0 * rows), min(g.outHeight, ($0 + 1) * rows)) }.max()! * blocks
        let per = (blocks + threads - 1) / threads
        let channelCost = per * vectors(0, g.outHeight)
        // Near a tie the bands win: they read half the input each.
        return Double(channelCost) < 0.97 * Double(rowCost) ? (threads, per, true, blocks) : (rowParts, rows, false, blocks)
    }

    /// Whether `g` is a group-1, dilation-1 3x3 convolution with these weights' channel counts.
    private func isThis3x3(_ g: ConvGeometry) -> Bool {
        g.group == 1 && g.channels == channels && g.outChannels == outChannels && g.kernelH == 3 && g.kernelW == 3
            && g.dilationH == 1 && g.dilationW == 1
    }

    /// Whether the direct kernel runs `g`: 3x3, dilation 1, the same stride 1 or 2 both ways, and either the
    /// image's size kept (stride 1, one pad each side: the kernel walks the plane as one flat run, no lane wasted)
    /// or output rows wide enough that the 16-wide vectors are at least 3/4 used (narrower maps go to the GEMM).
    func applies(to g: ConvGeometry) -> Bool {
        let used = Double(g.outWidth) / Double((g.outWidth + 15) / 16 * 16)
        let sameSize = g.strideH == 1 && g.padTop == 1 && g.padLeft == 1 && g.outHeight == g.height && g.outWidth == g.width
        return sq_cpu_level() == 3 && isThis3x3(g) && g.strideH == g.strideW && (g.strideH == 1 || g.strideH == 2) && (sameSize || used >= 0.75)
    }
}

/// How a rows × n product is split between threads: by runs of 16-wide column vectors or by row panels, whichever
/// keeps the threads more evenly loaded; columns on a near tie, and on a wider margin when B is the larger operand
/// (n > rows): split by rows, every thread reads all of B, which a product like MobileNetV2's 192 -> 32 projection
/// at 28x28 (B 602 KB, A 24 KB) then streams twice.
func gemmSplit(rows: Int, n: Int, panel: Int, threads: Int) -> (parts: Int, byColumns: Bool, chunk: Int) {
    guard threads > 1, rows * n >= 4096 else { return (1, true, n) }
    let vectors = (n + 15) / 16, panels = (rows + panel - 1) / panel
    let colChunk = (vectors + threads - 1) / threads * 16
    let colBalance = Double(n) / Double(threads) / Double(min(n, colChunk))
    let rowChunk = (panels + threads - 1) / threads * panel
    let rowBalance = Double(rows) / Double(threads) / Double(min(rows, rowChunk))
    if colBalance >= rowBalance - (n > rows ? 0.15 : 0.05) {
        return ((n + colChunk - 1) / colChunk, true, colChunk)
    }
    return ((rows + rowChunk - 1) / rowChunk, false, rowChunk)
}

/// Reusable scratch memory for one operator (im2col columns, transposes).
public final class Scratch: @unchecked Sendable {
    private var buffer: UnsafeMutablePointer<Float>?
    private var capacity = 0

    public init() {}
    deinit { buffer?.deallocate() }

    /// One for each of `threads` threads (at least one).
    public static func perThread(_ threads: Int) -> [Scratch] { (0..<max(1, threads)).map { _ in Scratch() } }

    public func floats(_ n: Int) -> UnsafeMutablePointer<Float> {
        if n > capacity {
            buffer?.deallocate()
            buffer = .allocate(capacity: max(n, 16))
            capacity = max(n, 16)
        }
        return buffer!
    }
}

public enum Fast {
    /// Frees the scratch the C kernels keep for the calling thread (it is made again when needed): call it on a
    /// thread that is about to end, or the memory stays allocated with no owner.
    public static func releaseThreadBuffers() { sq_release_thread_buffers() }

    /// C[rows×n] = A·B (+ bias per row), clamped to [lo, hi]. B is K×n with row stride `ldb`. With `residual` (rows×n,
    /// row stride `ldc`), then C += residual: on AVX-512 the tiled product adds it in its tiles' last stores
    /// (`sq_gemm_packed_residual`), elsewhere (and in the along-rows product) each thread adds it to the part of C it
    /// has just computed, while that part is in its cache (the same bits as adding it afterwards).
    public static func gemm(_ a: PackedMatrix, b: UnsafePointer<Float>, ldb: Int, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                            bias: UnsafePointer<Float>?, lo: Float = -.infinity, hi: Float = .infinity, residual: UnsafePointer<Float>? = nil,
                            threads: Int) {
        if sq_cpu_level() == 3 && a.rows >= 32 && a.cols > 0 && narrow(n) {
            let w = a.alongRows
            // Threads take equal runs of tiles (32 rows x a tile's columns), block by block: 160 rows are 5 blocks,
            // which whole blocks split 3 + 2 (MobileNetV2's 7x7 projections scaled 1.6x on 2 threads).
            let blocks = (a.rows + 31) / 32, across = Int(sq_gemm_mt_columns()), tiles = (n + across - 1) / across
            let units = blocks * tiles, parts = min(threads, units)
            parallelFor(parts, threads: threads) { p in
                var u = units * p / parts
                let end = units * (p + 1) / parts
                while u < end {
                    // Whole blocks while the run covers them, else the run's tiles t0 ..< t1 of one block.
                    let block = u / tiles, t0 = u % tiles
                    let whole = t0 == 0 ? (end - u) / tiles : 0
                    let t1 = whole > 0 ? tiles : min(tiles, t0 + end - u)
                    let m1 = min(a.rows, (block + max(whole, 1)) * 32), c0 = t0 * across, c1 = min(n, t1 * across)
                    sq_gemm_mt(Int32(a.rows), Int32(c1 - c0), Int32(a.cols), w, b + c0, Int32(ldb), c + c0, Int32(ldc), Int32(block * 32), Int32(m1), bias, lo, hi)
                    if let r = residual { addBlock(r, to: c, ld: ldc, rows: block * 32..<m1, columns: c0..<c1) }
                    u += whole > 0 ? whole * tiles : t1 - t0
                }
            }
            return
        }
        packedProduct(a.data, rows: a.rows, k: a.cols, panel: a.panel, b: b, ldb: ldb, n: n, c: c, ldc: ldc, bias: bias, lo: lo, hi: hi,
                      residual: residual, threads: threads)
    }

    /// c[i·ld + j] += r[i·ld + j] over the block.
    static func addBlock(_ r: UnsafePointer<Float>, to c: UnsafeMutablePointer<Float>, ld: Int, rows: Range<Int>, columns: Range<Int>) {
        guard !columns.isEmpty else { return }
        for i in rows {
            let o = i * ld + columns.lowerBound
            sq_binary(0, c + o, 1, r + o, 1, c + o, Int32(columns.count))
        }
    }

    /// Whether a product with `n` columns runs with its vectors along the rows (`sq_gemm_mt`): up to 64 columns, when
    /// 32-column tiles (a tail of up to 16 in one vector) would leave more than 15% of the lanes empty. Measured at
    /// 1 thread, N = 49: 960 -> 320 channels 159 -> 128 us, 320 -> 1280 213 -> 186, 160 -> 960 79 -> 77; at N = 196
    /// (94% of the lanes used) 64 -> 384 went from 45 to 64 us, so wider products keep the tiles.
    public static func narrow(_ n: Int) -> Bool {
        let lanes = n / 32 * 32 + (n % 32 == 0 ? 0 : n % 32 <= 16 ? 16 : 32)
        return n > 0 && n <= 64 && Double(n) < 0.85 * Double(lanes)
    }

    static func packedProduct(_ a: UnsafePointer<Float>, rows: Int, k: Int, panel: Int, b: UnsafePointer<Float>, ldb: Int, n: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?, lo: Float, hi: Float,
                              residual: UnsafePointer<Float>? = nil, threads: Int) {
        let (parts, byColumns, chunk) = gemmSplit(rows: rows, n: n, panel: panel, threads: threads)
        parallelFor(parts, threads: threads) { p in
            let (m0, m1, n0, n1) = byColumns ? (0, rows, p * chunk, min(n, p * chunk + chunk)) : (p * chunk, min(rows, p * chunk + chunk), 0, n)
            if m0 < m1 && n0 < n1 {
                if let r = residual {
                    sq_gemm_packed_residual(Int32(rows), Int32(n), Int32(k), a, b, Int32(ldb), c, Int32(ldc), Int32(m0), Int32(m1), Int32(n0),
                                            Int32(n1), bias, lo, hi, r)
                } else {
                    sq_gemm_packed(Int32(rows), Int32(n), Int32(k), a, b, Int32(ldb), c, Int32(ldc), Int32(m0), Int32(m1), Int32(n0), Int32(n1),
                                   bias, lo, hi, 0)
                }
            }
        }
    }

    /// The most floats of im2col matrix unfolded at once on AVX2 and portable (256 KiB, half a Zen 3 core's L2): a
    /// larger one is unfolded and multiplied in bands of output rows. ConvTranspose's columns go in bands of this size too.
    public static let im2colBandFloats = 1 << 16

    /// One group of a convolution (`channels` input channels at `x`, weights `a`) as im2col + product, band by band of
    /// output rows, each band's im2col matrix at most `im2colBandFloats` (or one row) so that the product reads it from
    /// cache: the PP-OCRv4 detector's 3x3 convolutions from 96 channels at 160x160 unfolded 88 MB each and ran at a
    /// quarter of peak. Threads take every threads-th band. The same sums as unfolding the whole matrix (each output
    /// is summed over K in the same blocks whatever columns the product is given). The bands differ by at most a row
    /// and, with threads, are as many as a multiple of them (`bandCount`): SqueezeNet's 13-row maps went in bands of 11 and 2 rows,
    /// one thread idle most of the layer.
    static func convInBands(_ x: UnsafePointer<Float>, channels: Int, _ a: PackedMatrix, _ g: ConvGeometry, c: UnsafeMutablePointer<Float>,
                            bias: UnsafePointer<Float>?, lo: Float, hi: Float, scratch: Scratch, threads: Int) {
        let k = a.cols, ow = g.outWidth, ohw = g.outHeight * ow
        let bands = bandCount(rows: g.outHeight, maxRows: max(1, im2colBandFloats / (k * ow)), threads: threads)
        let parts = max(1, min(threads, bands)), bandSize = k * ((g.outHeight + bands - 1) / bands) * ow
        let buffer = scratch.floats(parts * bandSize)
        parallelFor(parts, threads: threads) { p in
            let col = buffer + p * bandSize
            var band = p
            while band < bands {
                let oh0 = band * g.outHeight / bands, rows = (band + 1) * g.outHeight / bands - oh0, n = rows * ow
                // Output rows oh0 ..< oh0 + rows are rows 0 ..< rows of the same convolution with its top pad moved up.
                sq_im2col(x, Int32(channels), Int32(g.height), Int32(g.width), Int32(g.kernelH), Int32(g.kernelW), Int32(g.strideH), Int32(g.strideW),
                          Int32(g.dilationH), Int32(g.dilationW), Int32(g.padTop - oh0 * g.strideH), Int32(g.padLeft), Int32(rows), Int32(ow),
                          0, Int32(rows), col)
                sq_gemm_packed(Int32(a.rows), Int32(n), Int32(k), a.data, col, Int32(n), c + oh0 * ow, Int32(ohw), 0, Int32(a.rows), 0, Int32(n),
                               bias, lo, hi, 0)
                band += parts
            }
        }
    }

    /// How `convIndirect` runs `g`, if it does: stride 1 on AVX2, at least 64 products per output (with fewer, copying
    /// the outputs out of the padded grid costs more than the unfolding saved: 3 -> 64 channels at 224x224 ran 1.3x
    /// slower). On the padded grid when at most an eighth of its columns are wasted; on small maps (13x13: 2 of 15
    /// wasted) on copies shifted per kernel column instead, which waste none but touch KW times the cache lines per
    /// tile (kernel bench, 1 thread, 3x3 convolutions: 64 -> 256 channels at 13x13 649 -> 578 us, 48 -> 192 363 -> 324; but
    /// 32 -> 128 at 27x27 653 -> 685, 96 -> 96 at 40x40 2985 -> 3773).
    enum IndirectCopy { case padded, shifted }

    static func indirectCopy(_ g: ConvGeometry, _ a: PackedMatrix) -> IndirectCopy? {
        let hp = g.height + g.padTop + g.padBottom, wp = g.width + g.padLeft + g.padRight
        guard !g.isPointwise && g.strideH == 1 && g.strideW == 1 && a.level == 2 && a.cols >= 64
            && hp >= g.outHeight + (g.kernelH - 1) * g.dilationH && wp >= g.outWidth + (g.kernelW - 1) * g.dilationW else { return nil }
        return 8 * (wp - g.outWidth) <= wp ? .padded : .shifted
    }

    /// A stride-1 convolution group on AVX2 without im2col, in bands of output rows. Per band, the input rows it reads
    /// are copied, then the micro-kernel reads B's rows through pointers into the copy:
    /// - `.padded`: the rows with their pads written out (`sq_shift_planes` with one kernel column, unshifted); the
    ///   products on the padded grid go into a tile and are copied out (`sq_conv_indirect_band`);
    /// - `.shifted`: one copy per kernel column (`sq_shift_planes`); the products go straight into y
    ///   (`sq_conv_shifted_band`).
    /// A band's tile and its copy are each at most `im2colBandFloats` (or one row), so the scratch stays that small
    /// whatever the image (a padded copy of the whole input held the PP-OCRv4 detector's peak memory 11% higher).
    /// Threads take every threads-th band. The same bits as `convInBands`.
    static func convIndirect(_ x: UnsafePointer<Float>, channels: Int, _ a: PackedMatrix, _ g: ConvGeometry, copy: IndirectCopy,
                             c: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, lo: Float, hi: Float, scratch: Scratch, threads: Int) {
        let wp = g.width + g.padLeft + g.padRight, oh = g.outHeight, ow = g.outWidth, reach = (g.kernelH - 1) * g.dilationH
        let shifted = copy == .shifted
        let rowFloats = shifted ? g.kernelW * channels * ow : channels * wp   // floats of copy per input row
        let copyRows = max(1, im2colBandFloats / rowFloats - reach)
        let maxRows = shifted ? copyRows : max(1, min(im2colBandFloats / (a.rows * wp), copyRows))
        // A small map whose copy fits whole (13x13) is split between threads by output channels, each thread making the
        // same copy: its 169 outputs are 11 vectors, which bands of 7 and 6 rows split 6 + 5 (SqueezeNet's 13x13 layers
        // scaled 1.70x on 2 threads).
        let panels = (a.rows + a.panel - 1) / a.panel
        let byChannels = shifted && threads > 1 && copyRows >= oh && panels >= 2 * threads
        let bands = byChannels ? 1 : bandCount(rows: oh, maxRows: maxRows, threads: threads)
        let parts = byChannels ? threads : max(1, min(threads, bands)), most = (oh + bands - 1) / bands
        let copyFloats = rowFloats * (most + reach) + 32, tileFloats = shifted ? 0 : a.rows * ((most * wp + 15) / 16 * 16)
        let buffer = scratch.floats(parts * (copyFloats + tileFloats))
        parallelFor(parts, threads: threads) { p in
            let xcopy = buffer + p * (copyFloats + tileFloats), tile = xcopy + copyFloats
            let m0 = byChannels ? panels * p / parts * a.panel : 0, m1 = byChannels ? min(a.rows, panels * (p + 1) / parts * a.panel) : a.rows
            var band = byChannels ? 0 : p
            while band < bands {
                let oh0 = band * oh / bands, rows = (band + 1) * oh / bands - oh0, hp = rows + reach
                // Copy rows oh0 ..< oh0 + hp: the band is rows 0 ..< rows of the same convolution with its top pad moved up.
                // The padded copy is the shifted one with a single kernel column that is not shifted (rows wp long).
                sq_shift_planes(x, Int32(channels), Int32(g.height), Int32(g.width), shifted ? Int32(g.kernelW) : 1, shifted ? Int32(g.dilationW) : 0,
                                Int32(g.padTop - oh0), Int32(g.padLeft), Int32(hp), Int32(shifted ? ow : wp), xcopy)
                if shifted {
                    sq_conv_shifted_band(Int32(a.rows), a.data, xcopy, Int32(channels), Int32(hp), Int32(g.kernelH), Int32(g.kernelW),
                                         Int32(g.dilationH), Int32(rows), Int32(ow), c + oh0 * ow, Int32(oh * ow), bias, lo, hi, Int32(m0), Int32(m1))
                } else {
                    sq_conv_indirect_band(Int32(a.rows), a.data, xcopy, Int32(channels), Int32(hp), Int32(wp), Int32(g.kernelH), Int32(g.kernelW),
                                          Int32(g.dilationH), Int32(g.dilationW), 0, Int32(rows), Int32(ow), tile, c + oh0 * ow, Int32(oh * ow), bias, lo, hi)
                }
                band += byChannels ? 1 : parts
            }
        }
    }

    /// How many bands `rows` go in: enough for bands of at most `maxRows`, then up to a multiple of `threads` (at most
    /// one band per row). Band b is rows b·rows/count ..< (b+1)·rows/count, so bands differ by at most one row.
    static func bandCount(rows: Int, maxRows: Int, threads: Int) -> Int {
        let count = (rows + maxRows - 1) / maxRows
        return threads > 1 ? min(rows, (count + threads - 1) / threads * threads) : count
    }

    /// C[m×n] = A·B for a left-hand side that changes every call (MatMul, Gemm on activations): A is packed
    /// into `scratch`, then the work is split between threads.
    public static func matmul(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int, scratch: Scratch, threads: Int) {
        let packed = scratch.floats(sq_packed_a_size(Int32(m), Int32(k)))
        sq_pack_a(Int32(m), Int32(k), a, Int32(lda), packed)
        packedProduct(packed, rows: m, k: k, panel: Int(sq_packed_mr(packed)), b: b, ldb: ldb, n: n, c: c, ldc: ldc, bias: nil,
                      lo: -.infinity, hi: .infinity, threads: threads)
    }

    /// y = W·x (+ bias) for a row-major W (rows × k): one image of a fully connected layer.
    public static func gemv(rows: Int, k: Int, w: UnsafePointer<Float>, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                            bias: UnsafePointer<Float>?, threads: Int) {
        let parts = threads > 1 && rows * k >= 1 << 16 ? threads : 1
        let chunk = (rows + parts - 1) / parts
        parallelFor(parts, threads: threads) { p in
            let r0 = p * chunk, r1 = min(rows, r0 + chunk)
            if r0 < r1 { sq_gemv(Int32(k), w, Int32(k), x, y, bias, Int32(r0), Int32(r1)) }
        }
    }

    /// The fast 2-D convolution. `packed` holds one packed weight matrix per group (M/group × C/group·KH·KW);
    /// `depthwise` the raw weights when `g.isDepthwise`.
    /// `direct`, when given and it applies to `g`, replaces im2col + GEMM; with `winograd`, by Winograd's F(4x4, 3x3)
    /// where `direct.winogradApplies(to: g)`. `residual` (the output's shape; only where `canAddResidual(g)`) is added
    /// to the output, as a following Add would add it.
    public static func conv(x: UnsafePointer<Float>, packed: [PackedMatrix], direct: Direct3x3Weights? = nil, depthwise: UnsafePointer<Float>?,
                            bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, _ g: ConvGeometry, lo: Float, hi: Float,
                            residual: UnsafePointer<Float>? = nil, winograd: Bool = true, scratch: Scratch, threads: Int) {
        precondition(residual == nil || canAddResidual(g), "a residual only on a group-1 pointwise convolution")
        let hw = g.height * g.width, ohw = g.outHeight * g.outWidth
        for n in 0..<g.batch {
            let xn = x + n * g.channels * hw, yn = y + n * g.outChannels * ohw
            if winograd, let d = direct, d.winogradApplies(to: g) {
                let wp = d.winograd
                let tiles = Int(sq_winograd_tiles(Int32(g.outHeight), Int32(g.outWidth)))
                let split = d.winogradSplit(tiles: tiles, threads: threads)
                let perChunk = (tiles + split.chunks - 1) / split.chunks, mr = Int(sq_packed_mr(wp))
                let rowsPer = (g.outChannels + split.rowParts - 1) / split.rowParts
                let perPart = (rowsPer + mr - 1) / mr * mr
                parallelFor(split.chunks * split.rowParts, threads: threads) { p in
                    let t0 = p / split.rowParts * perChunk, t1 = min(tiles, t0 + perChunk)
                    let m0 = p % split.rowParts * perPart, m1 = min(g.outChannels, m0 + perPart)
                    if t0 < t1 && m0 < m1 {
                        sq_winograd_conv3x3(xn, Int32(g.channels), Int32(g.height), Int32(g.width), Int32(g.padTop), Int32(g.padLeft), wp,
                                            Int32(g.outChannels), yn, Int32(g.outHeight), Int32(g.outWidth), bias, lo, hi, Int32(t0), Int32(t1),
                                            Int32(m0), Int32(m1))
                    }
                }
                continue
            }
            if let d = direct, d.applies(to: g), d.lanesApply(to: g) {
                // The input with its zero border once, then threads take runs of 32-channel groups.
                let xp = scratch.floats(g.channels * (g.height + 2) * (g.width + 2))
                sq_conv3x3_pad(xn, Int32(g.channels), Int32(g.height), Int32(g.width), xp)
                let groups = (g.outChannels + 31) / 32, parts = min(threads, groups), per = (groups + parts - 1) / parts
                let w = d.lanes
                parallelFor(parts, threads: threads) { p in
                    let g0 = p * per, g1 = min(groups, g0 + per)
                    if g0 < g1 {
                        sq_conv3x3_lanes_avx512(xp, Int32(g.channels), Int32(g.height), Int32(g.width), w, Int32(g.outChannels), yn, bias, lo, hi,
                                                Int32(g0), Int32(g1))
                    }
                }
                continue
            }
            if let d = direct, d.applies(to: g) {
                let split = d.split(g, threads: threads)
                parallelFor(split.parts, threads: threads) { p in
                    if split.byChannels {
                        // Threads take runs of whole channel blocks, each a convolution of its own over the whole plane.
                        let b0 = p * split.per, b1 = min(split.blocks, b0 + split.per), m0 = b0 * Int(SQ_CONV3X3_BLOCK)
                        guard b0 < b1 else { return }
                        sq_conv3x3_avx512(xn, Int32(g.channels), Int32(g.height), Int32(g.width), d.data + m0 * g.channels * 9,
                                          Int32(min(g.outChannels, b1 * Int(SQ_CONV3X3_BLOCK)) - m0), Int32(g.strideH), Int32(g.padTop),
                                          Int32(g.padLeft), yn + m0 * ohw, Int32(g.outHeight), Int32(g.outWidth), bias.map { $0 + m0 }, lo, hi,
                                          0, Int32(g.outHeight), 0)
                    } else {
                        // Threads take bands of output rows: each reads only the input rows its band needs.
                        let oh0 = p * split.per, oh1 = min(g.outHeight, oh0 + split.per)
                        guard oh0 < oh1 else { return }
                        sq_conv3x3_avx512(xn, Int32(g.channels), Int32(g.height), Int32(g.width), d.data, Int32(g.outChannels), Int32(g.strideH),
                                          Int32(g.padTop), Int32(g.padLeft), yn, Int32(g.outHeight), Int32(g.outWidth), bias, lo, hi,
                                          Int32(oh0), Int32(oh1), 0)
                    }
                }
                continue
            }
            if g.isDepthwise, let w = depthwise {
                let parts = min(threads, g.channels)
                let chunk = (g.channels + parts - 1) / parts
                parallelFor(parts, threads: threads) { p in
                    let c0 = p * chunk, c1 = min(g.channels, c0 + chunk)
                    if c0 < c1 {
                        sq_depthwise(xn, Int32(g.height), Int32(g.width), w, Int32(g.kernelH), Int32(g.kernelW), Int32(g.strideH), Int32(g.strideW),
                                     Int32(g.dilationH), Int32(g.dilationW), Int32(g.padTop), Int32(g.padLeft), yn, Int32(g.outHeight),
                                     Int32(g.outWidth), bias, lo, hi, Int32(c0), Int32(c1))
                    }
                }
                continue
            }
            let cpg = g.channels / g.group, mpg = g.outChannels / g.group
            let k = cpg * g.kernelH * g.kernelW
            for grp in 0..<g.group {
                let xg = xn + grp * cpg * hw
                var b = UnsafePointer(xg)
                if let copy = indirectCopy(g, packed[grp]) {
                    convIndirect(xg, channels: cpg, packed[grp], g, copy: copy, c: yn + grp * mpg * ohw, bias: bias.map { $0 + grp * mpg },
                                 lo: lo, hi: hi, scratch: scratch, threads: threads)
                    continue
                }
                if !g.isPointwise && sq_cpu_level() < 3 && k * ohw > Fast.im2colBandFloats {
                    convInBands(xg, channels: cpg, packed[grp], g, c: yn + grp * mpg * ohw, bias: bias.map { $0 + grp * mpg }, lo: lo, hi: hi,
                                scratch: scratch, threads: threads)
                    continue
                }
                if !g.isPointwise {
                    let col = scratch.floats(k * ohw)
                    let a = packed[grp]
                    let split = gemmSplit(rows: mpg, n: ohw, panel: a.panel, threads: threads)
                    func im2col(_ oh0: Int, _ oh1: Int, channels: Range<Int>? = nil) {
                        let cs = channels ?? 0..<cpg
                        sq_im2col(xg + cs.lowerBound * hw, Int32(cs.count), Int32(g.height), Int32(g.width), Int32(g.kernelH), Int32(g.kernelW), Int32(g.strideH), Int32(g.strideW),
                                  Int32(g.dilationH), Int32(g.dilationW), Int32(g.padTop), Int32(g.padLeft), Int32(g.outHeight), Int32(g.outWidth),
                                  Int32(oh0), Int32(oh1), col + cs.lowerBound * g.kernelH * g.kernelW * ohw)
                    }
                    if split.parts > 1 && split.byColumns {
                        // Each thread unfolds the output rows it then multiplies: im2col runs in parallel too.
                        let parts = min(split.parts, g.outHeight)
                        let rowsPer = (g.outHeight + parts - 1) / parts
                        let cg = yn + grp * mpg * ohw, bg = bias.map { $0 + grp * mpg }
                        parallelFor(parts, threads: threads) { p in
                            let oh0 = p * rowsPer, oh1 = min(g.outHeight, oh0 + rowsPer)
                            guard oh0 < oh1 else { return }
                            im2col(oh0, oh1)
                            sq_gemm_packed(Int32(mpg), Int32(ohw), Int32(k), a.data, col, Int32(ohw), cg, Int32(ohw), 0, Int32(mpg),
                                           Int32(oh0 * g.outWidth), Int32(oh1 * g.outWidth), bg, lo, hi, 0)
                        }
                        continue
                    }
                    if threads > 1 && cpg >= 2 * threads && k * ohw >= 1 << 14 {
                        let per = (cpg + threads - 1) / threads
                        parallelFor(threads, threads: threads) { p in
                            let c0 = p * per, c1 = min(cpg, c0 + per)
                            if c0 < c1 { im2col(0, g.outHeight, channels: c0..<c1) }
                        }
                    } else {
                        im2col(0, g.outHeight)
                    }
                    b = UnsafePointer(col)
                }
                gemm(packed[grp], b: b, ldb: ohw, n: ohw, c: yn + grp * mpg * ohw, ldc: ohw, bias: bias.map { $0 + grp * mpg }, lo: lo, hi: hi,
                     residual: residual.map { $0 + n * g.outChannels * ohw }, threads: threads)
            }
        }
    }

    /// Makes `bytes` (a later layer's weights) the range the 7x7 pointwise products fetch into cache while they
    /// compute, a cache line per step of their sums on every thread; nil clears it. Changes no value.
    public static func fetchAhead(_ bytes: UnsafeRawBufferPointer?) {
        sq_fetch_ahead(bytes?.baseAddress, bytes?.count ?? 0)
    }

    /// Bytes of the `fetchAhead` range not fetched yet.
    public static var fetchAheadPending: Int { Int(sq_fetch_ahead_pending()) }

    /// Whether `conv` takes a `residual` for `g`: a group-1 pointwise convolution (one product, whose threads add it).
    public static func canAddResidual(_ g: ConvGeometry) -> Bool { g.isPointwise && g.group == 1 }

    /// Whether `convMaxPool` runs the direct 3x3 convolution `c` (weights `d`) followed by the max pooling `p` of its
    /// output: dilation 1, and every pooling window reaching into the convolution's output (pads under the window).
    public static func canConvMaxPool(_ c: ConvGeometry, _ p: ConvGeometry, direct d: Direct3x3Weights) -> Bool {
        d.applies(to: c) && p.dilationH == 1 && p.dilationW == 1 && p.padTop < p.kernelH && p.padLeft < p.kernelW
            && (p.outHeight - 1) * p.strideH - p.padTop < c.outHeight && p.channels == c.outChannels
    }

    /// The direct 3x3 convolution (bias, clamp [lo, hi]) and the max pooling `p` of its output in one pass: threads take
    /// bands of pooled rows (`bandRows` of them, or as many as about 512 KiB of convolution rows serve), compute the
    /// convolution rows a band's windows read (in `scratch[thread]`) and pool them, so the convolution's output is never
    /// written out whole. A convolution row two bands of one thread read is computed once (kept for the next band: 5% of
    /// SqueezeNet's stem was such rows); one that two threads read, by both. The same values as the two steps one after
    /// the other (max is exact; each convolution value is computed as the whole-output kernel computes it). Check
    /// `canConvMaxPool` first.
    public static func convMaxPool(x: UnsafePointer<Float>, direct d: Direct3x3Weights, bias: UnsafePointer<Float>?, lo: Float, hi: Float,
                                   y: UnsafeMutablePointer<Float>, _ c: ConvGeometry, _ p: ConvGeometry, scratch: [Scratch], threads: Int,
                                   bandRows: Int? = nil) {
        if d.stemPoolApplies(c, p) {
            // The output channels in the lanes: threads take runs of pooled rows (a convolution row two of them need is
            // computed by both).
            let w = d.lanes, parts = min(threads, scratch.count, p.outHeight), per = (p.outHeight + parts - 1) / parts
            let need = sq_stem_lanes_scratch(Int32(c.outChannels), Int32(c.outWidth), Int32(p.outWidth))
            for n in 0..<c.batch {
                let xn = x + n * c.channels * c.height * c.width, yn = y + n * p.channels * p.outHeight * p.outWidth
                parallelFor(parts, threads: threads) { part in
                    let q0 = part * per, q1 = min(p.outHeight, q0 + per)
                    guard q0 < q1 else { return }
                    sq_stem_pool_lanes_avx512(xn, Int32(c.channels), Int32(c.height), Int32(c.width), w, Int32(c.outChannels), Int32(c.padTop),
                                              Int32(c.padLeft), Int32(c.outHeight), Int32(c.outWidth), bias, lo, hi, Int32(p.padTop), Int32(p.padLeft),
                                              Int32(p.outHeight), Int32(p.outWidth), yn, Int32(q0), Int32(q1), scratch[part].floats(Int(need)))
                }
            }
            return
        }
        let rowFloats = c.outChannels * c.outWidth
        let maxRows = max(p.kernelH, (512 << 10) / (rowFloats * MemoryLayout<Float>.size))
        let bandRows = bandRows ?? max(1, (maxRows - p.kernelH) / p.strideH + 1)
        let parts = min(threads, scratch.count, p.outHeight)
        let per = (p.outHeight + parts - 1) / parts
        for n in 0..<c.batch {
            let xn = x + n * c.channels * c.height * c.width, yn = y + n * p.channels * p.outHeight * p.outWidth
            parallelFor(parts, threads: threads) { part in
                var q0 = part * per
                let end = min(p.outHeight, q0 + per)
                // Each channel's plane in the band holds `capacity` rows: convolution rows [start, stop).
                let capacity = min(c.outHeight, (bandRows - 1) * p.strideH + p.kernelH)
                let plane = capacity * c.outWidth
                let band = scratch[part].floats(c.outChannels * plane)
                var start = 0, stop = 0
                while q0 < end {
                    let q1 = min(end, q0 + bandRows)
                    // Convolution rows the windows of pooled rows q0 ..< q1 read.
                    let r0 = max(0, q0 * p.strideH - p.padTop), r1 = min(c.outHeight, (q1 - 1) * p.strideH - p.padTop + p.kernelH)
                    if start <= r0 && r0 < stop {
                        // Rows the last band computed (the windows overlap): moved to the start of each plane, not recomputed.
                        if r0 > start {
                            for ch in 0..<c.outChannels {
                                memmove(band + ch * plane, band + ch * plane + (r0 - start) * c.outWidth, (stop - r0) * c.outWidth * MemoryLayout<Float>.size)
                            }
                        }
                    } else {
                        stop = r0
                    }
                    start = r0
                    if r1 > stop {
                        sq_conv3x3_avx512(xn, Int32(c.channels), Int32(c.height), Int32(c.width), d.data, Int32(c.outChannels), Int32(c.strideH),
                                          Int32(c.padTop), Int32(c.padLeft), band, Int32(capacity), Int32(c.outWidth), bias, lo, hi, Int32(stop), Int32(r1),
                                          Int32(start))
                        stop = r1
                    }
                    for ch in 0..<c.outChannels {
                        // Band row 0 is convolution row r0: the pooling's top pad, seen from the band.
                        sq_pool2d(band + ch * plane, Int32(r1 - r0), Int32(c.outWidth), Int32(p.kernelH), Int32(p.kernelW), Int32(p.strideH),
                                  Int32(p.strideW), Int32(p.padTop + r0 - q0 * p.strideH), Int32(p.padLeft), 0, Int32(p.padRight),
                                  yn + (ch * p.outHeight + q0) * p.outWidth, Int32(q1 - q0), Int32(p.outWidth), 1, 0, 0, 1)
                    }
                    q0 = q1
                }
            }
        }
    }

    /// Whether `expandDepthwise` runs a 1x1 convolution `e` followed by the depthwise one `d` on this CPU: the
    /// direct depthwise kernels' shapes (AVX-512 or AVX2; 3x3 or 5x5, stride 1 or 2 both ways, no dilation).
    public static func canExpandDepthwise(_ e: ConvGeometry, _ d: ConvGeometry) -> Bool {
        sq_cpu_level() >= 2 && e.isPointwise && e.group == 1 && d.isDepthwise && d.channels == e.outChannels
            && d.height == e.outHeight && d.width == e.outWidth && d.kernelH == d.kernelW && (d.kernelH == 3 || d.kernelH == 5)
            && d.strideH == d.strideW && (d.strideH == 1 || d.strideH == 2) && d.dilationH == 1 && d.dilationW == 1
    }

    /// y = depthwise(clamp(E·x + eb)) (each convolution's activation, sq_unary's code, after its clamp) without the
    /// expanded tensor: each thread takes a range of output rows and
    /// walks it in bands, expanding only the input rows a band needs into a buffer that stays in cache (rows the
    /// previous band already expanded are moved to the buffer's start, not recomputed), then running the depthwise
    /// kernel on the band. Every value is computed as the two separate convolutions compute it (the GEMM sums
    /// each output over the inputs in the same order whatever columns it is given), so the result is identical.
    /// `e`: the 1x1 convolution's geometry (its packed weights `expand`), `d`: the depthwise one (raw weights `dw`).
    /// `scratch`: one buffer per thread. `bandRows` (a multiple of 4) overrides the band height, for tests. Check
    /// `canExpandDepthwise` first.
    public static func expandDepthwise(x: UnsafePointer<Float>, expand: PackedMatrix, expandBias: UnsafePointer<Float>?, expandLo: Float, expandHi: Float,
                                       expandActivation: Int32? = nil, dw: UnsafePointer<Float>, dwBias: UnsafePointer<Float>?, lo: Float, hi: Float,
                                       activation: Int32? = nil, y: UnsafeMutablePointer<Float>,
                                       _ e: ConvGeometry, _ d: ConvGeometry, scratch: [Scratch], threads: Int, bandRows: Int? = nil) {
        precondition(canExpandDepthwise(e, d) && scratch.count >= max(1, threads))
        let mid = d.channels, w = d.width, k = d.kernelH, s = d.strideH
        // Band height: the most output rows (a multiple of 4, the depthwise kernel's step) whose input rows fit
        // in about 512 KiB (half the 1 MiB L2 of the development machine's cores).
        let rowsFit = max(k + 3 * s, (1 << 17) / max(1, mid * w))
        let band = bandRows ?? max(4, min(d.outHeight, ((rowsFit - k) / s + 1) / 4 * 4))
        let capacity = (band - 1) * s + k
        let plane = capacity * w
        let parts = min(max(1, threads), (d.outHeight + band - 1) / band)
        let per = (d.outHeight + parts - 1) / parts
        for n in 0..<e.batch {
            let xn = x + n * e.channels * e.height * e.width, yn = y + n * mid * d.outHeight * d.outWidth
            parallelFor(parts, threads: threads) { p in
                let buf = scratch[p].floats(mid * plane)
                var start = 0, end = 0   // expanded rows [start, end) are in buf
                var o0 = p * per
                let oEnd = min(d.outHeight, o0 + per)
                while o0 < oEnd {
                    let o1 = min(oEnd, o0 + band)
                    let need0 = max(0, o0 * s - d.padTop), need1 = min(d.height, (o1 - 1) * s - d.padTop + k)
                    if start <= need0 && need0 < end {
                        // Keep the rows this band shares with the last one: move them to the start of each channel.
                        let keep = end - need0
                        if need0 > start {
                            for c in 0..<mid { memmove(buf + c * plane, buf + c * plane + (need0 - start) * w, keep * w * MemoryLayout<Float>.size) }
                        }
                        start = need0
                    } else {
                        start = need0
                        end = need0
                    }
                    if need1 > end {
                        sq_gemm_packed(Int32(mid), Int32((need1 - end) * w), Int32(e.channels), expand.data, xn + end * w, Int32(e.height * e.width),
                                       buf + (end - start) * w, Int32(plane), 0, Int32(mid), 0, Int32((need1 - end) * w), expandBias, expandLo, expandHi, 0)
                        if let code = expandActivation { activate(code, buf + (end - start) * w, count: (need1 - end) * w, planes: mid, stride: plane) }
                        end = need1
                    }
                    sq_dw(buf, Int32(end - start), Int32(w), plane, dw, Int32(k), Int32(s), Int32(d.padTop + start), Int32(d.padLeft),
                                 yn, Int32(d.outHeight), Int32(d.outWidth), dwBias, lo, hi, 0, Int32(mid), Int32(o0), Int32(o1))
                    if let code = activation {
                        activate(code, yn + o0 * d.outWidth, count: (o1 - o0) * d.outWidth, planes: mid, stride: d.outHeight * d.outWidth)
                    }
                    o0 = o1
                }
            }
        }
    }

    /// sq_unary's activation `code` in place on `count` floats of each of `planes` runs `stride` apart (a band of rows
    /// of every channel, just computed and still in cache).
    static func activate(_ code: Int32, _ p: UnsafeMutablePointer<Float>, count: Int, planes: Int, stride: Int) {
        for c in 0..<planes { sq_unary(code, p + c * stride, p + c * stride, Int32(count), 0, 0) }
    }

    /// Max or average pooling (dilation 1) of `planes` (each g.height × g.width) into y.
    public static func pool(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, _ g: ConvGeometry, isMax: Bool, countIncludePad: Bool,
                            planes: Range<Int>) {
        guard !planes.isEmpty else { return }
        sq_pool2d(x, Int32(g.height), Int32(g.width), Int32(g.kernelH), Int32(g.kernelW), Int32(g.strideH), Int32(g.strideW),
                  Int32(g.padTop), Int32(g.padLeft), Int32(g.padBottom), Int32(g.padRight), y, Int32(g.outHeight), Int32(g.outWidth),
                  isMax ? 1 : 0, countIncludePad ? 1 : 0, Int32(planes.lowerBound), Int32(planes.upperBound))
    }

    /// y[p] = max or mean of plane p (`size` values) for p in `planes`.
    public static func globalPool(x: UnsafePointer<Float>, size: Int, isMax: Bool, y: UnsafeMutablePointer<Float>, planes: Range<Int>) {
        guard !planes.isEmpty else { return }
        sq_global_pool(x, Int32(size), isMax ? 1 : 0, y, Int32(planes.lowerBound), Int32(planes.upperBound))
    }

    /// y[i] = a[i*sa] op b[i*sb] for i < n (op: 0 add, 1 sub, 2 mul, 3 div, 4 PRelu).
    public static func binary(_ op: Int, a: UnsafePointer<Float>, sa: Int, b: UnsafePointer<Float>, sb: Int, y: UnsafeMutablePointer<Float>, n: Int) {
        sq_binary(Int32(op), a, Int32(sa), b, Int32(sb), y, Int32(n))
    }
}
