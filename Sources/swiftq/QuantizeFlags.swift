import ArgumentParser
import Foundation
import SwiftQCalibrate
import SwiftQCore
import SwiftQImages
import SwiftQONNX
import SwiftQPipeline
import SwiftQQuantize

extension CalibrationMethod: ExpressibleByArgument {}
extension WeightRounding: ExpressibleByArgument {}

/// NODE=BITS of `--bits`.
struct NodeBits: ExpressibleByArgument {
    var node: String
    var bits: Int
    init?(argument: String) {
        guard let eq = argument.lastIndex(of: "="), let b = Int(argument[argument.index(after: eq)...]), (2...8).contains(b) else { return nil }
        node = String(argument[..<eq])
        bits = b
        if node.isEmpty { return nil }
    }
}

/// How to quantize: the flags `quantize` and `sensitivity` share.
struct QuantizationFlags: ParsableArguments {
    @Option(help: ArgumentHelp("Threshold method: max (default: with bias correction the only one that matched or beat ONNX Runtime's quantize_static on every ../shared model), percentile, entropy (TensorRT's KL search) or mse.", valueName: "method"))
    var method: CalibrationMethod = .max

    @Option(parsing: .unconditional, help: ArgumentHelp("Percentile of |x| kept by --method percentile.", valueName: "p"))
    var percentile: Double = 99.99

    @Flag(help: "One weight scale per tensor instead of per output channel.")
    var perTensor = false

    @Flag(help: "Leave biases as they are (by default each weighted layer's bias absorbs the mean shift its weight rounding causes, measured on the calibration images).")
    var noBiasCorrection = false

    @Flag(help: "Symmetric int8 activations with zero point 0 (TensorRT) instead of asymmetric uint8.")
    var symmetricActivations = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Weight bits, 2-8. 4 and below are written as INT4 (two per byte, opset 21) unless --int8-containers.", valueName: "n"))
    var weightBits: Int = 8

    @Option(help: ArgumentHelp("Weight bits of one node (its name, or its output's name), overriding --weight-bits; repeatable.", valueName: "node=bits"))
    var bits: [NodeBits] = []

    @Option(help: ArgumentHelp("How weights are rounded: gptq (second order: each rounding error is pushed onto the weights not yet rounded, through the layer's input Hessian from the calibration images) or nearest. Default: gptq below 8 weight bits, nearest at 8 (where GPTQ gained nothing on the shared models).", valueName: "how"))
    var weightRounding: WeightRounding?

    @Flag(help: "Keep weights of 4 bits and below inside INT8 tensors (for runtimes before opset 21) instead of INT4.")
    var int8Containers = false

    @Flag(help: "DequantizeLinear reads INT4 weights directly instead of through a Cast to INT8 (ONNX Runtime then runs those layers in float; by default the Cast, folded at load, lets it use its int8 kernels).")
    var int4Direct = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Activation bits, 2-8 (narrower ranges inside uint8/int8).", valueName: "n"))
    var activationBits: Int = 8

    @Option(help: ArgumentHelp("Keep this node (name) or op type in float; repeatable.", valueName: "name-or-op"))
    var exclude: [String] = []

    func validate() throws {
        if !(2...8).contains(weightBits) { throw ValidationError("--weight-bits must be 2 to 8") }
        if !(2...8).contains(activationBits) { throw ValidationError("--activation-bits must be 2 to 8") }
        if !(percentile > 0 && percentile <= 100) { throw ValidationError("--percentile must be in (0, 100]") }
    }

    /// The library's options; without images (a calibration table) rounding defaults to nearest.
    func options(haveImages: Bool) -> QuantizeOptions {
        var o = QuantizeOptions()
        o.method = method; o.percentile = percentile; o.perChannel = !perTensor
        o.symmetricActivations = symmetricActivations; o.weightBits = weightBits; o.activationBits = activationBits
        o.exclude = Set(exclude)
        o.biasCorrection = !noBiasCorrection
        o.nodeWeightBits = Dictionary(bits.map { ($0.node, $0.bits) }, uniquingKeysWith: { _, b in b })
        let lowest = ([weightBits] + bits.map(\.bits)).min()!
        o.weightRounding = weightRounding ?? (lowest < 8 && haveImages ? .gptq : .nearest)
        o.packedWeights = !int8Containers
        o.int4ThroughCast = !int4Direct
        return o
    }
}

/// Where calibration data comes from: the flags `quantize` and `sensitivity` share.
struct CalibrationFlags: ParsableArguments {
    @Option(help: ArgumentHelp("Calibration images: a folder of .jpg/.jpeg/.png files (class subfolders are searched too); or, for models whose inputs are not images or that have several, a folder of .npy files (one input) or .npz files (one array per input name) and no images.", valueName: "dir"))
    var calib: String?

    @Option(help: ArgumentHelp("Calibrate on the images this file lists instead, in its order: one path relative to --calib per line (a labels file works; the label is ignored).", valueName: "file"))
    var calibList: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Use at most N calibration images (the folder's images shuffled with a fixed seed, or the first N of --calib-list).", valueName: "n"))
    var calibLimit: Int = 500

    @Option(parsing: .unconditional, help: ArgumentHelp("Seed of the calibration image shuffle.", valueName: "n"))
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Reuse the statistics of an earlier run (its .calib.json) instead of running images.", valueName: "file"))
    var calibTable: String?

    @Option(help: ArgumentHelp("The calibration input shape NAME=1x3xHxW for a model whose input size is not fixed; an H x W crop (non-square allowed).", valueName: "name=shape"))
    var inputShape: InputShape?

    func validate() throws {
        if calib == nil && calibTable == nil { throw ValidationError("give --calib DIR (or --calib-table FILE from an earlier run)") }
        if calibList != nil && calib == nil { throw ValidationError("--calib-list needs --calib DIR (the folder its paths are relative to)") }
        if calibLimit <= 0 { throw ValidationError("--calib-limit must be positive") }
    }

    /// `prep` with `--input-shape` applied.
    func applyInputShape(_ prep: inout Preprocessing, resize: Int?) throws {
        guard let inputShape else { return }
        let d = inputShape.dims, (hi, wi, ci) = prep.isNHWC ? (1, 2, 3) : (2, 3, 1)
        guard d.count == 4, d[0] == 1, d[ci] == prep.channelCount, d[hi] > 0, d[wi] > 0 else {
            throw CLIError(message: "--input-shape must be \(prep.isNHWC ? "1xHxWx\(prep.channelCount)" : "1x\(prep.channelCount)xHxW") (one image)")
        }
        prep.resize = resize ?? Int((Double(min(d[hi], d[wi])) / 0.875).rounded())
        prep.size = d[hi]
        prep.width = d[wi] == d[hi] ? nil : d[wi]
    }

    /// The calibration data: the table, the array files (a folder of .npy/.npz and no images), or the images.
    func data() throws -> CalibrationData {
        if let calibTable { return .table(try CalibrationTable.read(path: calibTable), path: calibTable) }
        if calibList == nil {
            let arrays = try calibrationArrays(root: calib!, limit: calibLimit)
            if !arrays.isEmpty { return .arrays(arrays) }
        }
        let (dataset, items) = try calibrationImages(root: calib!, list: calibList, limit: calibLimit, seed: seed)
        return .images(dataset, items)
    }

    /// One line describing `data`.
    func describe(_ data: CalibrationData) -> String {
        switch data {
        case .table(let t, let path): "calibration \(path): \(t.images) images (reused)"
        case .arrays(let a): "calibration \(calib!): \(a.count) array files"
        case .images(let d, let items): "calibration \(calib!): \(items.count) of \(d.items.count) images"
        }
    }

    /// The inputs `data` runs (none for a table), for the progress bar.
    func count(_ data: CalibrationData) -> Int {
        switch data {
        case .arrays(let a): a.count
        case .images(_, let items): items.count
        case .table: 0
        }
    }
}
