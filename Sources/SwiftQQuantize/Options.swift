import SwiftQCalibrate

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
    public var activationBits = 8
    /// Subtract from each weighted layer's bias the mean output shift its weight rounding causes,
    /// (W_q − W) · E[x] with E[x] the calibration mean of each input channel.
    public var biasCorrection = true
    /// Node names or op types kept in float.
    public var exclude: Set<String> = []

    public init() {}
}
