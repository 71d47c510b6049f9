import SwiftQCore
import SwiftQImages

/// The image input of a model as swiftq feeds it (one RGB image, NCHW), checked against what the model
/// declares and against a bound on memory before anything is allocated.
public enum ImageInput {
    /// The layout and channel count a model's declared image input asks for: NHWC when the shape ends in 3 or 1
    /// and its second dimension is neither (a Keras export's [N, 224, 224, 3]); 1 channel for a grey input. nil
    /// where the declaration does not tell.
    public static func declared(_ model: Model) -> (layout: ImageLayout?, channels: Int?) {
        guard let dims = model.graph.dataInputs.first?.shape, dims.count == 4 else { return (nil, nil) }
        let second = dims[1].value, last = dims[3].value
        let nhwc = (last == 3 || last == 1) && second != nil && second != 3 && second != 1
        let c = nhwc ? last : second
        return (nhwc ? .nhwc : second == 3 || second == 1 ? .nchw : nil, c == 1 ? 1 : c == 3 ? 3 : nil)
    }

    /// The [1, 3, H, W] input of an RGB NCHW image (see `shape(of:path:preprocessing:maxElements:)`).
    public static func shape(of model: Model, path: String, height: Int, width: Int,
                             maxElements: Int = Model.defaultMaxTensorElements) throws -> [Int] {
        var p = Preprocessing(size: height)
        p.width = width == height ? nil : width
        return try shape(of: model, path: path, preprocessing: p, maxElements: maxElements)
    }

    /// The input `preprocessing` makes ([1, C, H, W], or [1, H, W, C] for NHWC; C 3, or 1 for grey) for `model`
    /// (read from `path`): one data input; when its shape is declared, rank 4, batch 1 or free, the channels and
    /// H and W free or equal to the image's, no dimension 0 or negative (-1 is taken as free, as exporters write
    /// it). Then every tensor whose size follows from that input (shape inference) must hold at most
    /// `maxElements` values. Each failure is one line naming the file and the input, node or tensor.
    public static func shape(of model: Model, path: String, preprocessing prep: Preprocessing,
                             maxElements: Int = Model.defaultMaxTensorElements) throws -> [Int] {
        func invalid(_ what: String) -> ModelError { .invalid(path: path, what: what) }
        let inputs = model.graph.dataInputs
        guard inputs.count == 1, let input = inputs.first else {
            throw invalid("swiftq feeds one image input; this model has \(inputs.count) (\(inputs.map(\.name).joined(separator: ", ")))")
        }
        let shape = prep.inputShape, text = shape.map(String.init).joined(separator: "x")
        let (height, width, channels) = (prep.size, prep.width ?? prep.size, prep.channelCount)
        let (ci, hi, wi) = prep.isNHWC ? (3, 1, 2) : (1, 2, 3)
        guard height > 0, width > 0 else { throw invalid("input '\(input.name)': an image of \(text) has no pixels") }
        if let dims = input.shape {
            let declared = dims.map(\.description).joined(separator: "x")
            let form = prep.isNHWC ? "1xHxWx\(channels) (NHWC)" : "1x\(channels)xHxW"
            guard dims.count == 4 else { throw invalid("input '\(input.name)' has shape \(declared); swiftq feeds images as \(form)") }
            for (k, d) in dims.enumerated() {
                if let v = d.value, v == 0 || v < -1 { throw invalid("input '\(input.name)' declares dimension \(k) as \(v) (shape \(declared)); a size is needed") }
            }
            // -1 is how several exporters (paddle2onnx among them) write a free dimension.
            let dims = dims.map { $0.value == -1 ? Dim.unknown : $0 }
            if let b = dims[0].value, b != 1 { throw invalid("input '\(input.name)' declares a batch of \(b) (shape \(declared)); swiftq feeds one image at a time") }
            if let c = dims[ci].value, c != channels {
                throw invalid("input '\(input.name)' takes \(c) channels at axis \(ci) (shape \(declared)); images give \(channels) (\(prep.isNHWC ? "NHWC" : "NCHW"); see --layout)")
            }
            if prep.mode == .fit32, dims[hi].value != nil || dims[wi].value != nil {
                throw invalid("input '\(input.name)' takes \(declared), a fixed size; --resize-mode fit32 gives every image its own size (use letterbox or crop, or a model with free height and width)")
            }
            for (k, want) in [(hi, height), (wi, width)] where prep.mode != .fit32 {
                if let v = dims[k].value, v != want {
                    throw invalid("input '\(input.name)' takes \(declared) but the image is \(text) (--size, --input-shape, --layout)")
                }
            }
        }
        try model.checkTensorSizes(path: path, inputShapes: [input.name: shape], maxElements: maxElements)
        return shape
    }
}
