import ArgumentParser
import Foundation
import SwiftQCore
import SwiftQImages
import SwiftQPipeline

/// The flags that say how an image becomes the network's input; shared by `eval` and `quantize`.
struct PreprocessingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Normalization preset: torch (RGB, /255, ImageNet mean/std), caffe (BGR, 0-255, minus 104,117,123), inception ((x-127.5)/127.5), effnet-lite ((x-127)/128). Default: what the model's metadata records (models written by swiftq quantize), else torch.", valueName: "name"))
    var preset: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Side of the square center crop fed to the network. Default: the model's input height and width when fixed, else 224.", valueName: "pixels"))
    var size: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Resize the shorter side to this before cropping (bilinear, as PIL). Default: size / 0.875 (256 for 224).", valueName: "pixels"))
    var resize: Int?

    @Option(help: ArgumentHelp("Per-channel mean subtracted after scaling, in the network's channel order, e.g. 0.485,0.456,0.406.", valueName: "r,g,b"))
    var mean: FloatTriple?

    @Option(help: ArgumentHelp("Per-channel divisor applied after the mean, e.g. 0.229,0.224,0.225.", valueName: "r,g,b"))
    var std: FloatTriple?

    @Option(help: ArgumentHelp("Multiply 0-255 pixel values by this first; '1/255' is accepted and divides exactly.", valueName: "factor"))
    var scale: Scale?

    @Flag(help: "Feed channels in BGR order (as Caffe models expect).")
    var bgr = false

    @Option(help: ArgumentHelp("How images reach the input size: crop (shorter side to --resize, center crop; the default), squash (straight to the size, aspect not kept), letterbox (fit inside, pad the rest with --pad-value, as YOLO exports expect), fit32 (shorter side to --size, both sides rounded to a multiple of 32, each image its own size, as text detectors with dynamic height and width take).", valueName: "mode"))
    var resizeMode: ResizeMode?

    @Option(parsing: .unconditional, help: ArgumentHelp("Letterbox padding as a 0-255 pixel value, before normalization. Default: 114.", valueName: "value"))
    var padValue: Float?

    @Option(help: ArgumentHelp("Input layout: nchw or nhwc (Keras/TensorFlow exports). Default: what the model records, else nhwc when the input shape ends in 3 or 1 and its second dimension does not, else nchw.", valueName: "layout"))
    var layout: ImageLayout?

    @Option(parsing: .unconditional, help: ArgumentHelp("Skip (with a warning) any image with more pixels than this, decoded or resized; checked from the header before decoding. Default: Pillow's limit, \(ImageLimits.defaultMaxPixels).", valueName: "n"))
    var maxImagePixels: Int = ImageLimits.defaultMaxPixels

    @Option(parsing: .unconditional, help: ArgumentHelp("Refuse a model in which any tensor (input, activation, constant) would hold more values than this, checked before anything is allocated. Default: 2^28 (1 GiB of float32).", valueName: "n"))
    var maxTensorElements: Int = Model.defaultMaxTensorElements

    var limits: ImageLimits { ImageLimits(maxPixels: maxImagePixels) }

    func validate() throws {
        if let preset, !Preprocessing.presetNames.contains(preset) {
            throw ValidationError("unknown --preset '\(preset)'; choose one of \(Preprocessing.presetNames.joined(separator: ", "))")
        }
        if let size, size <= 0 { throw ValidationError("--size must be positive") }
        if let resize, resize <= 0 { throw ValidationError("--resize must be positive") }
        if let resize, let size, resize < size { throw ValidationError("--resize \(resize) is smaller than --size \(size): the crop would not fit") }
        if maxTensorElements <= 0 { throw ValidationError("--max-tensor-elements must be positive") }
        if maxImagePixels <= 0 { throw ValidationError("--max-image-pixels must be positive") }
        if let std, std.values.contains(0) { throw ValidationError("--std must not contain 0") }
        if let padValue, !(0...255).contains(padValue) { throw ValidationError("--pad-value must be a pixel value in 0...255") }
    }

    /// The preprocessing for `model`, and where its base came from (for the console).
    func resolve(for model: Model) throws -> (Preprocessing, String) {
        let custom = mean != nil || std != nil || scale != nil
        let recorded = Preprocessing(metadataOf: model)
        var p: Preprocessing
        var source: String
        if let preset {
            p = Preprocessing.preset(preset)!
            source = "preset \(preset)"
        } else if let recorded {
            p = recorded
            source = "recorded in the model"
        } else if custom || bgr {
            p = Preprocessing()
            source = "flags"
        } else {
            p = Preprocessing.preset("torch")!
            source = "preset torch (default; use --preset to change)"
        }
        let declared = ImageInput.declared(model)
        if let layout { p.layout = layout == .nhwc ? .nhwc : nil } else if recorded?.layout == nil, declared.layout == .nhwc { p.layout = .nhwc }
        if declared.channels == 1 { p.channels = 1 }
        let modelSide = Self.inputSide(model, nhwc: p.isNHWC)
        let newSize = size ?? (recorded != nil && preset == nil ? p.size : modelSide ?? 224)
        if newSize != p.size || resize != nil {
            p.size = newSize
            p.resize = resize ?? Int((Double(newSize) / 0.875).rounded())
        }
        if p.resize < p.size { throw CLIError(message: "--size \(p.size) is larger than the resize \(p.resize): pass --resize") }
        if let mean { p.mean = mean.values }
        if let std { p.std = std.values }
        if let scale { p.divisor = scale.divisor }
        if bgr { p.bgr = true }
        if let resizeMode { p.resizeMode = resizeMode == .crop ? nil : resizeMode }
        if let padValue { p.padValue = padValue }
        return (p, source)
    }

    /// The model's fixed square input side (NCHW with H == W), if it has one.
    static func inputSide(_ model: Model, nhwc: Bool) -> Int? {
        guard let dims = model.graph.dataInputs.first?.shape, dims.count == 4,
              case .value(let h) = dims[nhwc ? 1 : 2], case .value(let w) = dims[nhwc ? 2 : 3], h == w, h > 0 else { return nil }
        return Int(h)
    }
}

/// Three comma-separated numbers.
struct FloatTriple: ExpressibleByArgument {
    var values: [Float]
    init?(argument: String) {
        let v = argument.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard v.count == 3, v.allSatisfy(\.isFinite) else { return nil }
        values = v
    }
}

/// A pixel scale factor, stored as the divisor it stands for ('1/255' exactly, 0.5 as 2).
struct Scale: ExpressibleByArgument {
    var divisor: Float
    init?(argument: String) {
        if argument.hasPrefix("1/"), let d = Float(argument.dropFirst(2)), d > 0, d.isFinite {
            divisor = d
        } else if let s = Float(argument), s > 0, s.isFinite {
            divisor = 1 / s
        } else {
            return nil
        }
    }
}

extension ImageLayout: ExpressibleByArgument {}
extension ResizeMode: ExpressibleByArgument {}
