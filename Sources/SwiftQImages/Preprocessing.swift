import CImage
import Foundation

/// The order of a network's image input: channels first (NCHW, PyTorch, Caffe) or last (NHWC, Keras/TensorFlow).
public enum ImageLayout: String, Sendable, Codable, CaseIterable {
    case nchw, nhwc
}

/// How an image is brought to the network's input size.
public enum ResizeMode: String, Sendable, Codable, CaseIterable {
    /// Shorter side to `resize`, then the center `size` x `width` (ImageNet classifiers).
    case crop
    /// Straight to `size` x `width`, the aspect ratio not kept.
    case squash
    /// Fit inside `size` x `width` keeping the aspect ratio, the rest padded with `padValue` around the center (YOLO).
    case letterbox
    /// Shorter side to `size`, both sides rounded to a multiple of 32, no crop: each image its own input size
    /// (text detectors with dynamic height and width).
    case fit32
}

/// How images become a network's input: resize (by `resizeMode`), normalize, NCHW (or NHWC) float with 3
/// channels (or 1, grey).
public struct Preprocessing: Sendable, Equatable, Codable {
    /// Shorter side after resizing (pixels).
    public var resize: Int
    /// Side of the square center crop (its height when `width` is set).
    public var size: Int
    /// Width of a non-square crop (text-line models: 48 x 192); nil for a square crop.
    public var width: Int?
    /// Channel order BGR instead of RGB.
    public var bgr: Bool
    /// value = (pixel / divisor − mean[c]) / std[c], per channel in the output order (a divisor, not a
    /// multiplier, so `torch`'s /255 rounds exactly as numpy's does).
    public var divisor: Float
    public var mean: [Float]
    public var std: [Float]
    /// NHWC instead of NCHW (nil: NCHW, as models before this field).
    public var layout: ImageLayout?
    /// 1 for a grey input (luma as Pillow's convert('L') computes it), nil or 3 for colour.
    public var channels: Int?

    /// nil: `crop`.
    public var resizeMode: ResizeMode?
    /// Letterbox padding, as a 0-255 pixel value before normalization (nil: 114, as YOLO pads).
    public var padValue: Float?

    public var isNHWC: Bool { layout == .nhwc }
    public var mode: ResizeMode { resizeMode ?? .crop }
    public var channelCount: Int { channels == 1 ? 1 : 3 }

    /// The input tensor's shape for one image (for `fit32`, that of a square image).
    public var inputShape: [Int] { shape(height: size, width: width ?? size) }

    func shape(height h: Int, width w: Int) -> [Int] { isNHWC ? [1, h, w, channelCount] : [1, channelCount, h, w] }

    /// For an image of `width` x `height`: the size it is resized to, the size of the input, and where the resized
    /// image's top-left corner lands in the input (negative: cropped).
    public func geometry(width: Int, height: Int) -> (resized: (w: Int, h: Int), input: (w: Int, h: Int), origin: (x: Int, y: Int)) {
        let cw = self.width ?? size
        switch mode {
        case .crop:
            let (rw, rh) = resizedSize(width: width, height: height)
            return ((Int(rw), Int(rh)), (cw, size), (-((Int(rw) - cw) / 2), -((Int(rh) - size) / 2)))
        case .squash:
            return ((cw, size), (cw, size), (0, 0))
        case .letterbox:
            let s = min(Double(cw) / Double(width), Double(size) / Double(height))
            let rw = max(1, min(cw, Int((Double(width) * s).rounded()))), rh = max(1, min(size, Int((Double(height) * s).rounded())))
            return ((rw, rh), (cw, size), ((cw - rw) / 2, (size - rh) / 2))
        case .fit32:
            let s = Double(size) / Double(min(width, height))
            func round32(_ v: Double) -> Int { max(32, Int((v / 32).rounded()) * 32) }
            let (w, h) = (round32(Double(width) * s), round32(Double(height) * s))
            return ((w, h), (w, h), (0, 0))
        }
    }

    public init(size: Int = 224, resize: Int? = nil, bgr: Bool = false, divisor: Float = 1, mean: [Float] = [0, 0, 0], std: [Float] = [1, 1, 1]) {
        self.size = size
        self.resize = resize ?? Int((Double(size) / 0.875).rounded())
        self.bgr = bgr
        self.divisor = divisor
        self.mean = mean
        self.std = std
    }

    /// The named normalizations: `torch`, `caffe`, `inception`, `effnet-lite`.
    public static let presetNames = ["torch", "caffe", "inception", "effnet-lite"]

    public static func preset(_ name: String, size: Int = 224, resize: Int? = nil) -> Preprocessing? {
        switch name {
        case "torch": Preprocessing(size: size, resize: resize, divisor: 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
        case "caffe": Preprocessing(size: size, resize: resize, bgr: true, mean: [104, 117, 123])
        case "inception": Preprocessing(size: size, resize: resize, mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5])
        case "effnet-lite": Preprocessing(size: size, resize: resize, mean: [127, 127, 127], std: [128, 128, 128])
        default: nil
        }
    }

    /// The size an image of `width` x `height` is resized to before the crop: like PIL, shorter side to
    /// `resize`, the other side rounded half to even, never below the crop; a non-square crop scales up
    /// further until it fits. Computed in floating point, so an absurd aspect ratio cannot overflow.
    public func resizedSize(width: Int, height: Int) -> (width: Double, height: Double) {
        let cw = Double(self.width ?? size)
        var s = Double(resize) / Double(min(width, height))
        if self.width != nil { s = max(s, cw / Double(width), Double(size) / Double(height)) }
        return (max(cw, (Double(width) * s).rounded(.toNearestOrEven)), max(Double(size), (Double(height) * s).rounded(.toNearestOrEven)))
    }

    /// The input for an image file (pixels in the input's order), refused (with the file named) when decoding it or
    /// resizing it would take more than `limits.maxPixels` pixels: a 1 x 100000 strip would be resized to 256 x
    /// 25.6 million.
    public func tensor(contentsOf path: String, limits: ImageLimits = ImageLimits()) throws -> [Float] {
        try input(contentsOf: path, limits: limits).pixels
    }

    /// The input for an image file and its shape (which varies from image to image with `fit32`).
    public func input(contentsOf path: String, limits: ImageLimits = ImageLimits()) throws -> (pixels: [Float], shape: [Int]) {
        let image = try RGBImage(contentsOf: path, limits: limits)
        let g = geometry(width: image.width, height: image.height)
        guard Double(g.resized.w) * Double(g.resized.h) <= Double(limits.maxPixels), Double(g.input.w) * Double(g.input.h) <= Double(limits.maxPixels) else {
            throw ImageError(path: path, reason: String(format: "resizing its %dx%d pixels to %dx%d would exceed the limit of %d pixels",
                                                        image.width, image.height, g.resized.w, g.resized.h, limits.maxPixels))
        }
        return (tensor(image, placed: g), shape(height: g.input.h, width: g.input.w))
    }

    /// The input for an image: resized and placed by `geometry` (cropped, squashed, letterboxed or fitted), normalized;
    /// channels first or last by `layout`; grey (`channels` 1) is Pillow's luma L = (19595 R + 38470 G + 7471 B + 2¹⁵)
    /// >> 16 of the placed pixels, normalized with the first mean and std.
    public func tensor(_ image: RGBImage) -> [Float] { tensor(image, placed: geometry(width: image.width, height: image.height)) }

    func tensor(_ image: RGBImage, placed g: (resized: (w: Int, h: Int), input: (w: Int, h: Int), origin: (x: Int, y: Int))) -> [Float] {
        let (iw, ih) = g.input
        let plane = iw * ih, channels = channelCount, nhwc = isNHWC
        let pad = padValue ?? 114
        if channels == 3, g.origin.x <= 0, g.origin.y <= 0, g.resized.w + g.origin.x >= iw, g.resized.h + g.origin.y >= ih {
            // Every input pixel lies in the resized image (a centre crop or a plain resize): only the part the input
            // shows is resized, then one lookup per element in the table of normalized byte values (the same floats
            // as the general loop below).
            let part = image.resizedBilinear(width: g.resized.w, height: g.resized.h, region: -g.origin.x, -g.origin.y, iw, ih)
            let table = byteTable
            return [Float](unsafeUninitializedCapacity: channels * plane) { o, count in
                sq_rgb_to_input(part.pixels, plane, table, bgr ? 1 : 0, nhwc ? 1 : 0, o.baseAddress!)
                count = channels * plane
            }
        }
        var out = [Float](repeating: 0, count: channels * plane)
        let resized = image.resizedBilinear(width: g.resized.w, height: g.resized.h)
        let p = resized.pixels
        for y in 0..<ih {
            for x in 0..<iw {
                let rx = x - g.origin.x, ry = y - g.origin.y, i = y * iw + x
                let inside = rx >= 0 && ry >= 0 && rx < g.resized.w && ry < g.resized.h, k = (ry * g.resized.w + rx) * 3
                for c in 0..<channels {
                    let v: Float = !inside ? pad
                        : Float(channels == 1 ? (19595 * Int(p[k]) + 38470 * Int(p[k + 1]) + 7471 * Int(p[k + 2]) + 0x8000) >> 16 : Int(p[k + (bgr ? 2 - c : c)]))
                    out[nhwc ? i * channels + c : c * plane + i] = normalized(v, channel: c)
                }
            }
        }
        return out
    }

    /// A pixel value (0–255, or the letterbox padding) as the network input holds it in channel `c`.
    @inline(__always)
    func normalized(_ v: Float, channel c: Int) -> Float { ((divisor == 1 ? v : v / divisor) - mean[c]) / std[c] }

    /// An input `tensor` made by this preprocessing (of `count` elements, NCHW or NHWC by `layout`) as one byte per
    /// element, the pixel value it came from; nil when some element is not the image of a byte (fractional
    /// letterbox padding, or an input made otherwise). `fromBytes` gives back the very same floats: 4x less memory
    /// for inputs held for many evaluations.
    public func bytes(of tensor: [Float]) -> [UInt8]? {
        let channels = channelCount, plane = tensor.count / channels
        guard plane * channels == tensor.count else { return nil }
        let table = byteTable
        let codes: [[UInt32: UInt8]] = (0..<channels).map { c in
            var d: [UInt32: UInt8] = [:]
            for v in 0...255 where d[table[c * 256 + v].bitPattern] == nil { d[table[c * 256 + v].bitPattern] = UInt8(v) }
            return d
        }
        var out = [UInt8](repeating: 0, count: tensor.count)
        for (i, x) in tensor.enumerated() {
            guard let b = codes[isNHWC ? i % channels : i / plane][x.bitPattern] else { return nil }
            out[i] = b
        }
        return out
    }

    /// The float each byte value stands for, 256 per channel, channel after channel (for `floats(fromBytes:)`).
    public var byteTable: [Float] { (0..<channelCount).flatMap { c in (0...255).map { normalized(Float($0), channel: c) } } }

    /// The floats of an input stored by `bytes(of:)`, written to `out`; `table` is `byteTable`.
    public func floats(fromBytes bytes: UnsafeBufferPointer<UInt8>, table: UnsafeBufferPointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let channels = channelCount, plane = bytes.count / channels
        if isNHWC {
            for i in 0..<bytes.count { out[i] = table[(i % channels) * 256 + Int(bytes[i])] }
        } else {
            for c in 0..<channels {
                let lut = table.baseAddress! + c * 256
                for i in (c * plane)..<((c + 1) * plane) { out[i] = lut[Int(bytes[i])] }
            }
        }
    }

    /// The floats of an input stored by `bytes(of:)`.
    public func floats(fromBytes bytes: [UInt8]) -> [Float] {
        let table = byteTable
        return [Float](unsafeUninitializedCapacity: bytes.count) { out, n in
            bytes.withUnsafeBufferPointer { b in table.withUnsafeBufferPointer { floats(fromBytes: b, table: $0, into: out.baseAddress!) } }
            n = bytes.count
        }
    }
}
