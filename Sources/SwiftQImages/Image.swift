import CImage
import SwiftQCore
import Foundation

/// An 8-bit RGB image, rows of `width * 3` bytes.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3)
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

public struct ImageError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
}

/// Bounds on the memory one image may take, checked before it is allocated.
public struct ImageLimits: Sendable, Equatable {
    /// Pillow's own threshold (`Image.MAX_IMAGE_PIXELS`, its decompression-bomb warning): about 89.5
    /// megapixels, 256 MiB of RGB. Real photographs and every CNN input are far below it.
    public static let defaultMaxPixels = 89_478_485

    /// The most pixels a decoded image (read from its header, before decoding) and its resized copy may have.
    public var maxPixels: Int

    public init(maxPixels: Int = ImageLimits.defaultMaxPixels) { self.maxPixels = maxPixels }
}

extension RGBImage {
    /// Decodes a JPEG or PNG file to the RGB bytes Pillow's `Image.open(path).convert('RGB')` gives (grey,
    /// palette and 16-bit images become 8-bit RGB; alpha is dropped). A file whose header declares more
    /// than `limits.maxPixels` pixels is refused before its pixels are allocated.
    public init(contentsOf path: String, limits: ImageLimits = ImageLimits()) throws {
        let data: Data
        do {
            // A compressed image is smaller than its pixels; past 3 bytes a pixel plus slack it is not an image we take.
            data = try FileBytes.read(path, maxBytes: max(1 << 20, limits.maxPixels) * 4)
        } catch {
            throw ImageError(path: path, reason: "cannot read the file: \(error)")
        }
        try self.init(encoded: data, path: path, limits: limits)
    }

    /// Decodes a JPEG or PNG held in memory (`path` only names it in errors).
    public init(encoded data: Data, path: String = "<memory>", limits: ImageLimits = ImageLimits()) throws {
        var w: Int32 = 0, h: Int32 = 0
        var err = [CChar](repeating: 0, count: 256)
        let rgb = data.withUnsafeBytes { b in
            sq_decode_rgb(b.baseAddress?.assumingMemoryBound(to: UInt8.self), b.count, UInt64(max(0, limits.maxPixels)), &w, &h, &err, err.count)
        }
        guard let rgb else {
            throw ImageError(path: path, reason: err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        defer { free(rgb) }
        self.init(width: Int(w), height: Int(h), pixels: Array(UnsafeBufferPointer(start: rgb, count: Int(w) * Int(h) * 3)))
    }

    /// Resizes with Pillow's `Image.resize(..., BILINEAR)`: a triangle filter widened by the scale factor when
    /// shrinking, two passes (horizontal, then vertical) in 22-bit fixed point, each rounded to 8 bits.
    /// The result equals Pillow's byte for byte.
    /// Pillow (13) runs the vertical pass first when the width grows and the height shrinks.
    public func resizedBilinear(width outW: Int, height outH: Int) -> RGBImage {
        if outW > width && outH < height { return resizedVertically(outH).resizedHorizontally(outW) }
        return resizedHorizontally(outW).resizedVertically(outH)
    }

    /// The part `x ..< x + w`, `y ..< y + h` of `resizedBilinear(width: outW, height: outH)`, computed alone: each
    /// resized pixel depends only on its own window of the image (and the horizontal pass's pixels on theirs), so
    /// the bytes are those of the whole resize, cropped, for the work of the part (a 256-pixel resize cropped to
    /// 224 leaves out a quarter to a half of it).
    public func resizedBilinear(width outW: Int, height outH: Int, region x: Int, _ y: Int, _ w: Int, _ h: Int) -> RGBImage {
        guard outW != width, outH != height, !(outW > width && outH < height), x >= 0, y >= 0, w > 0, h > 0, x + w <= outW, y + h <= outH else {
            return resizedBilinear(width: outW, height: outH).cropped(x, y, w, h)
        }
        let (hb, hk, hsize) = Self.coefficients(inSize: width, outSize: outW)
        var (vb, vk, vsize) = Self.coefficients(inSize: height, outSize: outH)
        // The image rows the output rows y ..< y + h read.
        let r0 = (y..<(y + h)).map { vb[2 * $0] }.min()!, r1 = (y..<(y + h)).map { vb[2 * $0] + vb[2 * $0 + 1] }.max()!
        for row in y..<(y + h) { vb[2 * row] -= r0 }
        var mid = [UInt8](repeating: 0, count: w * (r1 - r0) * 3)
        pixels.withUnsafeBufferPointer { src in
            hb.withUnsafeBufferPointer { b in
                hk.withUnsafeBufferPointer { k in
                    sq_resample_h_rgb(src.baseAddress! + r0 * width * 3, Int32(width), Int32(r1 - r0), Int32(w), b.baseAddress! + 2 * x,
                                      k.baseAddress! + x * hsize, Int32(hsize), Self.precisionBits, &mid)
                }
            }
        }
        var out = [UInt8](repeating: 0, count: w * h * 3)
        var acc = [Int32](repeating: 0, count: w * 3)
        vb.withUnsafeBufferPointer { b in
            vk.withUnsafeBufferPointer { k in
                sq_resample_v(mid, Int32(w * 3), Int32(h), b.baseAddress! + 2 * y, k.baseAddress! + y * vsize, Int32(vsize), Self.precisionBits, &acc, &out)
            }
        }
        return RGBImage(width: w, height: h, pixels: out)
    }

    /// The part `x ..< x + w`, `y ..< y + h`.
    public func cropped(_ x: Int, _ y: Int, _ w: Int, _ h: Int) -> RGBImage {
        if x == 0 && y == 0 && w == width && h == height { return self }
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for row in 0..<h {
            let s = ((y + row) * width + x) * 3
            out[(row * w * 3)..<((row + 1) * w * 3)] = pixels[s..<(s + w * 3)]
        }
        return RGBImage(width: w, height: h, pixels: out)
    }

    func resizedHorizontally(_ outW: Int) -> RGBImage {
        let img = self
        if outW != width {
            let (bounds, kk, ksize) = Self.coefficients(inSize: width, outSize: outW)
            var out = [UInt8](repeating: 0, count: outW * height * 3)
            sq_resample_h_rgb(img.pixels, Int32(width), Int32(height), Int32(outW), bounds, kk, Int32(ksize), Self.precisionBits, &out)
            return RGBImage(width: outW, height: height, pixels: out)
        }
        return img
    }

    func resizedVertically(_ outH: Int) -> RGBImage {
        let img = self
        let outW = width
        if outH != height {
            let (bounds, kk, ksize) = Self.coefficients(inSize: height, outSize: outH)
            var out = [UInt8](repeating: 0, count: outW * outH * 3)
            var acc = [Int32](repeating: 0, count: outW * 3)
            sq_resample_v(img.pixels, Int32(outW * 3), Int32(outH), bounds, kk, Int32(ksize), Self.precisionBits, &acc, &out)
            return RGBImage(width: outW, height: outH, pixels: out)
        }
        return img
    }

    static let precisionBits: Int32 = 32 - 8 - 2

    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear filter (support 1).
    static func coefficients(inSize: Int, outSize: Int) -> (bounds: [Int], kk: [Int32], ksize: Int) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 1.0 * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds = [Int](repeating: 0, count: outSize * 2)
        var kk = [Int32](repeating: 0, count: outSize * ksize)
        var w = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1.0 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var ww = 0.0
            for x in 0..<ksize { w[x] = 0 }
            for x in 0..<max(0, xmax) {
                let t = abs((Double(x + xmin) - center + 0.5) * ss)
                w[x] = t < 1 ? 1 - t : 0
                ww += w[x]
            }
            for x in 0..<ksize {
                let v = ww != 0 && x < xmax ? w[x] / ww : w[x]
                let scaled = v * Double(1 << precisionBits)
                kk[xx * ksize + x] = Int32(v < 0 ? -0.5 + scaled : 0.5 + scaled)
            }
            bounds[2 * xx] = xmin
            bounds[2 * xx + 1] = max(0, xmax)
        }
        return (bounds, kk, ksize)
    }
}
