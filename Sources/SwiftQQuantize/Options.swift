import SwiftQCalibrate
import SwiftQCore

/// What `quantize` does, with the CLI's defaults.
public struct QuantizeOptions: Sendable {
    public var method: CalibrationMethod = .max
    /// For `.percentile`: the percentile of |x| kept.
    public var percentile: Double = 99.99
    /// Weights per output channel (axis of the output channels) or one scale per tensor.
    public var perChannel = true
    /// int8 activations with zero point 0 (TensorRT) instead of asymmetric uint8.
    public var symmetricActivations = false
    public var weightBits = 8
    /// Weights of 4 bits or fewer go out as INT4 (two per byte; the model moves to opset 21); false keeps them
    /// inside INT8 tensors, for runtimes older than opset 21.
    public var packedWeights = true
    /// INT4 weights reach their DequantizeLinear through a Cast to INT8 (folded away at load): ONNX Runtime then
    /// fuses the layer into its int8 kernels (QLinearConv, QGemm), exactly as for 8-bit weights, where a
    /// DequantizeLinear reading INT4 directly leaves the layer in float. False writes that direct form.
    public var int4ThroughCast = true
    /// Weight bits of single nodes (by node name, or by output name for a node without one), overriding `weightBits`.
    public var nodeWeightBits: [String: Int] = [:]
    public var activationBits = 8
    /// Subtract from each weighted layer's bias the mean output shift its weight rounding causes,
    /// (W_q − W) · E[x] with E[x] the calibration mean of each input channel.
    public var biasCorrection = true
    /// How weights are rounded onto their grid (GPTQ needs the calibration pass to collect input Hessians).
    public var weightRounding: WeightRounding = .nearest
    public var gptq = GPTQOptions()
    /// Node names or op types kept in float.
    public var exclude: Set<String> = []

    public init() {}

    /// The weight bits of node `n` (named in `nodeWeightBits` by its name or one of its outputs).
    public func weightBits(of n: Node) -> Int {
        nodeWeightBits[n.reportName] ?? nodeWeightBits[n.name] ?? n.outputs.lazy.compactMap { nodeWeightBits[$0] }.first ?? weightBits
    }
}

extension Node {
    /// The name reports and `--bits`/`--exclude` use: the node's name, or its first output's when it has none.
    public var reportName: String { name.isEmpty ? (outputs.first ?? "") : name }
}
