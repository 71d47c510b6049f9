import ArgumentParser
import Foundation
import SwiftQCalibrate
import SwiftQCore
import SwiftQImages
import SwiftQONNX
import SwiftQPasses
import SwiftQPipeline
import SwiftQQuantize
import SwiftQRuntime

extension CalibrationMethod: ExpressibleByArgument {}
extension WeightRounding: ExpressibleByArgument {}

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a float ONNX CNN to int8: a Q/DQ ONNX model and an int8 weight file.",
        discussion: """
            Steps: Identity/Dropout removed, constants folded, BatchNormalization folded into the Conv/Gemm
            before it, the model moved to opset 13; then one pass over the calibration images collects, for
            every activation that gets quantized, its min/max and a 2048-bin histogram; thresholds come from
            those statistics by --method; the Q/DQ model (QuantizeLinear/DequantizeLinear, int8 weights per
            output channel, int32 biases, uint8 asymmetric activations by default) is written with the
            preprocessing recorded in its metadata, beside the int8 weight file (.swq) and the calibration
            table (.calib.json). Rerun with --calib-table to try another method without the images.

            Exit codes: 0 done; 2 the model, the images or an output could not be used (no output is left behind).
            """
    )

    @Argument(help: ArgumentHelp("The float ONNX model.", valueName: "model"))
    var model: String

    @Option(help: ArgumentHelp("Calibration images: a folder of .jpg/.jpeg/.png files (class subfolders are searched too); or, for models whose inputs are not images or that have several, a folder of .npy files (one input) or .npz files (one array per input name) and no images.", valueName: "dir"))
    var calib: String?

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The Q/DQ ONNX model to write (default: MODEL with .int8.onnx). The weight file and calibration table go beside it.", valueName: "file"))
    var output: String?

    @Option(help: ArgumentHelp("Threshold method: max (default: with bias correction the only one that matched or beat ONNX Runtime's quantize_static on every ../shared model), percentile, entropy (TensorRT's KL search) or mse.", valueName: "method"))
    var method: CalibrationMethod = .max

    @Option(parsing: .unconditional, help: ArgumentHelp("Percentile of |x| kept by --method percentile.", valueName: "p"))
    var percentile: Double = 99.99

    @Option(help: ArgumentHelp("Calibrate on the images this file lists instead, in its order: one path relative to --calib per line (a labels file works; the label is ignored).", valueName: "file"))
    var calibList: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Use at most N calibration images (the folder's images shuffled with a fixed seed, or the first N of --calib-list).", valueName: "n"))
    var calibLimit: Int = 500

    @Option(parsing: .unconditional, help: ArgumentHelp("Seed of the calibration image shuffle.", valueName: "n"))
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Reuse the statistics of an earlier run (its .calib.json) instead of running images.", valueName: "file"))
    var calibTable: String?

    @Flag(help: "One weight scale per tensor instead of per output channel.")
    var perTensor = false

    @Flag(help: "Leave biases as they are (by default each weighted layer's bias absorbs the mean shift its weight rounding causes, measured on the calibration images).")
    var noBiasCorrection = false

    @Flag(help: "Symmetric int8 activations with zero point 0 (TensorRT) instead of asymmetric uint8.")
    var symmetricActivations = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Weight bits, 2-8 (narrower ranges inside int8).", valueName: "n"))
    var weightBits: Int = 8

    @Option(help: ArgumentHelp("How weights are rounded: gptq (second-order: each rounding error is pushed onto the weights not yet rounded, through the layer's input Hessian from the calibration images) or nearest. Default: gptq below 8 weight bits, nearest at 8.", valueName: "how"))
    var weightRounding: WeightRounding?

    @Option(parsing: .unconditional, help: ArgumentHelp("Activation bits, 2-8 (narrower ranges inside uint8/int8).", valueName: "n"))
    var activationBits: Int = 8

    @Option(help: ArgumentHelp("Keep this node (name) or op type in float; repeatable.", valueName: "name-or-op"))
    var exclude: [String] = []

    @Option(help: ArgumentHelp("The calibration input shape NAME=1x3xHxW for a model whose input size is not fixed; an H x W crop (non-square allowed).", valueName: "name=shape"))
    var inputShape: InputShape?

    @OptionGroup(title: "Preprocessing (as for eval)")
    var preprocessing: PreprocessingOptions

    @Option(parsing: .unconditional, help: ArgumentHelp("Threads for the network (default: all cores).", valueName: "n"))
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: ArgumentHelp("Write the summary as JSON to this file ('-' for standard output).", valueName: "file"))
    var json: String?

    func validate() throws {
        if calib == nil && calibTable == nil { throw ValidationError("give --calib DIR (or --calib-table FILE from an earlier run)") }
        if calibList != nil && calib == nil { throw ValidationError("--calib-list needs --calib DIR (the folder its paths are relative to)") }
        if !(2...8).contains(weightBits) { throw ValidationError("--weight-bits must be 2 to 8") }
        if !(2...8).contains(activationBits) { throw ValidationError("--activation-bits must be 2 to 8") }
        if !(percentile > 0 && percentile <= 100) { throw ValidationError("--percentile must be in (0, 100]") }
        if calibLimit <= 0 { throw ValidationError("--calib-limit must be positive") }
        if threads <= 0 { throw ValidationError("--threads must be positive") }
    }

    var outputPath: String {
        if let output { return output }
        return PathNames.sibling(of: model, suffix: ".int8.onnx")
    }

    /// A path beside the output: its name without .onnx plus `suffix`.
    func sibling(_ suffix: String) -> String {
        PathNames.sibling(of: outputPath, suffix: suffix)
    }

    func run() throws {
        try failing {
            let out = outputPath, weightsPath = sibling(".swq"), tablePath = sibling(".calib.json")
            // Every output is checked and its temporary file made before any work; the model comes last, so a
            // reader never sees a model whose weight file is not there yet.
            let outputs = OutputFiles(inputs: [model] + [calibTable, calibList].compactMap { $0 })
            let original = try ONNXReader.read(path: model, externalFile: outputs.addInput)
            try original.checkRunnable(path: model)
            if calibTable == nil { try outputs.reserve(tablePath, role: "calibration table") }
            try outputs.reserve(weightsPath, role: "weight file")
            try reserve(json, role: "--json", in: outputs)
            try outputs.reserve(out, role: "--output")
            let quiet = json == "-"
            func say(_ s: String) {
                if !quiet { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
            }
            var phases: [(String, Double)] = []
            var clock = DispatchTime.now().uptimeNanoseconds
            func lap(_ name: String) {
                let now = DispatchTime.now().uptimeNanoseconds
                phases.append((name, Double(now - clock) / 1e9))
                clock = now
            }

            var (prep, source) = try preprocessing.resolve(for: original)
            if let inputShape {
                let d = inputShape.dims, (hi, wi, ci) = prep.isNHWC ? (1, 2, 3) : (2, 3, 1)
                guard d.count == 4, d[0] == 1, d[ci] == prep.channelCount, d[hi] > 0, d[wi] > 0 else {
                    throw CLIError(message: "--input-shape must be \(prep.isNHWC ? "1xHxWx\(prep.channelCount)" : "1x\(prep.channelCount)xHxW") (one image)")
                }
                prep.resize = preprocessing.resize ?? Int((Double(min(d[hi], d[wi])) / 0.875).rounded())
                prep.size = d[hi]
                prep.width = d[wi] == d[hi] ? nil : d[wi]
            }
            // A calibration folder of .npy/.npz files (and no images) feeds arrays: non-image or several inputs.
            let arrays = calibTable == nil && calibList == nil ? try calibrationArrays(root: calib!, limit: calibLimit) : []
            let limit = preprocessing.maxTensorElements
            let shapes = arrays.isEmpty ? [original.graph.dataInputs.first?.name ?? "": try ImageInput.shape(of: original, path: model, preprocessing: prep, maxElements: limit)]
                : try arrayInputShapes(original, first: arrays[0], path: model, maxElements: limit)
            let job = try QuantizationJob.prepare(original, path: model, inputShapes: shapes, exclude: Set(exclude), threads: threads)
            let (interpreter, plan) = (job.interpreter, job.plan)
            lap("prepare")
            say("model       \(model): \(original.graph.nodes.count) nodes, opset \(original.opset); \(job.rewrites.count) rewrites → \(job.model.graph.nodes.count) nodes, opset \(job.model.opset)")
            if arrays.isEmpty { say("preprocess  \(source): \(prep.summary)") }

            var options = QuantizeOptions()
            options.method = method; options.percentile = percentile; options.perChannel = !perTensor
            options.symmetricActivations = symmetricActivations; options.weightBits = weightBits; options.activationBits = activationBits
            options.exclude = Set(exclude)
            options.biasCorrection = !noBiasCorrection
            options.weightRounding = weightRounding ?? (weightBits < 8 && calibTable == nil ? .gptq : .nearest)
            if options.weightRounding == .gptq && calibTable != nil {
                throw PipelineError("--weight-rounding gptq needs the calibration images (--calib): a calibration table holds no input Hessians")
            }
            let hessians = QuantizationJob.hessianCollector(job, options: options, threads: threads)
            var table: CalibrationTable
            if let calibTable {
                table = try CalibrationTable.read(path: calibTable)
                say("calibration \(calibTable): \(table.images) images (reused)")
            } else if !arrays.isEmpty {
                say("calibration \(calib!): \(arrays.count) array files")
                let progress = Progress("calibrate", total: arrays.count)
                defer { progress.clear() }
                table = try SwiftQPipeline.calibrate(interpreter, plan: plan, modelPath: model, arrays: arrays, threads: threads, maxElements: limit, hessians: hessians, events: progress.events(quiet: quiet))
            } else {
                let (dataset, items) = try calibrationImages(root: calib!, list: calibList, limit: calibLimit, seed: seed)
                say("calibration \(calib!): \(items.count) of \(dataset.items.count) images")
                let progress = Progress("calibrate", total: items.count)
                defer { progress.clear() }
                table = try SwiftQPipeline.calibrate(interpreter, plan: plan, modelPath: model, dataset: dataset, items: items, preprocessing: prep,
                                                     limits: preprocessing.limits, inputShape: shapes.values.first!, threads: threads, hessians: hessians, events: progress.events(quiet: quiet))
                table.preprocessing = prep.metadataValue
            }
            lap("calibrate")
            let q = try QuantizationJob.quantize(job, table: table, hessians: hessians?.hessians ?? [:], options: options, threads: threads)
            q.warnings.forEach(printWarning)
            lap("quantize")

            let (onnxBytes, weightBytes) = try QuantizationJob.files(q, preprocessing: arrays.isEmpty ? prep : nil, producerVersion: swiftqVersion)
            let tableBytes = calibTable == nil ? table.encoded() : nil
            if let tableBytes { try outputs.write(tableBytes, to: tablePath) }
            try outputs.write(weightBytes, to: weightsPath)
            try outputs.write(onnxBytes, to: out)
            lap("write")

            let (byOp, whyFloat, weighted) = QuantizationJob.summary(job)
            if !quiet {
                let ops = byOp.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                print("quantized   \(plan.quantized.count) nodes (\(ops)); \(weighted) with int8 weights \(perTensor ? "per tensor" : "per channel"), \(plan.fused.count) activations fused")
                for (why, ops) in whyFloat.sorted(by: { $0.key < $1.key }) {
                    print("float       \(ops.count) nodes: \(why) [\(Set(ops).sorted().joined(separator: ", "))]")
                }
                print("calibration \(table.images) \(arrays.isEmpty ? "images" : "samples"), \(table.skipped) skipped; method \(method.rawValue)\(method == .percentile ? " \(percentile)" : ""); \(plan.tensors.count) activations (\(plan.measured.count) measured), \(symmetricActivations ? "int8 symmetric" : "uint8 asymmetric") \(activationBits)-bit")
                print("time        " + phases.map { String(format: "%@ %.1f s", $0.0, $0.1) }.joined(separator: ", "))
                print("wrote       \(out) (\(humanBytes(onnxBytes.count))), \(weightsPath) (\(humanBytes(weightBytes.count)))\(tableBytes.map { ", \(tablePath) (\(humanBytes($0.count)))" } ?? "")")
            }
            if let json {
                var o: [String: Any] = [
                    "model": model, "output": out, "weights": weightsPath, "method": method.rawValue, "per_channel": !perTensor,
                    "symmetric_activations": symmetricActivations, "bias_correction": !noBiasCorrection, "weight_bits": weightBits, "activation_bits": activationBits,
                    "quantized_nodes": plan.quantized.count, "quantized_by_op": byOp, "fused_activations": plan.fused.count,
                    "float_nodes": whyFloat.mapValues { $0.count }, "activations": plan.tensors.count,
                    "calibration": ["images": table.images, "skipped": table.skipped, "table": calibTable ?? tablePath],
                    "seconds": Dictionary(uniqueKeysWithValues: phases.map { ($0.0, $0.1) }),
                    "bytes": ["onnx": onnxBytes.count, "weights": weightBytes.count],
                    "rewrites": job.rewrites, "warnings": q.warnings,
                ]
                if method == .percentile { o["percentile"] = percentile }
                try writeJSON(o, to: json, outputs: outputs)
            }
            try outputs.commit()
        }
    }
}
