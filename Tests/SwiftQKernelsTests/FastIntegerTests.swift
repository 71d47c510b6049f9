import CKernels
import SwiftQKernels
import XCTest

/// The integer runtime's kernels against the integer reference, bit for bit, at every instruction level this
/// CPU has (AVX-512 VNNI, AVX2, portable C), one and two threads.
final class FastIntegerTests: XCTestCase {
    override func tearDown() { _ = sq_set_cpu_level(-1) }

    /// Instruction levels to run: the CPU's own and every lower one.
    var levels: [Int32] {
        let top = sq_set_cpu_level(-1)
        return [3, 2, 0].filter { $0 <= top }
    }

    /// NHWC bytes of one NCHW image given as Int32 values.
    func nhwc(_ x: [Int32], c: Int, hw: Int) -> [UInt8] {
        var y = [UInt8](repeating: 0, count: x.count)
        for n in 0..<(x.count / (c * hw)) { for ch in 0..<c { for p in 0..<hw { y[(n * hw + p) * c + ch] = UInt8(x[(n * c + ch) * hw + p]) } } }
        return y
    }

    func geometry(batch: Int = 1, c: Int, m: Int, h: Int, w: Int, k: Int, s: Int, p: Int, group: Int) -> ConvGeometry {
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        return ConvGeometry(batch: batch, channels: c, height: h, width: w, outChannels: m, group: group, kernelH: k, kernelW: k, strideH: s, strideW: s,
                            dilationH: 1, dilationW: 1, padTop: p, padLeft: p, padBottom: p, padRight: p, outHeight: oh, outWidth: ow)
    }

    func testConvEqualsTheReferenceExactly() {
        var rng = SystemRandomNumberGenerator()
        // (channels, outChannels, H, W, kernel, stride, pad, group): 1x1 read in place, K not a multiple of 4,
        // channel counts off the 16-wide blocks, stride 2, groups, a 1-pixel output (the Gemm case); K rounded up to 4 leaves
        // 4, 8 and 12 bytes past the last 16.
        let cases = [(3, 8, 9, 11, 3, 1, 1, 1), (16, 33, 7, 7, 1, 1, 0, 1), (5, 16, 12, 10, 3, 2, 1, 1), (4, 17, 6, 9, 5, 2, 2, 1),
                     (24, 70, 13, 5, 1, 1, 0, 1), (8, 12, 6, 6, 3, 1, 1, 2), (64, 200, 1, 1, 1, 1, 0, 1), (6, 96, 4, 30, 1, 2, 0, 1),
                     (8, 20, 20, 20, 3, 1, 1, 1),   // 400 pixels: more than one chunk of the AVX2 GEMM
                     (64, 24, 20, 21, 3, 1, 1, 1), (200, 20, 9, 30, 3, 1, 1, 2)]   // im2col made in chunks of 216 and 120 rows, with a part left
        for (c, m, h, w, k, s, p, group) in cases {
            let g = geometry(batch: 2, c: c, m: m, h: h, w: w, k: k, s: s, p: p, group: group)
            let x = (0..<2 * c * h * w).map { _ in Int32.random(in: 0...255, using: &rng) }
            let wt = (0..<m * c / group * k * k).map { _ in Int32.random(in: -127...127, using: &rng) }
            let bias = (0..<m).map { _ in Int32.random(in: -5000...5000, using: &rng) }
            let zero = Int32.random(in: 0...255, using: &rng)
            // Multipliers from tiny to above 1, and every 8th channel huge (products past ±2^31, where the float to
            // int32 conversion overflows and the clamp must still hold).
            let mults = (0..<m).map { o in FixedPointMultiplier(Float(pow(10, o % 8 == 5 ? Double.random(in: 3...6, using: &rng) : Double.random(in: -7...0.5, using: &rng)))) }
            let acc = IntegerReference.conv(x: x, xZero: zero, w: wt, wZero: [0], bias: nil, g)
            let packed = PackedConvWeights(values: wt, outChannels: m, groupInputs: c / group, kernelH: k, kernelW: k, group: group)
            let shifted = (0..<m).map { bias[$0] &- zero &* packed.rowSums[$0] }
            let rq = Requantization(bias: shifted, multipliers: mults, zero: 7, lo: 3, hi: 250)
            let ref = Requantization(bias: bias, multipliers: mults, zero: 7, lo: 3, hi: 250)
            let fq = Requantization(bias: shifted, floatScales: mults.map(\.float))
            let fref = Requantization(bias: bias, floatScales: mults.map(\.float))
            let ohw = g.outHeight * g.outWidth
            let xb = nhwc(x, c: c, hw: h * w)
            var scratch = [UInt8](repeating: 0, count: FastInteger.scratchBytes(g, threads: 2))
            for level in levels {
                _ = sq_set_cpu_level(level)
                for threads in [1, 2] {
                    var y = [UInt8](repeating: 0, count: 2 * m * ohw + 64)
                    var yf = [Float](repeating: 0, count: 2 * m * ohw)
                    xb.withUnsafeBufferPointer { xp in
                        scratch.withUnsafeMutableBufferPointer { sp in
                            y.withUnsafeMutableBytes { FastInteger.conv(x: xp.baseAddress!, xZero: zero, w: packed, rq: rq, g, y: $0.baseAddress!, scratch: sp.baseAddress, threads: threads) }
                            yf.withUnsafeMutableBytes { FastInteger.conv(x: xp.baseAddress!, xZero: zero, w: packed, rq: fq, g, y: $0.baseAddress!, scratch: sp.baseAddress, threads: threads) }
                        }
                    }
                    for n in 0..<2 { for o in 0..<m { for pix in 0..<ohw {
                        let a = acc[(n * m + o) * ohw + pix], at = (n * ohw + pix) * m + o
                        if Int32(y[at]) != ref.reference(a, channel: o) || yf[at] != fref.referenceFloat(a, channel: o) {
                            return XCTFail("\(g) level \(level) threads \(threads): [\(n)][\(o)][\(pix)] acc \(a) bias \(bias[o]) multiplier \(mults[o]) zero \(zero): "
                                           + "byte \(y[at]) reference \(ref.reference(a, channel: o)), float \(yf[at]) reference \(fref.referenceFloat(a, channel: o))")
                        }
                    } } }
                }
            }
        }
    }

    func testDepthwiseEqualsTheReferenceExactly() {
        var rng = SystemRandomNumberGenerator()
        for (c, h, w, k, s, p) in [(8, 9, 11, 3, 1, 1), (19, 14, 13, 3, 2, 1), (3, 17, 20, 5, 2, 2), (40, 7, 7, 5, 1, 2), (2, 6, 9, 3, 2, 0), (16, 1, 1, 3, 1, 1), (33, 8, 8, 7, 1, 3), (48, 12, 12, 3, 3, 1), (20, 15, 9, 5, 2, 2), (4, 20, 19, 17, 1, 8), (3, 17, 16, 16, 1, 7), (16, 9, 17, 4, 4, 0), (24, 6, 10, 4, 2, 1),
                                     // 64 channels and more: groups of four whole blocks (one store a pixel), then the blocks left
                                     (64, 9, 11, 3, 1, 1), (150, 8, 9, 5, 2, 2), (128, 7, 7, 5, 1, 2), (80, 6, 13, 3, 2, 1), (64, 5, 5, 7, 1, 3)] {
            let g = geometry(batch: 2, c: c, m: c, h: h, w: w, k: k, s: s, p: p, group: c)
            let x = (0..<2 * c * h * w).map { _ in Int32.random(in: 0...255, using: &rng) }
            let wt = (0..<c * k * k).map { _ in Int32.random(in: -127...127, using: &rng) }
            let bias = (0..<c).map { _ in Int32.random(in: -5000...5000, using: &rng) }
            let zero = Int32.random(in: 0...255, using: &rng)
            let mults = (0..<c).map { _ in FixedPointMultiplier(Float(pow(10, Double.random(in: -5...0.5, using: &rng)))) }
            let acc = IntegerReference.conv(x: x, xZero: zero, w: wt, wZero: [0], bias: nil, g)
            let packed = PackedDepthwiseWeights(values: wt, channels: c, kernelH: k, kernelW: k)
            // Output limits inside [0, 255] (a fused ReLU's lo = zero) and the full range.
            let (yz, lo, hi): (Int32, Int32, Int32) = c % 2 == 0 ? (100, 100, 230) : (100, 0, 255)
            let rq = Requantization(bias: (0..<c).map { bias[$0] &- zero &* packed.tapSums[$0] }, multipliers: mults, zero: yz, lo: lo, hi: hi)
            let ref = Requantization(bias: bias, multipliers: mults, zero: yz, lo: lo, hi: hi)
            let ohw = g.outHeight * g.outWidth
            let xb = nhwc(x, c: c, hw: h * w)
            for level in levels {
                _ = sq_set_cpu_level(level)
                for threads in [1, 2] {
                    var scratch = [UInt8](repeating: 0, count: FastInteger.depthwiseScratchBytes(g, threads: threads))
                    var y = [UInt8](repeating: 0, count: 2 * c * ohw)
                    xb.withUnsafeBufferPointer { xp in
                        scratch.withUnsafeMutableBufferPointer { sp in
                            FastInteger.depthwise(x: xp.baseAddress!, xZero: zero, w: packed, rq: rq, g, y: &y, scratch: sp.isEmpty ? nil : sp.baseAddress, threads: threads)
                        }
                    }
                    for n in 0..<2 { for o in 0..<c { for pix in 0..<ohw {
                        let a = acc[(n * c + o) * ohw + pix], got = Int32(y[(n * ohw + pix) * c + o])
                        if got != ref.reference(a, channel: o) {
                            return XCTFail("\(g) level \(level) threads \(threads): [\(n)][\(o)][\(pix)] acc \(a) multiplier \(mults[o]): \(got), reference \(ref.reference(a, channel: o))")
                        }
                    } } }
                }
            }
        }
    }

    func testAddEqualsTheReferenceExactly() {
        var rng = SystemRandomNumberGenerator()
        // uint8 tensors, then int8 ones (stored biased by 128) with a clamp as a fused ReLU leaves it.
        for (count, off, lo) in [(1, 0, 0), (7, 0, 0), (8, 0, 0), (100, 0, 0), (20001, 0, 0), (17, 128, 0), (5000, 128, 128)] as [(Int, Int32, Int32)] {
            let a = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let b = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let r = AddRescale(aScale: Float.random(in: 0.001...0.1, using: &rng), aZero: Int32.random(in: 0...255, using: &rng),
                               bScale: Float.random(in: 0.001...0.1, using: &rng), bZero: Int32.random(in: 0...255, using: &rng),
                               yScale: Float.random(in: 0.01...0.1, using: &rng), yZero: Int32.random(in: 0...255, using: &rng), lo: lo, hi: 255,
                               offA: off, offB: off, offY: off)
            for level in levels {
                _ = sq_set_cpu_level(level)
                for threads in [1, 2] {
                    var y = [UInt8](repeating: 0, count: count)
                    FastInteger.add(a, b, r, y: &y, count: count, threads: threads)
                    for i in 0..<count where Int32(y[i]) != r.apply(Int32(a[i]), Int32(b[i])) {
                        return XCTFail("level \(level) count \(count) [\(i)]: a \(a[i]) b \(b[i]) \(r): \(y[i]), reference \(r.apply(Int32(a[i]), Int32(b[i])))")
                    }
                }
            }
        }
        // Half to even: 0.5 + 0.5·1 = 1; (1·0.5) alone rounds to 0, (3·0.5) to 2.
        let half = AddRescale(aScale: 1, aZero: 0, bScale: 1, bZero: 0, yScale: 2, yZero: 0, lo: 0, hi: 255)
        XCTAssertEqual([half.apply(1, 0), half.apply(3, 0), half.apply(1, 1), half.apply(5, 0)], [0, 2, 1, 2])
        // The kernels on ties: every value of a rounds from an exact half.
        let a = (0..<256).map { UInt8($0) }, b = [UInt8](repeating: 0, count: 256)
        for level in levels {
            _ = sq_set_cpu_level(level)
            var y = [UInt8](repeating: 0, count: 256)
            FastInteger.add(a, b, half, y: &y, count: 256, threads: 1)
            XCTAssertEqual(y.map { Int32($0) }, a.map { half.apply(Int32($0), 0) }, "ties at level \(level)")
        }
    }

    func testQuantizeEqualsQuantizeLinear() {
        var rng = SystemRandomNumberGenerator()
        let scale: Float = 0.0173
        for (c, hw, nhwc) in [(3, 224 * 224, true), (3, 200, true), (3, 63, true), (5, 130, true), (1, 300, true), (3, 777, false)] {
            // Values across and far past the range, and exact halves (ties round to even).
            let x: [Float] = (0..<c * hw).map { i in
                switch i % 5 {
                case 0: return (Float(Int.random(in: -200...200, using: &rng)) + 0.5) * scale
                case 1: return Float.random(in: -1e9...1e9, using: &rng)
                default: return Float.random(in: -3...3, using: &rng)
                }
            }
            for (zero, lo, hi): (Int32, Int32, Int32) in [(128, 0, 255), (3, 3, 200)] {
                var want = [UInt8](repeating: 0, count: c * hw)
                for ch in 0..<c { for p in 0..<hw {
                    let v = min(max((x[ch * hw + p] / scale).rounded(.toNearestOrEven) + Float(zero), Float(lo)), Float(hi))
                    want[nhwc ? p * c + ch : ch * hw + p] = UInt8(v)
                } }
                for level in levels {
                    _ = sq_set_cpu_level(level)
                    for threads in [1, 2] {
                        var y = [UInt8](repeating: 0, count: c * hw)
                        FastInteger.quantize(x, channels: c, pixels: hw, scale: scale, zero: zero, lo: lo, hi: hi, nhwc: nhwc, into: &y, threads: threads)
                        if let i = (0..<y.count).first(where: { y[$0] != want[$0] }) {
                            return XCTFail("C \(c) pixels \(hw) nhwc \(nhwc) level \(level) threads \(threads): byte \(i) is \(y[i]), QuantizeLinear gives \(want[i])")
                        }
                    }
                }
            }
        }
    }

    func testPoolingAndRequantizedCopy() {
        var rng = SystemRandomNumberGenerator()
        let (c, h, w) = (19, 9, 10)
        let g = geometry(c: c, m: c, h: h, w: w, k: 3, s: 2, p: 1, group: 1)
        let x = (0..<c * h * w).map { _ in Int32.random(in: 0...255, using: &rng) }
        let xb = nhwc(x, c: c, hw: h * w)
        let ohw = g.outHeight * g.outWidth
        var want = [Float](repeating: 0, count: c * ohw)
        let xf = x.map { Float($0) }
        for ch in 0..<c { Reference.pool(x: xf.withUnsafeBufferPointer { $0.baseAddress! } + ch * h * w, y: &want[ch * ohw], g, isMax: true, countIncludePad: false) }
        var y = [UInt8](repeating: 0, count: c * ohw)
        for level in levels {
            _ = sq_set_cpu_level(level)
            FastInteger.maxPool(xb, g, into: &y, threads: 2)
            for ch in 0..<c { for p in 0..<ohw { XCTAssertEqual(Float(y[p * c + ch]), want[ch * ohw + p], "max pool level \(level) [\(ch)][\(p)]") } }
        }
        _ = sq_set_cpu_level(-1)
        // 70 channels: one whole 64-byte block and a tail.
        let c2 = 70, g2 = geometry(c: c2, m: c2, h: 7, w: 6, k: 3, s: 2, p: 1, group: 1)
        let x2 = (0..<c2 * 42).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var y2 = [UInt8](repeating: 0, count: c2 * g2.outHeight * g2.outWidth)
        FastInteger.maxPool(x2, g2, into: &y2, threads: 1)
        for oh in 0..<g2.outHeight { for ow in 0..<g2.outWidth { for ch in 0..<c2 {
            var m: UInt8 = 0
            for ih in max(0, oh * 2 - 1)...min(6, oh * 2 + 1) { for iw in max(0, ow * 2 - 1)...min(5, ow * 2 + 1) { m = max(m, x2[(ih * 6 + iw) * c2 + ch]) } }
            XCTAssertEqual(y2[(oh * g2.outWidth + ow) * c2 + ch], m, "max pool 70 channels [\(oh)][\(ow)][\(ch)]")
        } } }
        // Average: Σ (x − zero) over counted taps, requantized by multipliers[n − 1].
        let zero: Int32 = 90
        let ms = (1...9).map { FixedPointMultiplier.ortPool(x: 0.8, y: 1, count: $0) }
        FastInteger.averagePool(xb, g, xZero: zero, countIncludePad: false, multipliers: ms, yZero: 20, lo: 0, hi: 255, into: &y)
        for ch in 0..<c {
            for oh in 0..<g.outHeight {
                for ow in 0..<g.outWidth {
                    var s: Int32 = 0, n = 0
                    for kh in 0..<3 { for kw in 0..<3 {
                        let ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw
                        if ih >= 0 && ih < h && iw >= 0 && iw < w { s += x[(ch * h + ih) * w + iw] - zero; n += 1 }
                    } }
                    XCTAssertEqual(Int32(y[(oh * g.outWidth + ow) * c + ch]), min(max(ms[n - 1].apply(s) + 20, 0), 255), "average pool [\(ch)][\(oh)][\(ow)]")
                }
            }
        }
        // Requantized copy into a wider row (a Concat input): dequantize, then quantize to the new scale.
        let table = RequantTable(xScale: 0.37, xZero: zero, yScale: 0.9, yZero: 11, lo: 0, hi: 255)
        var out = [UInt8](repeating: 0, count: 5 * 30)
        FastInteger.copy(xb, ldx: c, rows: 5, count: c, table: table, into: &out[4], ldy: 30)
        for r in 0..<5 { for ch in 0..<c {
            let want = (Float(Int32(xb[r * c + ch]) - zero) * 0.37 / 0.9).rounded(.toNearestOrEven) + 11
            XCTAssertEqual(Float(out[r * 30 + 4 + ch]), min(max(want, 0), 255))
        } }
    }

    /// A 256-entry table over a run of bytes (`lookup`, split between threads) and over rows of a strided copy
    /// (`copy`: a Concat input), at every level: whole 64-byte vectors, tails of 1 to 63, every byte value.
    func testTableLookupEqualsTheTable() {
        var rng = SystemRandomNumberGenerator()
        for level in levels {
            _ = sq_set_cpu_level(level)
            let table = RequantTable(bytes: (0..<256).map { _ in UInt8.random(in: 0...255, using: &rng) })
            for n in [1, 37, 63, 64, 65, 256, 1000, 70_001] {
                let x = (0..<n).map { i in i < 256 ? UInt8(i) : UInt8.random(in: 0...255, using: &rng) }
                for threads in [1, 2] {
                    var y = [UInt8](repeating: 0, count: n + 64)
                    FastInteger.lookup(x, count: n, table: table, into: &y, threads: threads)
                    XCTAssertEqual(Array(y[..<n]), x.map { table.bytes[Int($0)] }, "lookup level \(level) n \(n) threads \(threads)")
                    XCTAssertEqual(Array(y[n...]), [UInt8](repeating: 0, count: 64), "lookup level \(level) n \(n) wrote past the end")
                }
            }
            for (rows, count) in [(3, 5), (4, 64), (2, 100), (7, 129)] {
                let (ldx, ldy) = (count + 3, count + 70)
                let x = (0..<rows * ldx).map { _ in UInt8.random(in: 0...255, using: &rng) }
                var y = [UInt8](repeating: 7, count: rows * ldy)
                y.withUnsafeMutableBufferPointer { FastInteger.copy(x, ldx: ldx, rows: rows, count: count, table: table, into: $0.baseAddress! + 2, ldy: ldy) }
                for r in 0..<rows { for i in 0..<ldy - 2 {
                    let want = i < count ? table.bytes[Int(x[r * ldx + i])] : 7
                    if y[r * ldy + 2 + i] != want { return XCTFail("copy level \(level) rows \(rows) count \(count) [\(r)][\(i)]: \(y[r * ldy + 2 + i]) vs \(want)") }
                } }
            }
        }
    }

    /// QLinearMul (the elementwise kernel and so every table made from it) against MulRescale.apply, per-channel
    /// tables and nearest Resize against plain loops, at every level and thread count.
    func testMulTablesAndResizeEqualTheReference() {
        var rng = SystemRandomNumberGenerator()
        for level in levels {
            _ = sq_set_cpu_level(level)
            for threads in [1, 2] {
                for n in [1, 17, 256, 70_001] {
                    let a = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }, b = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    let r = MulRescale(aScale: Float.random(in: 0.001...0.2, using: &rng), aZero: Int32.random(in: 0...255, using: &rng),
                                       bScale: Float.random(in: 0.001...0.2, using: &rng), bZero: Int32.random(in: 0...255, using: &rng),
                                       yScale: Float.random(in: 0.001...0.2, using: &rng), yZero: Int32.random(in: 0...255, using: &rng), lo: 3, hi: 250)
                    var y = [UInt8](repeating: 0, count: n)
                    r.run(a, b, y: &y, count: n, threads: threads)
                    for i in 0..<n where Int32(y[i]) != r.apply(Int32(a[i]), Int32(b[i])) {
                        return XCTFail("mul level \(level) threads \(threads) n \(n) [\(i)]: \(y[i]) vs \(r.apply(Int32(a[i]), Int32(b[i])))")
                    }
                }
                let (p, c) = (300, 19)
                let x = (0..<p * c).map { _ in UInt8.random(in: 0...255, using: &rng) }, tables = (0..<c * 256).map { _ in UInt8.random(in: 0...255, using: &rng) }
                var y = [UInt8](repeating: 0, count: p * c)
                FastInteger.tableChannels(x, pixels: p, channels: c, tables: tables, into: &y, threads: threads)
                XCTAssertEqual(y, (0..<p * c).map { tables[($0 % c) * 256 + Int(x[$0])] }, "tables level \(level)")
                for ch in [1, 5] {
                    let (h, w) = (7, 9), rows: [Int32] = [0, 0, 3, 6, 6, 2], cols: [Int32] = [8, 0, 1, 1, 4]
                    let img = (0..<2 * h * w * ch).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    var out = [UInt8](repeating: 0, count: 2 * rows.count * cols.count * ch)
                    FastInteger.resizeNearest(img, images: 2, height: h, width: w, channels: ch, rows: rows, cols: cols, into: &out, threads: threads)
                    var want: [UInt8] = []
                    for i in 0..<2 { for r0 in rows { for c0 in cols { for k in 0..<ch { want.append(img[((i * h + Int(r0)) * w + Int(c0)) * ch + k]) } } } }
                    XCTAssertEqual(out, want, "resize level \(level) channels \(ch)")
                }
            }
        }
    }

    /// ConvTranspose's gather: exact integer sums per output, bias, one rounding, for strides, dilations and pads
    /// that make outputs with zero, one and several taps.
    func testConvTransposeColumnsEqualTheReference() {
        var rng = SystemRandomNumberGenerator()
        // Output channels from 1 to past two 16-lane vectors (the stride = kernel path's contiguous loop); an output
        // padding (`extra`) leaves a last row and column that no tap reaches (the bias alone).
        for (h, w, m, k, s, d, pad, extra) in [(5, 4, 3, 2, 2, 1, 0, 0), (4, 3, 2, 3, 3, 1, 1, 0), (4, 6, 2, 3, 2, 1, 1, 0), (3, 3, 4, 3, 1, 2, 2, 0),
                                               (6, 5, 1, 4, 3, 1, 1, 0), (5, 4, 37, 2, 2, 1, 0, 1), (3, 5, 24, 2, 2, 1, 1, 0), (4, 3, 20, 3, 2, 1, 1, 1)] {
            let rows = m * k * k
            let cols = (0..<h * w * rows).map { _ in Float(Int32.random(in: -30000...30000, using: &rng)) }
            let bias = (0..<m).map { _ in Int32.random(in: -9000...9000, using: &rng) }, scales = (0..<m).map { _ in Float.random(in: 0.0005...0.01, using: &rng) }
            let oh = (h - 1) * s + (k - 1) * d + 1 - 2 * pad + extra, ow = (w - 1) * s + (k - 1) * d + 1 - 2 * pad + extra
            var want = [UInt8](repeating: 0, count: oh * ow * m)
            for r in 0..<oh { for q in 0..<ow { for c in 0..<m {
                var acc = bias[c]
                for ih in 0..<h { for a in 0..<k where ih * s - pad + a * d == r { for iw in 0..<w { for e in 0..<k where iw * s - pad + e * d == q {
                    acc += Int32(cols[(ih * w + iw) * rows + (a * k + e) * m + c])
                } } } }
                want[(r * ow + q) * m + c] = UInt8(min(max((Float(acc) * scales[c]).rounded(.toNearestOrEven) + 7, 2), 251))
            } } }
            for level in levels {
                _ = sq_set_cpu_level(level)
                for threads in [1, 2] {
                    var y = [UInt8](repeating: 0, count: oh * ow * m)
                    FastInteger.convTransposeColumns(cols, height: h, width: w, channels: m, kernel: (k, k), stride: (s, s), dilation: (d, d), pads: (pad, pad),
                                                     bias: bias, scales: scales, zero: 7, lo: 2, hi: 251, into: &y, outHeight: oh, outWidth: ow, threads: threads)
                    XCTAssertEqual(y, want, "h \(h) w \(w) m \(m) k \(k) s \(s) d \(d) pad \(pad) level \(level) threads \(threads)")
                }
            }
        }
    }
}
