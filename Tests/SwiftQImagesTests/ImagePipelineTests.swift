import CImage
import Foundation
import SwiftQImages
import TestSupport
import XCTest

/// Decoding, resizing and preprocessing against Pillow's own results (Fixtures/images, made by generate.py).
final class ImagePipelineTests: XCTestCase {
    let dir = Paths.fixture("images")

    func expected() throws -> [String: [String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/images.expected.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: [String: Any]]
    }

    func bytes(_ e: [String: Any], _ key: String) -> [UInt8] { Array(Data(base64Encoded: e[key] as! String)!) }

    func testDecodeAndResizeEqualPillowByteForByte() throws {
        for (rel, e) in try expected() {
            let img = try RGBImage(contentsOf: "\(dir)/\(rel)")
            XCTAssertEqual([img.width, img.height], e["size"] as? [Int], rel)
            XCTAssertEqual(img.pixels, bytes(e, "decoded"), "\(rel): decoded pixels differ from Pillow's")
            XCTAssertEqual(img.resizedBilinear(width: 31, height: 17).pixels, bytes(e, "resized_31x17"), "\(rel): shrink differs from Pillow's")
            XCTAssertEqual(img.resizedBilinear(width: 97, height: 61).pixels, bytes(e, "resized_97x61"), "\(rel): enlargement differs from Pillow's")
        }
    }

    /// Every PNG and JPEG kind decodes to Pillow's `convert('RGB')` bytes; what Pillow refuses, swiftq refuses.
    func testEveryImageKindDecodesAsPillowDoes() throws {
        let kinds = Paths.fixture("image-kinds")
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(kinds)/expected.json"))
        let expected = try JSONSerialization.jsonObject(with: data) as! [String: [String: Any]]
        XCTAssertGreaterThanOrEqual(expected.count, 25)
        for (name, e) in expected.sorted(by: { $0.key < $1.key }) {
            let path = "\(kinds)/\(name)"
            if e["refused"] != nil {
                XCTAssertThrowsError(try RGBImage(contentsOf: path), "\(name): Pillow refuses it") { XCTAssertEqual(($0 as? ImageError)?.path, path) }
                continue
            }
            let img = try RGBImage(contentsOf: path)
            XCTAssertEqual([img.width, img.height], e["size"] as? [Int], name)
            XCTAssertEqual(img.pixels, bytes(e, "rgb"), "\(name): decoded pixels differ from Pillow's")
        }
    }

    func testPixelLimitIsCheckedFromTheHeader() throws {
        let path = "\(dir)/a/noisy.png"  // 41 x 29 = 1189 pixels
        XCTAssertNoThrow(try RGBImage(contentsOf: path, limits: ImageLimits(maxPixels: 1189)))
        XCTAssertThrowsError(try RGBImage(contentsOf: path, limits: ImageLimits(maxPixels: 1188))) {
            XCTAssertTrue("\($0)".contains("over the limit of 1188 pixels"), "\($0)")
        }
        XCTAssertThrowsError(try RGBImage(contentsOf: "\(dir)/a/smooth.jpg", limits: ImageLimits(maxPixels: 100)))
        // A 1 x 400 strip: decoding is cheap, resizing its short side to 18 is not (18 x 7200).
        let strip = RGBImage(width: 1, height: 400, pixels: [UInt8](repeating: 9, count: 1200))
        let p = Preprocessing.preset("torch", size: 16, resize: 18)!
        XCTAssertEqual(p.resizedSize(width: strip.width, height: strip.height).height, 7200)
        // Enlarging noisy.png (41 x 29) to a short side of 100 gives 141 x 100 pixels: the resize is refused
        // one pixel under that, with the file named, and allowed at it.
        let up = Preprocessing.preset("torch", size: 16, resize: 100)!
        let path2 = "\(dir)/a/noisy.png"
        XCTAssertThrowsError(try up.tensor(contentsOf: path2, limits: ImageLimits(maxPixels: 14099))) {
            XCTAssertEqual(($0 as? ImageError)?.path, path2)
            XCTAssertTrue("\($0)".contains("resizing its 41x29 pixels to 141x100 would exceed the limit of 14099 pixels"), "\($0)")
        }
        XCTAssertEqual(try up.tensor(contentsOf: path2, limits: ImageLimits(maxPixels: 14100)), up.tensor(try RGBImage(contentsOf: path2)))
    }

    /// The vertical pass (AVX2 where the CPU has it) equals its portable twin byte for byte: rows of 1 to 100 bytes
    /// (tails of the 32-byte steps), 1 to 9 taps, coefficients of both signs and large enough that sums leave 0...255
    /// both ways (a gain of at most 1.8, so that no sum leaves Int32).
    func testVerticalPassEqualsThePortableOne() {
        var rng = SeededRandom(seed: 7)
        var clipped = Set<UInt8>()
        for stride in [1, 3, 31, 32, 33, 64, 95, 100] {
            for taps in [1, 2, 5, 9] {
                let inRows = taps + 6, outRows = 7, bits: Int32 = 22
                let src = (0..<(inRows * stride)).map { _ in UInt8(truncatingIfNeeded: Int(rng.floats(1, 0, 256)[0])) }
                var bounds: [Int] = [], kk: [Int32] = []
                for y in 0..<outRows {
                    bounds += [y % (inRows - taps + 1), taps]
                    // Gains of up to 1.8 in all (sums stay inside Int32 as Pillow's do), some taps negative.
                    kk += rng.floats(taps, -0.5, 1).map { Int32($0 * 1.8 / Float(taps) * Float(1 << bits)) }
                }
                var want = [UInt8](repeating: 0, count: outRows * stride), got = want, acc = [Int32](repeating: 0, count: stride)
                sq_resample_v_portable(src, Int32(stride), Int32(outRows), bounds, kk, Int32(taps), bits, &acc, &want)
                sq_resample_v(src, Int32(stride), Int32(outRows), bounds, kk, Int32(taps), bits, &acc, &got)
                XCTAssertEqual(got, want, "stride \(stride), \(taps) taps")
                clipped.formUnion(want.filter { $0 == 0 || $0 == 255 })
            }
        }
        XCTAssertEqual(clipped, [0, 255], "sums clipped both ways")
    }

    func testPreprocessingEqualsTheReference() throws {
        let p = Preprocessing.preset("torch", size: 16, resize: 18)!
        for (rel, e) in try expected() {
            let got = p.tensor(try RGBImage(contentsOf: "\(dir)/\(rel)"))
            let want = (e["torch_16_18"] as! [NSNumber]).map { Float(truncating: $0) }
            XCTAssertEqual(got.count, want.count)
            for i in 0..<want.count where abs(got[i] - want[i]) > 1e-6 {
                return XCTFail("\(rel)[\(i)]: \(got[i]) vs reference \(want[i])")
            }
        }
    }

    /// The centre-crop path (one table lookup per value) against the pixels themselves: with mean 0 and std 1 each
    /// value is its byte; BGR swaps the channels; NHWC interleaves them.
    func testCropValuesAreThePixelBytes() {
        let pixels = (0..<40 * 30 * 3).map { UInt8(($0 * 7) % 256) }
        let image = RGBImage(width: 40, height: 30, pixels: pixels)
        let p = Preprocessing(size: 16, resize: 20)
        let g = p.geometry(width: 40, height: 30)
        let resized = image.resizedBilinear(width: g.resized.w, height: g.resized.h)
        let x0 = -g.origin.x, y0 = -g.origin.y
        XCTAssertGreaterThan(x0, 0, "a crop that cuts columns")
        func byte(_ c: Int, _ y: Int, _ x: Int) -> Float {
            let k = ((y + y0) * resized.width + x + x0) * 3 + c
            return Float(resized.pixels[k])
        }
        let rgb = p.tensor(image)
        var bgrPrep = p
        bgrPrep.bgr = true
        let bgr = bgrPrep.tensor(image)
        var nhwcPrep = p
        nhwcPrep.layout = .nhwc
        let nhwc = nhwcPrep.tensor(image)
        for c in 0..<3 { for y in 0..<16 { for x in 0..<16 {
            let i = y * 16 + x
            XCTAssertEqual(rgb[c * 256 + i], byte(c, y, x), "RGB c\(c) y\(y) x\(x)")
            XCTAssertEqual(bgr[c * 256 + i], byte(2 - c, y, x), "BGR c\(c) y\(y) x\(x)")
            XCTAssertEqual(nhwc[i * 3 + c], byte(c, y, x), "NHWC c\(c) y\(y) x\(x)")
        } } }
    }

    func testNonSquareCropCoversTheWholeCrop() {
        // A 40x30 image into a 6x24 crop (text-line shape): scaled until 24 columns fit, then center-cropped.
        let pixels = (0..<40 * 30 * 3).map { UInt8($0 % 251) }
        var p = Preprocessing(size: 6, resize: 7)
        p.width = 24
        let t = p.tensor(RGBImage(width: 40, height: 30, pixels: pixels))
        XCTAssertEqual(t.count, 3 * 6 * 24)
        XCTAssertTrue(t.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 255 })
        // The square form is unchanged by the new field.
        XCTAssertEqual(Preprocessing(size: 6, resize: 7).tensor(RGBImage(width: 40, height: 30, pixels: pixels)).count, 3 * 36)
    }

    func testBadImagesGiveErrorsNamingTheFile() throws {
        let tmp = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(tmp)/text.jpg"))
        try Data().write(to: URL(fileURLWithPath: "\(tmp)/empty.png"))
        let png = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/a/noisy.png"))
        try png.prefix(png.count / 2).write(to: URL(fileURLWithPath: "\(tmp)/cut.png"))
        for path in ["\(dir)/b/corrupt.jpg", "\(tmp)/text.jpg", "\(tmp)/empty.png", "\(tmp)/cut.png", "\(tmp)/missing.jpg"] {
            XCTAssertThrowsError(try RGBImage(contentsOf: path)) { XCTAssertEqual(($0 as? ImageError)?.path, path) }
        }
    }

    func testDatasetFromClassFoldersAndFromLabels() throws {
        let d = try Dataset(root: dir)
        XCTAssertEqual(d.items.map(\.path), ["a/noisy.png", "a/smooth.jpg", "b/corrupt.jpg", "b/gray.jpg", "b/small.jpg"])
        XCTAssertEqual(d.items.map(\.label), [0, 0, 1, 1, 1])
        let tmp = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try "zzz\nb\na\n".write(toFile: "\(tmp)/classes.txt", atomically: true, encoding: .utf8)
        XCTAssertEqual(try Dataset(root: dir, classes: "\(tmp)/classes.txt").items.map(\.label), [2, 2, 1, 1, 1])
        try "# comment\na/smooth.jpg 7\nb/gray.jpg 3\n".write(toFile: "\(tmp)/labels.txt", atomically: true, encoding: .utf8)
        XCTAssertEqual(try Dataset(root: dir, labels: "\(tmp)/labels.txt").items, [.init(path: "a/smooth.jpg", label: 7), .init(path: "b/gray.jpg", label: 3)])
        try "a/smooth.jpg seven\n".write(toFile: "\(tmp)/bad.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Dataset(root: dir, labels: "\(tmp)/bad.txt"))
    }

    func testPrefetcherKeepsOrderAndReportsFailures() {
        let paths = (0..<20).map { "p\($0)" }
        let f = Prefetcher(paths: paths, depth: 3) { p in
            if p == "p7" { throw ImageError(path: p, reason: "broken") }
            return ([Float(p.dropFirst())!], [1])
        }
        for i in 0..<20 {
            switch f.take(i) {
            case .tensor(let t, let shape): XCTAssertEqual(t, [Float(i)]); XCTAssertEqual(shape, [1])
            case .failed(let m): XCTAssertEqual(i, 7); XCTAssertTrue(m.contains("broken"))
            }
        }
    }

    /// A part of a bilinear resize computed alone equals the whole resize cropped, byte for byte: shrinking and
    /// growing either side, parts at the edges and in the middle, one row or column, the whole.
    func testResizedPartEqualsTheWholeResizeCropped() {
        var rng = SystemRandomNumberGenerator()
        for (w, h, ow, oh) in [(57, 41, 30, 23), (40, 64, 29, 80), (33, 29, 70, 50), (20, 50, 45, 18), (64, 48, 64, 31), (31, 17, 31, 17)] {
            let image = RGBImage(width: w, height: h, pixels: (0..<(w * h * 3)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            let whole = image.resizedBilinear(width: ow, height: oh)
            for (x, y, pw, ph) in [(0, 0, ow, oh), (0, 0, 1, 1), (ow - 7, oh - 5, 7, 5), (ow / 3, oh / 4, ow / 2, oh / 2), (2, oh / 2, ow - 4, 1)] where pw > 0 && ph > 0 {
                let part = image.resizedBilinear(width: ow, height: oh, region: x, y, pw, ph)
                XCTAssertEqual(part.pixels, whole.cropped(x, y, pw, ph).pixels, "\(w)x\(h) -> \(ow)x\(oh), part \(x),\(y) \(pw)x\(ph)")
            }
        }
    }

    /// Several workers, each item a different time: the consumer still takes items 0, 1, 2, … each once, and no
    /// more than `depth` items are ever started ahead of it.
    func testOrderedWorkersKeepOrderAndDepth() {
        final class Counts: @unchecked Sendable {
            let lock = NSLock()
            var started = 0, taken = 0, furthest = 0
        }
        let counts = Counts()
        let jobs = OrderedWorkers<Int>(count: 40, workers: 3, depth: 4) { _, i in
            counts.lock.lock(); counts.started += 1; counts.furthest = max(counts.furthest, counts.started - counts.taken); counts.lock.unlock()
            Thread.sleep(forTimeInterval: Double((i * 7) % 5) / 1000)
            return i * i
        }
        for i in 0..<40 {
            XCTAssertEqual(jobs.take(i), i * i)
            counts.lock.lock(); counts.taken += 1; counts.lock.unlock()
        }
        XCTAssertEqual(counts.started, 40)
        XCTAssertLessThanOrEqual(counts.furthest, 4 + 1)
    }

    /// The prefetcher's clocks: the time spent preparing images (at least the 4 x 5 ms the preparation sleeps), and the
    /// time the consumer waited for one (some: it asks for the first image as soon as the prefetcher starts, and never
    /// more than it took to prepare them all).
    func testPrefetcherTimesPreparingAndWaiting() {
        let f = Prefetcher(paths: ["a", "b", "c", "d"], depth: 2) { _ in
            Thread.sleep(forTimeInterval: 0.005)
            return ([0], [1])
        }
        for i in 0..<4 { _ = f.take(i) }
        let (preparing, waiting) = f.seconds
        XCTAssertGreaterThanOrEqual(preparing, 0.02)
        XCTAssertGreaterThan(waiting, 0)
        XCTAssertLessThanOrEqual(waiting, preparing + 0.05)
    }

    /// Inputs held as the bytes their pixels were (the accuracy budget's evaluation images) come back as the very
    /// same floats, for every preset, BGR, grey, NHWC and letterbox padding; an input that is not the image of
    /// bytes (fractional padding, or other floats) is refused, not approximated.
    func testInputsStoredAsBytesComeBackExactly() {
        var rng = SystemRandomNumberGenerator()
        let image = RGBImage(width: 37, height: 23, pixels: (0..<(37 * 23 * 3)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        var variants = Preprocessing.presetNames.map { Preprocessing.preset($0, size: 16)! }
        var grey = Preprocessing.preset("torch", size: 16)!
        grey.channels = 1
        var nhwc = Preprocessing.preset("effnet-lite", size: 16)!
        nhwc.layout = .nhwc
        var letterbox = Preprocessing.preset("inception", size: 16)!
        letterbox.resizeMode = .letterbox
        letterbox.padValue = 114
        variants += [grey, nhwc, letterbox]
        for p in variants {
            let x = p.tensor(image)
            guard let b = p.bytes(of: x) else { return XCTFail("\(p): not stored as bytes") }
            XCTAssertEqual(b.count, x.count)
            XCTAssertEqual(p.floats(fromBytes: b).map(\.bitPattern), x.map(\.bitPattern), "\(p)")
        }
        letterbox.padValue = 114.5
        XCTAssertNil(letterbox.bytes(of: letterbox.tensor(image)), "padding between two byte values")
        var other = variants[0].tensor(image)
        other[5] += 1e-3
        XCTAssertNil(variants[0].bytes(of: other))
    }
}
