import Foundation

/// How images become a network's input: resize the shorter side, center-crop, normalize, NCHW float.
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

    /// The 1×3×size×size (or size×width) input for an image: resized like PIL (shorter side to `resize`, the
    /// other side rounded half to even, never below the crop; a non-square crop scales up further until it
    /// fits), center-cropped, normalized.
    public func tensor(_ image: RGBImage) -> [Float] {
        let cw = width ?? size
        var s = Double(resize) / Double(min(image.width, image.height))
        if width != nil { s = max(s, Double(cw) / Double(image.width), Double(size) / Double(image.height)) }
        let w = max(cw, Int((Double(image.width) * s).rounded(.toNearestOrEven)))
        let h = max(size, Int((Double(image.height) * s).rounded(.toNearestOrEven)))
        let crop = image.resizedBilinear(width: w, height: h).centerCrop(cw, size)
        let plane = size * cw
        var out = [Float](repeating: 0, count: 3 * plane)
        for c in 0..<3 {
            let src = bgr ? 2 - c : c
            let (m, sd) = (mean[c], std[c])
            for i in 0..<plane {
                let v = Float(crop.pixels[i * 3 + src])
                out[c * plane + i] = ((divisor == 1 ? v : v / divisor) - m) / sd
            }
        }
        return out
    }
}
