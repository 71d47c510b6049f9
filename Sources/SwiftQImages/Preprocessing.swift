import Foundation

/// The order of a network's image input: channels first (NCHW, PyTorch, Caffe) or last (NHWC, Keras/TensorFlow).
public enum ImageLayout: String, Sendable, Codable, CaseIterable {
    case nchw, nhwc
}

/// How images become a network's input: resize the shorter side, center-crop, normalize, NCHW (or NHWC) float
/// with 3 channels (or 1, grey).
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

    public var isNHWC: Bool { layout == .nhwc }
    public var channelCount: Int { channels == 1 ? 1 : 3 }

    /// The input tensor's shape for one image.
    public var inputShape: [Int] {
        let (h, w, c) = (size, width ?? size, channelCount)
        return isNHWC ? [1, h, w, c] : [1, c, h, w]
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

    /// The input for an image file, refused (with the file named) when decoding it or resizing it would take
    /// more than `limits.maxPixels` pixels: a 1 x 100000 strip would be resized to 256 x 25.6 million.
    public func tensor(contentsOf path: String, limits: ImageLimits = ImageLimits()) throws -> [Float] {
        let image = try RGBImage(contentsOf: path, limits: limits)
        let (w, h) = resizedSize(width: image.width, height: image.height)
        guard w * h <= Double(limits.maxPixels) else {
            throw ImageError(path: path, reason: String(format: "resizing its %dx%d pixels to %.0fx%.0f would exceed the limit of %d pixels",
                                                        image.width, image.height, w, h, limits.maxPixels))
        }
        return tensor(image)
    }

    /// The `inputShape` input for an image: resized (`resizedSize`), center-cropped, normalized; channels first
    /// or last by `layout`; grey (`channels` 1) is Pillow's luma L = (19595 R + 38470 G + 7471 B + 2¹⁵) >> 16 of the
    /// cropped pixels, normalized with the first mean and std.
    public func tensor(_ image: RGBImage) -> [Float] {
        let cw = width ?? size
        let (rw, rh) = resizedSize(width: image.width, height: image.height)
        let crop = image.resizedBilinear(width: Int(rw), height: Int(rh)).centerCrop(cw, size)
        let plane = size * cw, channels = channelCount, nhwc = isNHWC
        var out = [Float](repeating: 0, count: channels * plane)
        let p = crop.pixels
        for c in 0..<channels {
            let src = bgr ? 2 - c : c
            let (m, sd) = (mean[c], std[c])
            for i in 0..<plane {
                let byte = channels == 1
                    ? (19595 * Int(p[i * 3]) + 38470 * Int(p[i * 3 + 1]) + 7471 * Int(p[i * 3 + 2]) + 0x8000) >> 16
                    : Int(p[i * 3 + src])
                let v = Float(byte)
                out[nhwc ? i * channels + c : c * plane + i] = ((divisor == 1 ? v : v / divisor) - m) / sd
            }
        }
        return out
    }
}
