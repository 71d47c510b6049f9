import CKernels
import SwiftQKernels
import XCTest

/// Every fast float kernel against its reference, over shapes with odd edges, at every instruction set this
/// CPU has (AVX-512, AVX2+FMA, portable C).
final class FastKernelTests: XCTestCase {
    var rng = SystemRandomNumberGenerator()

    func random(_ n: Int) -> [Float] { (0..<n).map { _ in Float.random(in: -1...1, using: &rng) } }

    func levels() -> [Int32] {
        let top = sq_set_cpu_level(-1)
        return [3, 2, 0].filter { $0 <= top }
    }

    func assertClose(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        for i in 0..<min(a.count, b.count) where abs(a[i] - b[i]) > 1e-4 * max(1, abs(b[i])) {
            XCTFail("\(what): [\(i)] fast \(a[i]) vs reference \(b[i])", file: file, line: line)
            return
        }
    }

    /// Winograd's transforms round in proportion to the layer's largest values, not to each output's own (a sum that
    /// nearly cancels keeps the error of the large terms): every difference within `rel` of `scale`, the largest
    /// |output| before any clamp (measured up to 1.1e-5 of it over the sweep's shapes).
    func assertCloseToScale(_ a: [Float], _ b: [Float], scale: Float, _ what: String, rel: Float = 3e-5, file: StaticString = #filePath,
                            line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        var worst: Float = 0
        for i in 0..<min(a.count, b.count) { worst = max(worst, abs(a[i] - b[i])) }
        if ProcessInfo.processInfo.environment["SWIFTQ_PRINT_ERRORS"] != nil { print("\(what): worst \(worst / scale) of the scale") }
        XCTAssertLessThanOrEqual(worst, rel * scale, "\(what): largest difference \(worst), largest output \(scale)", file: file, line: line)
    }

    func testConvSweep() {
        defer { _ = sq_set_cpu_level(-1) }
        // (channels, outChannels, group, H, W, kernel, stride, dilation, pad)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
            (3, 8, 1, 9, 11, 3, 1, 1, 1), (3, 13, 1, 16, 16, 3, 2, 1, 1), (16, 7, 1, 5, 7, 1, 1, 1, 0),
            (17, 33, 1, 7, 7, 1, 1, 1, 0), (8, 8, 8, 12, 13, 3, 1, 1, 1), (24, 24, 24, 15, 15, 3, 2, 1, 1),
            (6, 6, 6, 11, 9, 5, 2, 1, 2), (12, 9, 3, 8, 8, 3, 1, 2, 2), (5, 4, 1, 1, 1, 1, 1, 1, 0),
            (4, 40, 2, 10, 6, 3, 2, 1, 0), (300, 27, 1, 3, 3, 3, 1, 1, 1),
            // depthwise: several 16-wide vectors per row, more taps than the fast path holds, stride 3, no padding
            (5, 5, 5, 9, 40, 3, 1, 1, 1), (3, 3, 3, 12, 12, 9, 1, 1, 4), (4, 4, 4, 13, 35, 3, 3, 1, 1), (7, 7, 7, 6, 6, 3, 1, 1, 0),
            (2, 2, 2, 20, 37, 5, 2, 2, 3), (3, 3, 3, 11, 21, 5, 1, 1, 2), (64, 256, 1, 13, 13, 3, 1, 1, 1),
            (4, 4, 4, 23, 45, 5, 2, 1, 2), (3, 3, 3, 14, 33, 5, 1, 1, 2), (4, 4, 4, 17, 70, 3, 2, 1, 1), (2, 2, 2, 9, 31, 5, 2, 1, 0),
            // depthwise 5x5 on maps 7 to 10 wide with the channels in the lanes on AVX-512: 20 channels (16 + 4), 10 x 9
            (20, 20, 20, 10, 9, 5, 1, 1, 2),
            // full 3x3 on the direct kernel: 17 outputs (a partial block of 16), stride 2 without padding, 2 vectors a row
            (5, 17, 1, 10, 14, 3, 1, 1, 1), (6, 18, 1, 29, 29, 3, 2, 1, 0), (3, 32, 1, 31, 62, 3, 2, 1, 1), (16, 16, 16, 30, 64, 3, 2, 1, 1),
            // stride 2 on rows split into even and odd columns: chunks of 4 output rows and a last odd one, 32 and 47 wide
            (16, 32, 1, 41, 63, 3, 2, 1, 1), (12, 20, 1, 19, 30, 3, 2, 1, 1), (8, 9, 1, 17, 94, 3, 2, 1, 1), (5, 8, 1, 18, 18, 3, 2, 1, 0),
            // full 3x3 keeping the size (the flat walk unless rows fill whole vectors): one row, one column, rows of
            // 15, 16 (row by row) and 33, a plane under 16 outputs
            (7, 9, 1, 1, 5, 3, 1, 1, 1), (4, 8, 1, 6, 1, 3, 1, 1, 1), (5, 12, 1, 9, 15, 3, 1, 1, 1), (5, 12, 1, 9, 16, 3, 1, 1, 1),
            (9, 8, 1, 5, 33, 3, 1, 1, 1), (3, 16, 1, 3, 3, 3, 1, 1, 1),
            // on 2 threads by runs of channel blocks (rows 7 + 6 of a 13x13 plane split worse): 64 -> 256 above, and 60
            // outputs (8 blocks, the last of 4 channels)
            (8, 60, 1, 13, 13, 3, 1, 1, 1),
            // depthwise keeping the size on small planes (the flat walk on AVX-512: 3x3 up to 10 wide, 5x5 up to 8; wider
            // ones row by row): 7x7 (4 blocks), 10x10 (7: uneven groups), 14x14, one row, one column, 15x15, and a plane
            // over 16 blocks (rows of 15, 18 of them)
            (9, 9, 9, 7, 7, 5, 1, 1, 2), (6, 6, 6, 7, 7, 3, 1, 1, 1), (5, 5, 5, 14, 14, 3, 1, 1, 1), (4, 4, 4, 14, 14, 5, 1, 1, 2),
            (5, 5, 5, 10, 10, 3, 1, 1, 1),
            (3, 3, 3, 1, 9, 5, 1, 1, 2), (3, 3, 3, 10, 1, 3, 1, 1, 1), (2, 2, 2, 15, 15, 5, 1, 1, 2), (2, 2, 2, 18, 15, 3, 1, 1, 1),
            // im2col matrices over 64 Ki floats, unfolded in bands of output rows on AVX2 and portable: two bands (14 + 6 rows)
            // at stride 2, eight bands of a dilated 5x5 shared by two threads, two groups
            (20, 10, 1, 40, 50, 3, 2, 1, 1), (8, 6, 1, 30, 70, 5, 1, 2, 4), (16, 8, 2, 40, 40, 3, 1, 1, 1),
            // depthwise keeping the size of planes up to 8x8 with the channels in the lanes on AVX2: 10 channels (8 + 2), a
            // plane of one row, 9 pixels (a tail past the 8 x 8 transposes)
            (10, 10, 10, 8, 5, 3, 1, 1, 1), (3, 3, 3, 1, 7, 5, 1, 1, 2), (4, 4, 4, 3, 3, 5, 1, 1, 2),
            // ... and at stride 2 from up to 16x16 to 8x8: 14x14 to 7x7 (3x3 and 5x5), 16x13 without padding
            (9, 9, 9, 14, 14, 3, 2, 1, 1), (3, 3, 3, 14, 14, 5, 2, 1, 2), (5, 5, 5, 16, 13, 3, 2, 1, 0),
            // depthwise rows of more column blocks than the AVX2 kernel makes masks for at once (16 blocks of 16)
            (2, 2, 2, 4, 270, 3, 1, 1, 1), (2, 2, 2, 5, 530, 5, 2, 1, 2),
        ]
        for level in levels() {
            _ = sq_set_cpu_level(level)
            for (c, m, grp, h, w, k, s, d, p) in cases {
                let oh = (h + 2 * p - (k - 1) * d - 1) / s + 1, ow = (w + 2 * p - (k - 1) * d - 1) / s + 1
                let g = ConvGeometry(batch: 2, channels: c, height: h, width: w, outChannels: m, group: grp, kernelH: k, kernelW: k,
                                     strideH: s, strideW: s, dilationH: d, dilationW: d, padTop: p, padLeft: p, padBottom: p, padRight: p,
                                     outHeight: oh, outWidth: ow)
                let x = random(2 * c * h * w), wt = random(m * c / grp * k * k), bias = random(m)
                let mpg = m / grp, kk = c / grp * k * k
                var want = [Float](repeating: 0, count: 2 * m * oh * ow), got = want
                Reference.conv(x: x, w: wt, bias: bias, y: &want, g, lo: -0.5, hi: 0.7)
                let packed = (0..<grp).map { gi in wt.withUnsafeBufferPointer { PackedMatrix(rows: mpg, cols: kk, data: $0.baseAddress! + gi * mpg * kk, ld: kk) } }
                let direct = grp == 1 && k == 3 ? wt.withUnsafeBufferPointer { Direct3x3Weights(outChannels: m, channels: c, data: $0.baseAddress!) } : nil
                for threads in [1, 2] {
                    Fast.conv(x: x, packed: packed, direct: direct, depthwise: g.isDepthwise ? wt : nil, bias: bias, y: &got, g, lo: -0.5, hi: 0.7,
                              scratch: Scratch(), threads: threads)
                    assertClose(got, want, "level \(level) threads \(threads) conv \(g)")
                }
            }
        }
    }

    /// The kernels' thread-local scratch is freed when its thread ends, with no call to `Fast.releaseThreadBuffers`
    /// (a Dispatch worker running an interpreter retires without one). Under `make sanitize`, LeakSanitizer reports
    /// the packing buffer of the AVX2 product if it is not.
    func testThreadScratchFreedWhenTheThreadEnds() {
        defer { _ = sq_set_cpu_level(-1) }
        let level: Int32 = sq_set_cpu_level(-1) >= 2 ? 2 : 0
        let a = random(20 * 30), b = random(30 * 40)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: 20 * 40)
        defer { c.deallocate() }
        nonisolated(unsafe) let out = c
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            _ = sq_set_cpu_level(level)
            let packed = a.withUnsafeBufferPointer { PackedMatrix(rows: 20, cols: 30, data: $0.baseAddress!, ld: 30) }
            Fast.gemm(packed, b: b, ldb: 40, n: 40, c: out, ldc: 40, bias: nil, threads: 1)
            done.signal()
        }
        thread.start()
        done.wait()
        XCTAssertEqual(c[0], (0..<30).reduce(Float(0)) { $0 + a[$1] * b[$1 * 40] }, accuracy: 1e-4)
    }

    /// Stride-1 convolutions on AVX2 run without im2col (`sq_conv_indirect_band` on a padded copy, or on small maps
    /// `sq_conv_shifted_band` on copies shifted per kernel column): the same bits as im2col + the packed product. Bands
    /// shared by two threads, K over one 256-row block, dilation, uneven pads, one row, a 2x2 kernel, rows of output
    /// channels that are not a multiple of the 6-row panels, two groups; on shifted copies also output rows narrower
    /// than the image's, shifts of two columns each way, several bands, and small maps split between two threads by
    /// output channels (13x13 with 37, 7x7 with 40); then a shape left to im2col (few products per output).
    func testIndirectConvEqualsIm2colProductBitForBit() throws {
        defer { _ = sq_set_cpu_level(-1) }
        guard sq_set_cpu_level(-1) >= 2 else { throw XCTSkip("no AVX2 on this CPU") }
        _ = sq_set_cpu_level(2)
        // (channels, outChannels, group, H, W, kernel, dilation, pads top/left/bottom/right)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, [Int])] = [
            (16, 64, 1, 55, 55, 3, 1, [1, 1, 1, 1]), (30, 7, 1, 9, 40, 3, 2, [2, 2, 2, 2]), (8, 8, 1, 1, 40, 3, 1, [1, 1, 1, 1]),
            (8, 11, 1, 10, 40, 5, 1, [0, 1, 2, 3]), (16, 12, 2, 17, 30, 3, 1, [1, 0, 1, 2]), (20, 9, 1, 6, 30, 2, 1, [0, 0, 1, 1]),
            (12, 20, 1, 90, 90, 3, 1, [1, 1, 1, 1]),
            (64, 37, 1, 13, 13, 3, 1, [1, 1, 1, 1]), (8, 11, 1, 10, 10, 5, 1, [1, 1, 1, 1]), (30, 7, 1, 7, 7, 3, 2, [2, 2, 2, 2]),
            (16, 12, 2, 9, 9, 3, 1, [1, 0, 1, 2]), (200, 6, 1, 12, 12, 3, 1, [1, 1, 1, 1]), (12, 5, 1, 4, 4, 3, 1, [2, 2, 0, 0]),
            (24, 40, 1, 7, 7, 3, 1, [1, 1, 1, 1]),
            (3, 8, 1, 9, 30, 3, 1, [1, 1, 1, 1]),
        ]
        // Shifted copies where more than an eighth of the padded grid's columns would be wasted.
        let shifted = cases.filter { c in
            let wp = c.4 + c.7[1] + c.7[3], ow = wp - (c.5 - 1) * c.6
            return 8 * (wp - ow) > wp && c.0 / c.2 * c.5 * c.5 >= 64
        }
        XCTAssertEqual(shifted.count, 7, "the cases meant for shifted copies")
        for (c, m, grp, h, w, k, d, pads) in cases {
            let oh = h + pads[0] + pads[2] - (k - 1) * d, ow = w + pads[1] + pads[3] - (k - 1) * d
            let g = ConvGeometry(batch: 1, channels: c, height: h, width: w, outChannels: m, group: grp, kernelH: k, kernelW: k,
                                 strideH: 1, strideW: 1, dilationH: d, dilationW: d, padTop: pads[0], padLeft: pads[1], padBottom: pads[2],
                                 padRight: pads[3], outHeight: oh, outWidth: ow)
            let x = random(c * h * w), wt = random(m * c / grp * k * k), bias = random(m)
            let cpg = c / grp, mpg = m / grp, kk = cpg * k * k, ohw = oh * ow
            let packed = (0..<grp).map { gi in wt.withUnsafeBufferPointer { PackedMatrix(rows: mpg, cols: kk, data: $0.baseAddress! + gi * mpg * kk, ld: kk) } }
            var want = [Float](repeating: 0, count: m * ohw), col = [Float](repeating: 0, count: kk * ohw)
            for gi in 0..<grp {
                x.withUnsafeBufferPointer { xp in
                    sq_im2col(xp.baseAddress! + gi * cpg * h * w, Int32(cpg), Int32(h), Int32(w), Int32(k), Int32(k), 1, 1, Int32(d), Int32(d),
                              Int32(pads[0]), Int32(pads[1]), Int32(oh), Int32(ow), 0, Int32(oh), &col)
                }
                bias.withUnsafeBufferPointer { bp in
                    want.withUnsafeMutableBufferPointer { yp in
                        Fast.gemm(packed[gi], b: col, ldb: ohw, n: ohw, c: yp.baseAddress! + gi * mpg * ohw, ldc: ohw, bias: bp.baseAddress! + gi * mpg,
                                  lo: -0.5, hi: 0.7, threads: 1)
                    }
                }
            }
            for threads in [1, 2] {
                var got = [Float](repeating: .nan, count: m * ohw)
                Fast.conv(x: x, packed: packed, depthwise: nil, bias: bias, y: &got, g, lo: -0.5, hi: 0.7, scratch: Scratch(), threads: threads)
                if let i = (0..<got.count).first(where: { got[$0].bitPattern != want[$0].bitPattern }) {
                    XCTFail("threads \(threads) \(g): [\(i)] \(got[i]) vs im2col + product \(want[i])")
                }
            }
        }
    }

    /// Depthwise with the pads TensorFlow's SAME gives stride 2 (none before, one after) and other uneven pads: the
    /// last output rows and columns read past the image on one side only.
    func testDepthwiseUnevenPads() {
        defer { _ = sq_set_cpu_level(-1) }
        // (channels, H, W, kernel, stride, pad top, pad left, pad bottom, pad right)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
            (3, 16, 33, 3, 2, 0, 0, 1, 1), (2, 14, 14, 3, 2, 0, 0, 1, 1), (2, 17, 40, 5, 2, 1, 1, 2, 2), (3, 9, 18, 5, 1, 2, 1, 2, 3),
            // keeping the size with uneven pads (the flat walk on planes under 16 wide)
            (3, 7, 9, 5, 1, 1, 3, 3, 1), (2, 6, 6, 3, 1, 0, 2, 2, 0),
        ]
        for level in levels() {
            _ = sq_set_cpu_level(level)
            for (c, h, w, k, s, pt, pl, pb, pr) in cases {
                let oh = (h + pt + pb - k) / s + 1, ow = (w + pl + pr - k) / s + 1
                let g = ConvGeometry(batch: 1, channels: c, height: h, width: w, outChannels: c, group: c, kernelH: k, kernelW: k,
                                     strideH: s, strideW: s, dilationH: 1, dilationW: 1, padTop: pt, padLeft: pl, padBottom: pb, padRight: pr,
                                     outHeight: oh, outWidth: ow)
                let x = random(c * h * w), wt = random(c * k * k), bias = random(c)
                var want = [Float](repeating: 0, count: c * oh * ow), got = want
                Reference.conv(x: x, w: wt, bias: bias, y: &want, g, lo: -0.5, hi: 0.7)
                Fast.conv(x: x, packed: [], depthwise: wt, bias: bias, y: &got, g, lo: -0.5, hi: 0.7, scratch: Scratch(), threads: 2)
                assertClose(got, want, "level \(level) depthwise \(g)")
            }
        }
    }

    /// The fused 1x1 + depthwise pair equals the two convolutions run one after the other, bit for bit: bands of
    /// 4 and 8 output rows (rows carried from band to band, the last band short), the default band, strides 1 and 2,
    /// 3x3 and 5x5, uneven pads, 1 and 2 threads, a batch of 2. On AVX-512 the 5x5 maps 7 to 10 wide (the last two
    /// cases) run whole through the channels-in-lanes kernel and in bands through the row kernel: the same bits.
    func testExpandDepthwiseEqualsTwoConvolutions() {
        defer { _ = sq_set_cpu_level(-1) }
        // (in channels, expanded channels, H, W, kernel, stride, pad top, pad left, pad bottom, pad right)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
            (5, 24, 23, 37, 3, 2, 1, 1, 1, 1), (8, 16, 30, 20, 3, 1, 1, 1, 1, 1), (3, 17, 19, 33, 5, 2, 2, 2, 2, 2),
            (4, 12, 21, 18, 5, 1, 2, 2, 2, 2), (6, 32, 28, 28, 3, 2, 0, 0, 1, 1), (6, 40, 9, 9, 5, 1, 2, 2, 2, 2), (5, 20, 7, 10, 5, 1, 1, 3, 3, 1),
        ]
        _ = sq_set_cpu_level(-1)
        for (c, m, h, w, k, s, pt, pl, pb, pr) in cases {
            let e = ConvGeometry(batch: 2, channels: c, height: h, width: w, outChannels: m, group: 1, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1,
                                 dilationH: 1, dilationW: 1, padTop: 0, padLeft: 0, padBottom: 0, padRight: 0, outHeight: h, outWidth: w)
            let oh = (h + pt + pb - k) / s + 1, ow = (w + pl + pr - k) / s + 1
            let d = ConvGeometry(batch: 2, channels: m, height: h, width: w, outChannels: m, group: m, kernelH: k, kernelW: k, strideH: s, strideW: s,
                                 dilationH: 1, dilationW: 1, padTop: pt, padLeft: pl, padBottom: pb, padRight: pr, outHeight: oh, outWidth: ow)
            guard Fast.canExpandDepthwise(e, d) else {
                XCTAssertLessThan(sq_cpu_level(), 2, "the fused kernel applies to \(d) on AVX2 and AVX-512")
                continue
            }
            let x = random(2 * c * h * w), we = random(m * c), be = random(m), wd = random(m * k * k), bd = random(m)
            let packed = we.withUnsafeBufferPointer { PackedMatrix(rows: m, cols: c, data: $0.baseAddress!, ld: c) }
            var mid = [Float](repeating: 0, count: 2 * m * h * w), want = [Float](repeating: 0, count: 2 * m * oh * ow)
            Fast.conv(x: x, packed: [packed], depthwise: nil, bias: be, y: &mid, e, lo: 0, hi: 6, scratch: Scratch(), threads: 1)
            Fast.conv(x: mid, packed: [], depthwise: wd, bias: bd, y: &want, d, lo: -0.5, hi: 0.7, scratch: Scratch(), threads: 1)
            for threads in [1, 2] {
                for band in [4, 8, nil] as [Int?] {
                    var got = [Float](repeating: .nan, count: want.count)
                    Fast.expandDepthwise(x: x, expand: packed, expandBias: be, expandLo: 0, expandHi: 6, dw: wd, dwBias: bd, lo: -0.5, hi: 0.7,
                                         y: &got, e, d, scratch: [Scratch(), Scratch()], threads: threads, bandRows: band)
                    XCTAssertEqual(got, want, "threads \(threads) band \(band.map(String.init) ?? "default") \(d)")
                }
            }
            // With SiLU after the expansion and HardSwish after the depthwise (sq_unary 6 and 3): each applied to the
            // two convolutions' outputs in place, bit for bit.
            var act = [Float](repeating: 0, count: mid.count), actWant = want
            Fast.conv(x: x, packed: [packed], depthwise: nil, bias: be, y: &act, e, lo: -.infinity, hi: .infinity, scratch: Scratch(), threads: 1)
            sq_unary(6, act, &act, Int32(act.count), 0, 0)
            Fast.conv(x: act, packed: [], depthwise: wd, bias: bd, y: &actWant, d, lo: -.infinity, hi: .infinity, scratch: Scratch(), threads: 1)
            sq_unary(3, actWant, &actWant, Int32(actWant.count), 0, 0)
            for threads in [1, 2] {
                var got = [Float](repeating: .nan, count: want.count)
                Fast.expandDepthwise(x: x, expand: packed, expandBias: be, expandLo: -.infinity, expandHi: .infinity, expandActivation: 6, dw: wd,
                                     dwBias: bd, lo: -.infinity, hi: .infinity, activation: 3, y: &got, e, d, scratch: [Scratch(), Scratch()],
                                     threads: threads, bandRows: 4)
                XCTAssertEqual(got.map(\.bitPattern), actWant.map(\.bitPattern), "activations: threads \(threads) \(d)")
            }
        }
    }

    /// The direct 3x3 kernel's flat walk reads taps with plain (unmasked) loads wherever they stay inside the input
    /// tensor, and masked loads in the first and last channels where they would not; with few channels the row walk
    /// first reads the input rows it needs in one pass (`warm_rows`). Here the input touches an
    /// unreadable page on one side, so a read past either end of the tensor crashes the test; the results equal the
    /// same kernel's on an ordinary buffer, and the reference.
    func testDirect3x3ReadsNothingOutsideTheInput() throws {
        guard sq_cpu_level() == 3 else { throw XCTSkip("sq_conv3x3_avx512 needs AVX-512") }
        // (channels, H, W, output channels, stride): one channel (every tile's reads leave the plane), one row, planes
        // of 13x13 and 55x55, and a plane of exactly one page; at stride 2 a stem (3 channels: the row walk, after
        // its pass over the input rows)
        for (c, h, w, m, s) in [(1, 13, 13, 8, 1), (3, 1, 20, 9, 1), (4, 13, 13, 16, 1), (2, 55, 55, 8, 1), (3, 32, 32, 8, 1), (3, 32, 32, 16, 2),
                                (3, 31, 23, 8, 2)] {
            let x = random(c * h * w), wt = random(m * c * 9), bias = random(m)
            let oh = (h - 1) / s + 1, ow = (w - 1) / s + 1
            let g = ConvGeometry(batch: 1, channels: c, height: h, width: w, outChannels: m, group: 1, kernelH: 3, kernelW: 3, strideH: s, strideW: s,
                                 dilationH: 1, dilationW: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1, outHeight: oh, outWidth: ow)
            var want = [Float](repeating: 0, count: m * oh * ow)
            Reference.conv(x: x, w: wt, bias: bias, y: &want, g, lo: -.infinity, hi: .infinity)
            let d = try XCTUnwrap(wt.withUnsafeBufferPointer { Direct3x3Weights(outChannels: m, channels: c, data: $0.baseAddress!) })
            var normal = [Float](repeating: 0, count: want.count)
            Fast.conv(x: x, packed: [], direct: d, depthwise: nil, bias: bias, y: &normal, g, lo: -.infinity, hi: .infinity, scratch: Scratch(), threads: 1)
            assertClose(normal, want, "\(g)")
            try againstGuardPages(x) { xp, start in
                for threads in [1, 2] {
                    var got = [Float](repeating: .nan, count: want.count)
                    got.withUnsafeMutableBufferPointer { y in
                        Fast.conv(x: xp, packed: [], direct: d, depthwise: nil, bias: bias, y: y.baseAddress!, g, lo: -.infinity, hi: .infinity,
                                  scratch: Scratch(), threads: threads)
                    }
                    XCTAssertEqual(got.map(\.bitPattern), normal.map(\.bitPattern), "start \(start) threads \(threads) \(g)")
                }
            }
        }
    }

    /// 3x3 convolutions that keep the size of a map under 16 wide run with the output channels in the lanes
    /// (`sq_conv3x3_lanes_avx512`): the same bits as the flat walk (`sq_conv3x3_avx512`), which sums each output in the
    /// same order. SqueezeNet's 13x13 layer, a last group of 28 channels (60), 14x14, a row of 15 (7 + 7 + 1 outputs),
    /// one row, one column; batch 2, 1 and 2 threads, with and without a clamp.
    func testConv3x3LanesEqualFlatWalk() throws {
        guard sq_cpu_level() == 3 else { throw XCTSkip("sq_conv3x3_lanes_avx512 needs AVX-512") }
        for (c, m, h, w) in [(64, 256, 13, 13), (8, 60, 13, 13), (16, 48, 14, 14), (5, 40, 9, 15), (3, 16, 1, 7), (7, 33, 6, 1)] {
            let g = ConvGeometry(batch: 2, channels: c, height: h, width: w, outChannels: m, group: 1, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1,
                                 dilationH: 1, dilationW: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1, outHeight: h, outWidth: w)
            let x = random(2 * c * h * w), wt = random(m * c * 9), bias = random(m)
            let d = try XCTUnwrap(wt.withUnsafeBufferPointer { Direct3x3Weights(outChannels: m, channels: c, data: $0.baseAddress!) })
            var blocks = [Float](repeating: 0, count: sq_conv3x3_packed_size(Int32(m), Int32(c)))
            sq_conv3x3_pack(Int32(m), Int32(c), wt, &blocks)
            for (lo, hi) in [(-Float.infinity, Float.infinity), (-0.5, 0.7)] {
                var want = [Float](repeating: 0, count: 2 * m * h * w)
                for n in 0..<2 {
                    x.withUnsafeBufferPointer { xp in
                        want.withUnsafeMutableBufferPointer { yp in
                            sq_conv3x3_avx512(xp.baseAddress! + n * c * h * w, Int32(c), Int32(h), Int32(w), blocks, Int32(m), 1, 1, 1,
                                              yp.baseAddress! + n * m * h * w, Int32(h), Int32(w), bias, lo, hi, 0, Int32(h), 0)
                        }
                    }
                }
                for threads in [1, 2] {
                    var got = [Float](repeating: .nan, count: want.count)
                    Fast.conv(x: x, packed: [], direct: d, depthwise: nil, bias: bias, y: &got, g, lo: lo, hi: hi, scratch: Scratch(), threads: threads)
                    XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(c) -> \(m) at \(h)x\(w), clamp [\(lo), \(hi)], threads \(threads)")
                }
            }
        }
    }

    /// 3x3 stride-1 convolutions by Winograd's F(4x4, 3x3) against the direct reference (the transforms round
    /// differently: within the sweep's tolerance), on 1 and 2 threads, with clamps. The shapes: the smallest that runs
    /// it (16 tiles, 13x13, 16 channels each way), odd map sizes (partial tiles on the right and the bottom), tile rows
    /// longer than a vector (18 tiles), no padding (16x16 out of 18x18), uneven pads, output channels that fill no
    /// whole panel (33), more input channels than one block of the product (260), SqueezeNet's 64 -> 256 at 13x13,
    /// one split into many tile chunks (80x80: 400 tiles), and 1030 input channels (chunks of at most 48 tiles).
    func testWinogradConvSweep() throws {
        guard sq_cpu_level() == 3 else { throw XCTSkip("the Winograd path runs where the direct 3x3 kernels do (AVX-512)") }
        // (channels, outChannels, H, W, pads top, left, bottom, right)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int)] = [
            (16, 208, 13, 13, 1, 1, 1, 1), (24, 64, 17, 23, 1, 1, 1, 1), (20, 40, 30, 70, 1, 1, 1, 1), (32, 64, 18, 18, 0, 0, 0, 0),
            (17, 33, 40, 40, 1, 1, 1, 1), (260, 16, 13, 13, 1, 1, 1, 1), (64, 256, 13, 13, 1, 1, 1, 1), (16, 24, 80, 80, 1, 1, 1, 1),
            (24, 32, 29, 31, 2, 0, 1, 2), (1030, 16, 26, 26, 1, 1, 1, 1),
        ]
        for (c, m, h, w, pt, pl, pb, pr) in cases {
            let oh = h + pt + pb - 2, ow = w + pl + pr - 2
            let g = ConvGeometry(batch: 2, channels: c, height: h, width: w, outChannels: m, group: 1, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1,
                                 dilationH: 1, dilationW: 1, padTop: pt, padLeft: pl, padBottom: pb, padRight: pr, outHeight: oh, outWidth: ow)
            let x = random(2 * c * h * w), wt = random(m * c * 9), bias = random(m)
            let d = try XCTUnwrap(wt.withUnsafeBufferPointer { Direct3x3Weights(outChannels: m, channels: c, data: $0.baseAddress!, winograd: true) })
            XCTAssertTrue(d.winogradApplies(to: g), "\(g) should run by Winograd")
            var scale: Float = 0
            for (lo, hi) in [(-Float.infinity, Float.infinity), (-0.5, 0.7)] {
                var want = [Float](repeating: 0, count: 2 * m * oh * ow)
                Reference.conv(x: x, w: wt, bias: bias, y: &want, g, lo: lo, hi: hi)
                if lo == -.infinity { scale = want.reduce(0) { max($0, abs($1)) } }
                for threads in [1, 2] {
                    var got = [Float](repeating: .nan, count: want.count)
                    Fast.conv(x: x, packed: [], direct: d, depthwise: nil, bias: bias, y: &got, g, lo: lo, hi: hi, scratch: Scratch(), threads: threads)
                    assertCloseToScale(got, want, scale: scale, "Winograd \(c) -> \(m) at \(h)x\(w) pads \([pt, pl, pb, pr]), clamp [\(lo), \(hi)], threads \(threads)")
                }
            }
        }
        // Where it does not pay: 7x7 maps (4 tiles), 8 input channels, 32 -> 32 at 13x13; never at stride 2; not past
        // 4096 input channels (its scratch).
        for (c, m, h, s) in [(64, 64, 7, 1), (8, 64, 40, 1), (32, 32, 13, 1), (64, 64, 40, 2), (4100, 16, 13, 1)] {
            let o = (h + 2 - 3) / s + 1
            let g = ConvGeometry(batch: 1, channels: c, height: h, width: h, outChannels: m, group: 1, kernelH: 3, kernelW: 3, strideH: s, strideW: s,
                                 dilationH: 1, dilationW: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1, outHeight: o, outWidth: o)
            let wt = random(m * c * 9)
            let d = try XCTUnwrap(wt.withUnsafeBufferPointer { Direct3x3Weights(outChannels: m, channels: c, data: $0.baseAddress!, winograd: true) })
            XCTAssertFalse(d.winogradApplies(to: g), "\(g) should not run by Winograd")
        }
    }

    /// The Winograd kernel at level 0 (portable products, no fused multiply-adds) equals `sq_winograd_ref`, which
    /// spells out the transforms and the channel sums one tile at a time, bit for bit; each call taking a range of
    /// tiles (chunks ending inside tile rows) and of output channels (panels of 8 and 12 rows). And the AVX-512 output
    /// transform equals the plain one: the same AVX-512 products (the packing's level) with sq_cpu_level forced down
    /// switch only the transform.
    func testWinogradEqualsItsReferenceBitForBit() throws {
        defer { _ = sq_set_cpu_level(-1) }
        // (channels, outChannels, H, W, PT, PL, OH, OW, tiles per call)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
            (16, 24, 13, 13, 1, 1, 13, 13, 16), (5, 17, 21, 30, 1, 1, 21, 30, 7), (9, 16, 70, 9, 0, 0, 68, 7, 40), (3, 36, 18, 18, 2, 1, 19, 17, 64),
        ]
        for (c, m, h, w, pt, pl, oh, ow, per) in cases {
            let x = random(c * h * w), wt = random(m * c * 9), bias = random(m)
            let tiles = Int(sq_winograd_tiles(Int32(oh), Int32(ow)))
            func run(_ packed: [Float], level: Int32, rowsPer: Int) -> [Float] {
                _ = sq_set_cpu_level(level)
                var y = [Float](repeating: .nan, count: m * oh * ow)
                for t0 in stride(from: 0, to: tiles, by: per) {
                    for m0 in stride(from: 0, to: m, by: rowsPer) {
                        sq_winograd_conv3x3(x, Int32(c), Int32(h), Int32(w), Int32(pt), Int32(pl), packed, Int32(m), &y, Int32(oh), Int32(ow), bias,
                                            -0.9, 1.1, Int32(t0), Int32(min(tiles, t0 + per)), Int32(m0), Int32(min(m, m0 + rowsPer)))
                    }
                }
                _ = sq_set_cpu_level(-1)
                return y
            }
            func pack(level: Int32) -> [Float] {
                _ = sq_set_cpu_level(level)
                defer { _ = sq_set_cpu_level(-1) }
                var p = [Float](repeating: 0, count: sq_winograd_packed_size(Int32(m), Int32(c)))
                sq_winograd_pack(Int32(m), Int32(c), wt, &p)
                return p
            }
            var want = [Float](repeating: 0, count: m * oh * ow), unclamped = want
            sq_winograd_ref(x, Int32(c), Int32(h), Int32(w), Int32(pt), Int32(pl), wt, Int32(m), &want, Int32(oh), Int32(ow), bias, -0.9, 1.1)
            sq_winograd_ref(x, Int32(c), Int32(h), Int32(w), Int32(pt), Int32(pl), wt, Int32(m), &unclamped, Int32(oh), Int32(ow), bias, -.infinity,
                            .infinity)
            let p0 = pack(level: 0), mr = Int(sq_packed_mr(p0))
            for rowsPer in [m, mr] {
                XCTAssertEqual(run(p0, level: 0, rowsPer: rowsPer).map(\.bitPattern), want.map(\.bitPattern),
                               "\(c) -> \(m) at \(h)x\(w), \(per) tiles and \(rowsPer) rows a call")
            }
            guard sq_set_cpu_level(-1) == 3 else { continue }
            let p3 = pack(level: 3)
            let avx512 = run(p3, level: 3, rowsPer: m), plain = run(p3, level: 0, rowsPer: m)
            XCTAssertEqual(avx512.map(\.bitPattern), plain.map(\.bitPattern), "AVX-512 output transform, \(c) -> \(m) at \(h)x\(w)")
            assertCloseToScale(avx512, want, scale: unclamped.reduce(0) { max($0, abs($1)) }, "AVX-512 products against the reference, \(c) -> \(m) at \(h)x\(w)")
        }
    }

    /// The 3x3 max pooling reads nothing outside its input either, at every instruction level. At stride 2 on AVX-512 a
    /// block whose taps reach exactly a row's last float loads them plainly (rows of 34), one whose loads would read a
    /// float past it stays masked (33); odd row counts, so the last row is read. One plane and several.
    func testMaxPoolReadsNothingOutsideTheInput() throws {
        defer { _ = sq_set_cpu_level(-1) }
        for level in levels() {
            _ = sq_set_cpu_level(level)
            // (planes, H, W, stride, pad)
            for (c, h, w, s, pad) in [(1, 55, 55, 2, 0), (3, 9, 34, 2, 0), (1, 7, 33, 2, 0), (1, 111, 111, 2, 0), (2, 14, 35, 2, 1), (1, 13, 40, 1, 1)] {
                let oh = (h + 2 * pad - 3) / s + 1, ow = (w + 2 * pad - 3) / s + 1
                let g = ConvGeometry(batch: 1, channels: c, height: h, width: w, outChannels: c, group: 1, kernelH: 3, kernelW: 3, strideH: s, strideW: s,
                                     dilationH: 1, dilationW: 1, padTop: pad, padLeft: pad, padBottom: pad, padRight: pad, outHeight: oh, outWidth: ow)
                let x = random(c * h * w)
                var want = [Float](repeating: 0, count: c * oh * ow)
                x.withUnsafeBufferPointer { xp in
                    want.withUnsafeMutableBufferPointer { yp in
                        for p in 0..<c {
                            Reference.pool(x: xp.baseAddress! + p * h * w, y: yp.baseAddress! + p * oh * ow, g, isMax: true, countIncludePad: false)
                        }
                    }
                }
                try againstGuardPages(x) { xp, start in
                    var got = [Float](repeating: .nan, count: want.count)
                    got.withUnsafeMutableBufferPointer { y in
                        Fast.pool(x: xp, y: y.baseAddress!, g, isMax: true, countIncludePad: false, planes: 0..<c)
                    }
                    XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "level \(level) start \(start) \(g)")
                }
            }
        }
    }

    /// Runs `body` on a copy of `x` placed right after an unreadable page, then on one ending right before another: a
    /// read past either end of the tensor crashes the test.
    func againstGuardPages(_ x: [Float], _ body: (UnsafePointer<Float>, Int) throws -> Void) throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE))), fpp = page / 4
        let n = x.count, pages = (n + fpp - 1) / fpp + 2
        let base = try XCTUnwrap(mmap(nil, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        defer { munmap(base, pages * page) }
        XCTAssertEqual(mprotect(base, page, PROT_NONE), 0)
        XCTAssertEqual(mprotect(base + (pages - 1) * page, page, PROT_NONE), 0)
        for start in [page, (pages - 1) * page - 4 * n] {
            let xp = (base + start).bindMemory(to: Float.self, capacity: n)
            xp.update(from: x, count: n)
            try body(UnsafePointer(xp), start)
        }
    }

    /// The direct 3x3 convolution and max pooling run band by band give what the two give one after the other, bit
    /// for bit: strides 1 and 2, pads on either, last windows over the bottom pad, odd sizes, bands of 1, 2 and 3
    /// pooled rows and the default (windows sharing one or two convolution rows with the last band, or none), one and
    /// two threads.
    /// The fused convolution + max pooling equals the two kernels one after the other, bit for bit: bands of pooled rows
    /// (1, 2, 3 and the default) on 1 and 2 threads, a batch of 2. Stems (at most 4 input channels, stride 2) before a
    /// 3x3 stride-2 pooling run with the output channels in the lanes: 64 channels (SqueezeNet's), 40 (a last group of
    /// 8), 8 (one group), pooling pads on both sides or after only; the rest by bands of planes.
    func testConvMaxPoolEqualsConvThenPool() {
        // (in channels, out channels, H, W, conv stride, conv pad, pool kernel, pool stride, pool pad top/left, pool pad bottom/right)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
            (3, 64, 47, 63, 2, 0, 3, 2, 0, 0), (5, 12, 30, 46, 1, 1, 3, 2, 1, 1), (4, 9, 29, 60, 2, 1, 2, 2, 0, 1),
            (2, 16, 36, 32, 1, 0, 3, 1, 1, 1), (3, 8, 40, 56, 2, 1, 3, 2, 0, 1), (3, 40, 35, 61, 2, 1, 3, 2, 1, 1),
            (6, 16, 31, 59, 2, 1, 3, 2, 0, 0),
        ]
        for (c, m, h, w, cs, cp, k, s, pp, pq) in cases {
            let oh = (h + 2 * cp - 3) / cs + 1, ow = (w + 2 * cp - 3) / cs + 1
            let gc = ConvGeometry(batch: 2, channels: c, height: h, width: w, outChannels: m, group: 1, kernelH: 3, kernelW: 3, strideH: cs, strideW: cs,
                                  dilationH: 1, dilationW: 1, padTop: cp, padLeft: cp, padBottom: cp, padRight: cp, outHeight: oh, outWidth: ow)
            let ph = (oh + pp + pq - k) / s + 1, pw = (ow + pp + pq - k) / s + 1
            let gp = ConvGeometry(batch: 2, channels: m, height: oh, width: ow, outChannels: m, group: 1, kernelH: k, kernelW: k, strideH: s, strideW: s,
                                  dilationH: 1, dilationW: 1, padTop: pp, padLeft: pp, padBottom: pq, padRight: pq, outHeight: ph, outWidth: pw)
            let wt = random(m * c * 9), b = random(m), x = random(2 * c * h * w)
            guard let d = wt.withUnsafeBufferPointer({ Direct3x3Weights(outChannels: m, channels: c, data: $0.baseAddress!) }), Fast.canConvMaxPool(gc, gp, direct: d) else {
                XCTAssertNotEqual(sq_cpu_level(), 3, "the fused kernel applies to \(gc) and \(gp) on AVX-512")
                continue
            }
            var mid = [Float](repeating: 0, count: 2 * m * oh * ow), want = [Float](repeating: 0, count: 2 * m * ph * pw)
            Fast.conv(x: x, packed: [], direct: d, depthwise: nil, bias: b, y: &mid, gc, lo: 0, hi: 6, scratch: Scratch(), threads: 1)
            Fast.pool(x: mid, y: &want, gp, isMax: true, countIncludePad: false, planes: 0..<(2 * m))
            for threads in [1, 2] {
                for band in [1, 2, 3, nil] as [Int?] {
                    var got = [Float](repeating: .nan, count: want.count)
                    Fast.convMaxPool(x: x, direct: d, bias: b, lo: 0, hi: 6, y: &got, gc, gp, scratch: [Scratch(), Scratch()], threads: threads, bandRows: band)
                    XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "threads \(threads) band \(band.map(String.init) ?? "default") \(gc) \(gp)")
                }
            }
        }
    }

    /// The vectorized activations equal the reference expressions bit for bit, on lengths with vector tails and on
    /// NaN, infinities, signed zeros and the kinks (−3, 3, 0).
    func testUnaryActivationsEqualReference() {
        let special: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 3, -3, 2.9999998, -2.9999998, 1e-30, -1e-30, 6, -6]
        let reference: [(Int32, Float, Float, (Float) -> Float)] = [
            (0, 0, 0, { max($0, 0) }), (1, -0.5, 0.7, { min(max($0, -0.5), 0.7) }),
            (2, 0.2, 0.5, { max(0, min(1, 0.2 * $0 + 0.5)) }), (3, 0, 0, { $0 * max(0, min(1, $0 / 6 + 0.5)) }),
            (4, 0.01, 0, { $0 < 0 ? $0 * 0.01 : $0 }),
        ]
        for n in [1, 15, 16, 17, 100, 1000] {
            let x = (0..<n).map { $0 < special.count ? special[$0] : Float.random(in: -8...8, using: &rng) }
            for (op, a, b, f) in reference {
                var y = [Float](repeating: 42, count: n)
                sq_unary(op, x, &y, Int32(n), a, b)
                for i in 0..<n where !(y[i].bitPattern == f(x[i]).bitPattern || (y[i].isNaN && f(x[i]).isNaN)) {
                    if y[i] == 0 && f(x[i]) == 0 { continue }  // the sign of a zero result may differ
                    XCTFail("op \(op) n \(n): f(\(x[i])) = \(y[i]), reference \(f(x[i]))")
                    break
                }
            }
        }
    }

    /// The vectorized Sigmoid (sq_unary 5, its own e^x; written out with fused multiply-adds on AVX-512, a plain loop
    /// elsewhere) against the reference's 1 / (1 + exp(-x)) with libm, at every instruction level: within 3.6e-7 of
    /// the larger of the two results (the worst seen is 3.1 ulp) from -87 to 100 in steps of 1/64 and on random
    /// values, lengths with vector tails; NaN kept, +infinity 1; below -87 both are under 2^-126. SiLU (sq_unary 6, a
    /// Conv's fused activation) is x times that Sigmoid, bit for bit, as Sigmoid then Mul computes it.
    func testSigmoidCloseToLibm() {
        defer { _ = sq_set_cpu_level(-1) }
        var x: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 87, -87, 88, -88, 88.5, -88.5, 1e-30, -1e-30]
        x += (-6400...6400).map { Float($0) / 64 } + (0..<1000).map { _ in Float.random(in: -20...20, using: &rng) }
        for level in levels() {
            _ = sq_set_cpu_level(level)
            for n in [1, 7, 17, x.count] {
                var y = [Float](repeating: 42, count: n), silu = y
                sq_unary(5, x, &y, Int32(n), 0, 0)
                sq_unary(6, x, &silu, Int32(n), 0, 0)
                for i in 0..<n {
                    let product = x[i] * y[i]
                    XCTAssertTrue(silu[i].bitPattern == product.bitPattern || (silu[i].isNaN && product.isNaN), "level \(level): silu(\(x[i]))")
                    let want = 1 / (1 + exp(-x[i]))
                    if want.isNaN { XCTAssertTrue(y[i].isNaN, "sigmoid(nan)"); continue }
                    let err = abs(y[i] - want) / max(want, y[i])
                    // Past the clamp both are under 2^-126 (subnormal: a few bits of precision left), and equal to a float's eye.
                    if min(want, y[i]) < 1.2e-38 { XCTAssertLessThan(max(want, y[i]), 1.2e-38, "sigmoid(\(x[i]))"); continue }
                    XCTAssertLessThanOrEqual(err, 3.6e-7, "level \(level): sigmoid(\(x[i])) = \(y[i]), libm \(want)")
                }
            }
            XCTAssertEqual(y1(.infinity), 1)
            XCTAssertEqual(y1(-.infinity), 0, accuracy: 1e-37)
        }
    }

    private func y1(_ v: Float) -> Float {
        var y: Float = 0
        var x = v
        sq_unary(5, &x, &y, 1, 0, 0)
        return y
    }

    /// The Gram matrix GPTQ sums for depthwise windows, four rows by four, equals its reference twin (one pair at
    /// a time, the same sums in the same order), and is symmetric: window sizes 1–26 (edge tiles), lengths under
    /// one vector, across a 1024 block, with tails. Equal to within float rounding, not bit for bit: whether a
    /// multiply and add become one fused instruction is the compiler's choice per expression, and the sanitizer
    /// build chose differently for the two (the release build's are identical: GPTQ files did not change).
    /// Calibration's one-pass statistics (min and max of the finite values, the count of the others, the histogram of
    /// |x|) equal the scalar reference exactly at every level, on 1 and 2 threads: zeros (AVX-512 counts bin 0 apart),
    /// infinities and NaN in the vectors and in the tails, values at and past the range's edge.
    func testAbsStatsEqualReference() {
        defer { _ = sq_set_cpu_level(-1) }
        let bins: Int32 = 2048
        var checked = 0
        for level in levels() {
            _ = sq_set_cpu_level(level)
            for n in [0, 1, 15, 16, 17, 4095, 4096, 4097, 9001, 70_001] {
                var x = random(n).map { $0 < -0.3 ? 0 : $0 * 8 }   // about a third zeros, as after a ReLU
                for (i, v) in [(3, Float.nan), (20, .infinity), (n - 1, -.infinity), (n / 2, -8), (n / 3, 8), (4100, .nan)] where i >= 0 && i < n {
                    x[i] = v
                }
                for (range, threads) in [(Float(8), 1), (8, 2), (0, 1), (5, 2), (1e-3, 1)] {
                    let perUnit = range > 0 ? Float(bins) / range : 0
                    var got = [Double](repeating: 1, count: Int(bins)), want = got
                    var r = sq_value_range(), w = sq_value_range()
                    let ok = sq_abs_stats(x, n, range, perUnit, bins, &got, &r, Int32(threads))
                    let okRef = sq_abs_stats_ref(x, n, range, perUnit, bins, &want, &w)
                    let what = "level \(level) n \(n) range \(range) threads \(threads)"
                    XCTAssertEqual(ok, okRef, what)
                    XCTAssertEqual(r.min.bitPattern, w.min.bitPattern, "\(what): min \(r.min) vs \(w.min)")
                    XCTAssertEqual(r.max.bitPattern, w.max.bitPattern, "\(what): max \(r.max) vs \(w.max)")
                    XCTAssertEqual(r.nonfinite, w.nonfinite, what)
                    XCTAssertEqual(got, want, what)
                    if range == 8, n > 20 {
                        XCTAssertEqual(ok, 1, what)
                        XCTAssertEqual(got[0] - 1, Double(x.filter { abs($0) * perUnit < 1 }.count), what)
                        checked += 1
                    }
                }
            }
        }
        XCTAssertEqual(checked, 10 * levels().count)
    }

    func testGramEqualsReferenceExactly() {
        for k in [1, 3, 4, 5, 8, 9, 12, 25, 26] {
            for n in [1, 15, 16, 49, 196, 1030, 2100] {
                let x = random(k * n)
                var h = [Float](repeating: 7, count: k * k), r = [Float](repeating: 9, count: k * k)
                sq_gram(x, Int32(k), Int32(n), &h)
                sq_gram_ref(x, Int32(k), Int32(n), &r)
                for i in 0..<(k * k) where abs(h[i] - r[i]) > 1e-5 * Float(n) {
                    XCTFail("k \(k) n \(n): [\(i)] \(h[i]) against the reference's \(r[i])")
                    break
                }
                for a in 0..<k { for c in 0..<k where h[a * k + c] != h[c * k + a] { XCTFail("k \(k) n \(n): not symmetric at \(a), \(c)") } }
                var direct = 0.0
                for i in 0..<n { direct += Double(x[i]) * Double(x[(k - 1) * n + i]) }
                XCTAssertEqual(Double(h[k - 1]), direct, accuracy: 1e-4 * Double(n), "k \(k) n \(n): the first row against the last")
            }
        }
    }

    func testPoolSweep() {
        defer { _ = sq_set_cpu_level(-1) }
        // (H, W, kernel, stride, pad begin, pad end): ceil_mode-style windows past the end, 16-wide edges
        let cases: [(Int, Int, Int, Int, Int, Int)] = [
            (111, 111, 3, 2, 0, 0), (56, 56, 3, 2, 0, 1), (13, 40, 3, 1, 1, 1), (9, 33, 3, 2, 1, 1), (7, 7, 2, 2, 0, 1), (10, 17, 5, 3, 2, 2),
            // 3x3 max pooling on rows narrower than a vector, pads of two
            (5, 6, 3, 1, 1, 1), (4, 3, 3, 2, 1, 1), (6, 9, 3, 1, 2, 2), (8, 12, 3, 2, 2, 2), (27, 27, 3, 2, 0, 0),
            // stride-1 max pooling in two passes: YOLO's SPPF 5x5, windows larger than the map, 2x2 with a pad after, 7x7
            (20, 20, 5, 1, 2, 2), (7, 9, 5, 1, 2, 2), (3, 4, 5, 1, 2, 2), (16, 33, 2, 1, 0, 1), (9, 13, 7, 1, 3, 3),
        ]
        for level in levels() {
            _ = sq_set_cpu_level(level)
            for (h, w, k, s, pb, pe) in cases {
                let oh = (h + pb + pe - k) / s + 1, ow = (w + pb + pe - k) / s + 1
                let g = ConvGeometry(batch: 1, channels: 3, height: h, width: w, outChannels: 3, group: 1, kernelH: k, kernelW: k,
                                     strideH: s, strideW: s, dilationH: 1, dilationW: 1, padTop: pb, padLeft: pb, padBottom: pe, padRight: pe,
                                     outHeight: oh, outWidth: ow)
                let x = random(3 * h * w)
                for isMax in [true, false] {
                    var want = [Float](repeating: 0, count: 3 * oh * ow), got = want
                    x.withUnsafeBufferPointer { xp in
                        want.withUnsafeMutableBufferPointer { yp in
                            for p in 0..<3 {
                                Reference.pool(x: xp.baseAddress! + p * h * w, y: yp.baseAddress! + p * oh * ow, g, isMax: isMax, countIncludePad: false)
                            }
                        }
                    }
                    Fast.pool(x: x, y: &got, g, isMax: isMax, countIncludePad: false, planes: 0..<3)
                    assertClose(got, want, "level \(level) \(isMax ? "max" : "average") pool \(g)")
                    if isMax { XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "level \(level) max pool \(g)") }
                }
            }
        }
    }

    /// The columns past the last full tile (at AVX2 the last 1-4 go through columns_avx2, every panel at once)
    /// give the bits they give inside a full tile: the same product with B widened to whole tiles, compared on the
    /// first n columns. Rows in and past a group of panels, a partial last panel, a slice of rows starting past
    /// row 0, 24 rows or fewer (B read in place), several blocks of K, accumulation into C, bias and clamps; 4-row
    /// panels at AVX2 (16 and 40 rows); B too large for L2, taken columns outer and rows in blocks.
    func testTailColumnsEqualFullTiles() {
        defer { _ = sq_set_cpu_level(-1) }
        for level in levels() {
            _ = sq_set_cpu_level(level)
            for (m, n, k, m0) in [(320, 49, 600, 0), (53, 17, 40, 0), (100, 18, 300, 24), (20, 3, 257, 0), (67, 36, 31, 48), (6, 4, 9, 0),
                                  (13, 50, 520, 0), (150, 2, 70, 96), (40, 21, 5, 0), (30, 29, 100, 0), (8, 196, 96, 0),
                                  // B larger than BLOCK_FLOATS: columns outer, rows in blocks (200: two), in place (22, 16)
                                  (200, 148, 300, 0), (22, 290, 300, 0), (16, 147, 300, 0), (40, 516, 240, 24),
                                  // 14x14 maps: the last 4 columns with the panel's rows in the lanes (12-row panels)
                                  (36, 196, 300, 12)] {
                let wide = (n + 15) / 16 * 16
                let a = random(m * k), bw = random(k * wide), bias = random(m), c0 = random(m * wide)
                let b = (0..<k).flatMap { bw[($0 * wide)..<($0 * wide + n)] }
                var packed = [Float](repeating: 0, count: sq_packed_a_size(Int32(m), Int32(k)))
                sq_pack_a(Int32(m), Int32(k), a, Int32(k), &packed)
                for accumulate: Int32 in [0, 1] {
                    var want = c0, got = (0..<m).flatMap { c0[($0 * wide)..<($0 * wide + n)] }
                    sq_gemm_packed(Int32(m), Int32(wide), Int32(k), packed, bw, Int32(wide), &want, Int32(wide), Int32(m0), Int32(m), 0, Int32(wide), bias, -2.5, 3, accumulate)
                    sq_gemm_packed(Int32(m), Int32(n), Int32(k), packed, b, Int32(n), &got, Int32(n), Int32(m0), Int32(m), 0, Int32(n), bias, -2.5, 3, accumulate)
                    let cut = (0..<m).flatMap { want[($0 * wide)..<($0 * wide + n)] }
                    XCTAssertEqual(got.map(\.bitPattern), cut.map(\.bitPattern), "level \(level) \(m)x\(n)x\(k) rows from \(m0) accumulate \(accumulate)")
                }
            }
        }
    }

    /// A product with few columns, run with its vectors along the rows (sq_gemm_mt), gives the bits the 32-column
    /// tiles give: several blocks of K (the last partial), rows past a block of 32, tails of 1-6 columns, clamps.
    func testNarrowGemmEqualsTiledGemm() throws {
        guard sq_cpu_level() == 3 else { throw XCTSkip("sq_gemm_mt needs AVX-512") }
        // 70 and 160 rows (3 and 5 blocks of 32) split between 2 threads inside a block; 96 x 20 ends a thread within a block
        for (m, n, k) in [(40, 49, 300), (70, 49, 600), (33, 9, 20), (64, 25, 257), (320, 49, 960), (32, 1, 5), (45, 13, 70), (160, 49, 320), (96, 20, 33)] {
            XCTAssertTrue(Fast.narrow(n), "\(n) columns take the narrow path")
            let a = random(m * k), b = random(k * n), bias = random(m)
            let p = a.withUnsafeBufferPointer { PackedMatrix(rows: m, cols: k, data: $0.baseAddress!, ld: k) }
            var packed = [Float](repeating: 0, count: sq_packed_a_size(Int32(m), Int32(k))), want = [Float](repeating: 0, count: m * n)
            sq_pack_a(Int32(m), Int32(k), a, Int32(k), &packed)
            sq_gemm_packed(Int32(m), Int32(n), Int32(k), packed, b, Int32(n), &want, Int32(n), 0, Int32(m), 0, Int32(n), bias, -1.5, 2, 0)
            for threads in [1, 2] {
                var got = [Float](repeating: .nan, count: m * n)
                Fast.gemm(p, b: b, ldb: n, n: n, c: &got, ldc: n, bias: bias, lo: -1.5, hi: 2, threads: threads)
                XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(m)x\(n)x\(k) threads \(threads)")
            }
        }
    }

    /// A range given to `Fast.fetchAhead` is fetched by the narrow products as they run, one cache line per step of each
    /// tile's sums, on 1 and 2 threads, and changes none of their values; nil clears it.
    func testNarrowGemmFetchesAheadWithoutChangingValues() throws {
        guard sq_cpu_level() == 3 else { throw XCTSkip("sq_gemm_mt needs AVX-512") }
        defer { Fast.fetchAhead(nil) }
        let (m, n, k) = (64, 49, 300)   // 2 blocks of 32 rows x 7 tiles of 7 columns
        let a = random(m * k), b = random(k * n), bias = random(m)
        let p = a.withUnsafeBufferPointer { PackedMatrix(rows: m, cols: k, data: $0.baseAddress!, ld: k) }
        var want = [Float](repeating: 0, count: m * n)
        Fast.gemm(p, b: b, ldb: n, n: n, c: &want, ldc: n, bias: bias, lo: -1.5, hi: 2, threads: 1)
        let later = [UInt8](repeating: 1, count: 1 << 20)
        for threads in [1, 2] {
            var got = [Float](repeating: .nan, count: m * n)
            later.withUnsafeBytes { r in
                Fast.fetchAhead(r)
                XCTAssertEqual(Fast.fetchAheadPending, r.count)
                Fast.gemm(p, b: b, ldb: n, n: n, c: &got, ldc: n, bias: bias, lo: -1.5, hi: 2, threads: threads)
                XCTAssertEqual(Fast.fetchAheadPending, r.count - 14 * k * 64, "threads \(threads)")
            }
            XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "threads \(threads)")
        }
        Fast.fetchAhead(nil)
        XCTAssertEqual(Fast.fetchAheadPending, 0)
    }

    func testGemmAndGemvSweep() {
        defer { _ = sq_set_cpu_level(-1) }
        for level in levels() {
            _ = sq_set_cpu_level(level)
            for (m, n, k) in [(1, 1, 1), (12, 32, 256), (13, 33, 257), (5, 700, 3), (40, 129, 600), (100, 7, 31), (24, 1, 1000), (7, 1, 37), (576, 196, 96), (30, 100, 20), (16, 300, 32), (40, 49, 300), (9, 70, 5), (70, 49, 600), (33, 9, 20), (64, 25, 257), (32, 784, 40),
                              (200, 148, 300), (16, 147, 300)] {
                let a = random(m * k), b = random(k * n), bias = random(m)
                var want = [Float](repeating: 0, count: m * n), got = want
                Reference.gemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &want, ldc: n, rowBias: bias)
                let p = a.withUnsafeBufferPointer { PackedMatrix(rows: m, cols: k, data: $0.baseAddress!, ld: k) }
                for threads in [1, 2] {
                    Fast.gemm(p, b: b, ldb: n, n: n, c: &got, ldc: n, bias: bias, threads: threads)
                    assertClose(got, want, "level \(level) gemm \(m)x\(n)x\(k) threads \(threads)")
                    var plain = [Float](repeating: 0, count: m * n)
                    Fast.matmul(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &plain, ldc: n, scratch: Scratch(), threads: threads)
                    assertClose(plain.enumerated().map { $0.element + bias[$0.offset / n] }, want, "level \(level) matmul \(m)x\(n)x\(k)")
                }
                if n == 1 {
                    var y = [Float](repeating: 0, count: m)
                    Fast.gemv(rows: m, k: k, w: a, x: b, y: &y, bias: bias, threads: 2)
                    assertClose(y, want, "gemv \(m)x\(k)")
                }
            }
        }
    }
}

final class FixedPointMultiplierTests: XCTestCase {
    func testRepresentation() {
        let m = FixedPointMultiplier(0.75)
        XCTAssertEqual(m.mantissa, 0xC0_0000)
        XCTAssertEqual(m.shift, 24)
        XCTAssertEqual(FixedPointMultiplier(1).shift, 23)
        XCTAssertEqual(FixedPointMultiplier(0).apply(12345), 0)
        for real: Float in [1e-9, 0.000123, 0.3, 0.999999, 1.5, 37.25, Float.leastNormalMagnitude / 1024, .leastNonzeroMagnitude] {
            let m = FixedPointMultiplier(real)
            XCTAssertLessThan(m.mantissa, 1 << 24)
            XCTAssertEqual(m.float, real, "\(real) round trip")
        }
    }

    /// float32 round_half_even(float(v) · M), saturated to Int32: what the C kernels compute with float instructions.
    func float32Rule(_ v: Int32, _ m: Float) -> Int32 {
        let f = (Float(v) * m).rounded(.toNearestOrEven)
        return f >= 2_147_483_648 ? .max : f < -2_147_483_648 ? .min : Int32(f)
    }

    func testApplyIsTheFloat32RuleInIntegers() {
        var rng = SystemRandomNumberGenerator()
        var reals: [Float] = [0.5, 0.25, 1, 1.5, 3, 0.75 / 1024, Float.leastNormalMagnitude / 1024, 300, 2e6]
        reals += (0..<400).map { _ in Float(pow(2, Double.random(in: -30...4, using: &rng))) }
        for real in reals {
            let m = FixedPointMultiplier(real)
            // Small values (ties when M is a short power-of-two fraction), values beyond 2^24 (float(v) rounds) and the extremes.
            var vs: [Int32] = [0, 1, -1, 3, -3, 5, Int32.max, Int32.min, 16_777_217, -16_777_219, 33_554_435]
            vs += (0..<300).map { _ in Int32.random(in: -70_000...70_000, using: &rng) }
            vs += (0..<100).map { _ in Int32.random(in: .min ... .max, using: &rng) }
            for v in vs where m.apply(v) != float32Rule(v, real) {
                return XCTFail("\(v) × \(real): integer rule \(m.apply(v)), float32 \(float32Rule(v, real))")
            }
        }
        XCTAssertEqual([1, 3, 5, -1, -3].map { FixedPointMultiplier(0.5).apply($0) }, [0, 2, 2, 0, -2], "ties go to even")
    }

    /// The rule rounds twice (the product to float32, then to an integer), which a single exact rounding does not
    /// reproduce: find such a case and check the integer rule follows float32 there.
    func testDoubleRoundingIsReproduced() {
        let m = FixedPointMultiplier(Float(0.1))
        var found = 0
        for v in Int32(1)...Int32(3_000_000) {
            let exact = (Double(v) * Double(m.float)).rounded(.toNearestOrEven)   // exact product in Double, one rounding
            if Int32(exact) != float32Rule(v, m.float) {
                found += 1
                XCTAssertEqual(m.apply(v), float32Rule(v, m.float), "v \(v)")
            }
        }
        XCTAssertGreaterThan(found, 0, "no value where float32's double rounding differs from one exact rounding")
    }
}
