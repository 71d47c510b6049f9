import CKernels
import Dispatch
import Foundation

/// Runs `body(part)` for parts 0..<parts, on several threads when `threads` > 1.
public func parallelFor(_ parts: Int, threads: Int, _ body: (Int) -> Void) {
    if parts <= 1 || threads <= 1 {
        for p in 0..<parts { body(p) }
    } else {
        // The parts write disjoint memory through raw pointers, which Swift cannot see as Sendable.
        withoutActuallyEscaping(body) { b in
            let box = UncheckedSendable(value: b)
            DispatchQueue.concurrentPerform(iterations: parts) { box.value($0) }
        }
    }
}

struct UncheckedSendable<T>: @unchecked Sendable { let value: T }

/// The instruction set the fast kernels use on this CPU ("AVX-512", "AVX2", "portable").
public var kernelInstructionSet: String {
    switch sq_cpu_level() {
    case 3: "AVX-512"
    case 2: "AVX2+FMA"
    default: "portable C"
    }
}

/// A constant left-hand matrix (weights) packed once for `Fast.gemm`, split into row blocks so two threads
/// can each take one when the right-hand side has few columns.
public final class PackedMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    let blocks: [(start: Int, count: Int, data: UnsafeMutablePointer<Float>)]

    /// Packs row-major `data` (rows × cols, row stride `ld`) into `rowBlocks` blocks of whole 12-row panels.
    public init(rows: Int, cols: Int, data: UnsafePointer<Float>, ld: Int, rowBlocks: Int = 2) {
        self.rows = rows
        self.cols = cols
        let per = max(12, ((rows + rowBlocks - 1) / rowBlocks + 11) / 12 * 12)
        var b: [(Int, Int, UnsafeMutablePointer<Float>)] = []
        var start = 0
        while start < rows {
            let count = min(per, rows - start)
            let size = sq_packed_a_size(Int32(count), Int32(cols))
            let p = UnsafeMutablePointer<Float>.allocate(capacity: size)
            sq_pack_a(Int32(count), Int32(cols), data + start * ld, Int32(ld), p)
            b.append((start, count, p))
            start += count
        }
        blocks = b
    }

    deinit { for b in blocks { b.data.deallocate() } }
}

/// Reusable scratch memory for one operator (im2col columns, transposes).
public final class Scratch: @unchecked Sendable {
    private var buffer: UnsafeMutablePointer<Float>?
    private var capacity = 0

    public init() {}
    deinit { buffer?.deallocate() }

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
    /// C[rows×n] = A·B (+ bias per row), clamped to [lo, hi]. B is K×n with row stride `ldb`.
    public static func gemm(_ a: PackedMatrix, b: UnsafePointer<Float>, ldb: Int, n: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                            bias: UnsafePointer<Float>?, lo: Float = -.infinity, hi: Float = .infinity, threads: Int) {
        func run(_ block: Int, _ n0: Int, _ n1: Int) {
            let (start, count, data) = a.blocks[block]
            sq_gemm_packed(Int32(count), Int32(n), Int32(a.cols), data, b, Int32(ldb), c + start * ldc, Int32(ldc),
                           Int32(n0), Int32(n1), bias.map { $0 + start }, lo, hi, 0)
        }
        if threads > 1 && n >= 128 {
            let parts = min(threads, n / 64)
            let chunk = ((n + parts - 1) / parts + 31) / 32 * 32
            parallelFor(parts, threads: threads) { p in
                let n0 = p * chunk, n1 = min(n, n0 + chunk)
                if n0 < n1 { for blk in a.blocks.indices { run(blk, n0, n1) } }
            }
        } else if threads > 1 && a.blocks.count > 1 {
            parallelFor(a.blocks.count, threads: threads) { run($0, 0, n) }
        } else {
            for blk in a.blocks.indices { run(blk, 0, n) }
        }
    }

    /// C[m×n] = A·B for a left-hand side that changes every call (MatMul, Gemm on activations): A is packed
    /// into `scratch`, then the columns are split between threads.
    public static func matmul(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int, scratch: Scratch, threads: Int) {
        let packed = scratch.floats(sq_packed_a_size(Int32(m), Int32(k)))
        sq_pack_a(Int32(m), Int32(k), a, Int32(lda), packed)
        let parts = threads > 1 && n >= 128 ? threads : 1
        let chunk = ((n + parts - 1) / parts + 31) / 32 * 32
        parallelFor(parts, threads: threads) { p in
            let n0 = p * chunk, n1 = min(n, n0 + chunk)
            if n0 < n1 { sq_gemm_packed(Int32(m), Int32(n), Int32(k), packed, b, Int32(ldb), c, Int32(ldc), Int32(n0), Int32(n1), nil, -.infinity, .infinity, 0) }
        }
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
    public static func conv(x: UnsafePointer<Float>, packed: [PackedMatrix], depthwise: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                            y: UnsafeMutablePointer<Float>, _ g: ConvGeometry, lo: Float, hi: Float, scratch: Scratch, threads: Int) {
        let hw = g.height * g.width, ohw = g.outHeight * g.outWidth
        for n in 0..<g.batch {
            let xn = x + n * g.channels * hw, yn = y + n * g.outChannels * ohw
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
                if !g.isPointwise {
                    let col = scratch.floats(k * ohw)
                    sq_im2col(xg, Int32(cpg), Int32(g.height), Int32(g.width), Int32(g.kernelH), Int32(g.kernelW), Int32(g.strideH), Int32(g.strideW),
                              Int32(g.dilationH), Int32(g.dilationW), Int32(g.padTop), Int32(g.padLeft), Int32(g.outHeight), Int32(g.outWidth), col)
                    b = UnsafePointer(col)
                }
                gemm(packed[grp], b: b, ldb: ohw, n: ohw, c: yn + grp * mpg * ohw, ldc: ohw, bias: bias.map { $0 + grp * mpg }, lo: lo, hi: hi, threads: threads)
            }
        }
    }
}
