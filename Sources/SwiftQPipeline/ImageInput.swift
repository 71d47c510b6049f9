import SwiftQCore

/// The image input of a model as swiftq feeds it (one RGB image, NCHW), checked against what the model
/// declares and against a bound on memory before anything is allocated.
public enum ImageInput {
    /// The [1, 3, H, W] input for `model` (read from `path`): one data input; when its shape is declared, rank
    /// 4, batch 1 or free, 3 channels, H and W free or equal to the crop, no dimension 0 or negative (-1 is
    /// taken as free, as exporters write it). Then every
    /// tensor whose size follows from that input (shape inference) must hold at most `maxElements` values.
    /// Each failure is one line naming the file and the input, node or tensor.
    public static func shape(of model: Model, path: String, height: Int, width: Int,
                             maxElements: Int = Model.defaultMaxTensorElements) throws -> [Int] {
        func invalid(_ what: String) -> ModelError { .invalid(path: path, what: what) }
        let inputs = model.graph.dataInputs
        guard inputs.count == 1, let input = inputs.first else {
            throw invalid("swiftq feeds one image input; this model has \(inputs.count) (\(inputs.map(\.name).joined(separator: ", ")))")
        }
        let shape = [1, 3, height, width]
        guard height > 0, width > 0 else { throw invalid("input '\(input.name)': an image of 1x3x\(height)x\(width) has no pixels") }
        if let dims = input.shape {
            let text = dims.map(\.description).joined(separator: "x")
            guard dims.count == 4 else { throw invalid("input '\(input.name)' has shape \(text); swiftq feeds images as 1x3xHxW") }
            for (k, d) in dims.enumerated() {
                if let v = d.value, v == 0 || v < -1 { throw invalid("input '\(input.name)' declares dimension \(k) as \(v) (shape \(text)); a size is needed") }
            }
            // -1 is how several exporters (paddle2onnx among them) write a free dimension.
            let dims = dims.map { $0.value == -1 ? Dim.unknown : $0 }
            if let b = dims[0].value, b != 1 { throw invalid("input '\(input.name)' declares a batch of \(b) (shape \(text)); swiftq feeds one image at a time") }
            if let c = dims[1].value, c != 3 { throw invalid("input '\(input.name)' takes \(c) channels (shape \(text)); images give 3 (RGB)") }
            for (k, want) in [(2, height), (3, width)] {
                if let v = dims[k].value, v != want {
                    throw invalid("input '\(input.name)' takes \(text) but the image is 1x3x\(height)x\(width) (--size, --input-shape)")
                }
            }
        }
        try model.checkTensorSizes(path: path, inputShapes: [input.name: shape], maxElements: maxElements)
        return shape
    }
}
