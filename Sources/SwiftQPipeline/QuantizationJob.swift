import Foundation
import SwiftQCore
import SwiftQImages
import SwiftQONNX
import SwiftQPasses
import SwiftQQuantize
import SwiftQRuntime

/// A float model made ready for calibration: rewritten for quantization, its float interpreter, and the plan of
/// what is quantized.
public struct PreparedModel {
    public let original: Model
    /// The rewritten model the plan refers to.
    public let model: Model
    /// One line per rewrite.
    public let rewrites: [String]
    public let interpreter: Interpreter
    public let plan: QuantizationPlan
    /// Tensors shape inference found to hold integers (never quantized).
    public let integerTensors: Set<String>
}

/// The quantize job as library stages, each with typed inputs and outputs: `prepare` (rewrites, plan), then one of
/// the `calibrate` functions (images or arrays; or a `CalibrationTable` read back), then `quantize` (thresholds,
/// materialized Q/DQ model with int8 weights), then `files` (the bytes to write). `swiftq quantize` is these
/// calls plus flags, output files and the console.
public enum QuantizationJob {
    /// The model rewritten (`Rewriter.quantizationPreparation`), its interpreter, and the plan: `exclude` names
    /// nodes or op types kept float; `inputShapes` fixes the data inputs for shape inference (which tensors are
    /// float). Refuses a weight holding NaN or infinity in a node to be quantized. `path` names the model in errors.
    public static func prepare(_ original: Model, path: String, inputShapes: [String: [Int]], exclude: Set<String>, threads: Int) throws -> PreparedModel {
        let (prepared, log) = try Rewriter.quantizationPreparation.run(original)
        let interpreter: Interpreter
        // Calibration measures the Conv outputs a SiLU or HardSwish reads: those stay separate ops. And its ranges come
        // from the direct convolutions, not Winograd's (which round differently at about 1e-5): the quantized model is
        // the one these direct sums give (a Winograd-calibrated SqueezeNet scored 70.23 on val against 70.54, a few
        // images' worth of noise in the scales that the quantizer's figures should not carry).
        var options = Interpreter.Options(threads: threads, fuse: true)
        options.fuseActivations = false
        options.winograd = false
        do { interpreter = try Interpreter(model: prepared, options: options) } catch let e as RuntimeError {
            throw PipelineError("\(path): \(e)")
        }
        let facts = ShapeInference.run(prepared, inputShapes: inputShapes).facts
        let integerTensors = Set(facts.compactMap { name, f in f.dtype.map { $0.isFloatingPoint ? nil : name } ?? nil })
        let plan = QuantizationPlan(prepared.graph, exclude: exclude, floatTypes: { !integerTensors.contains($0) })
        try plan.checkFiniteWeights(prepared.graph, original: original.graph, path: path)
        return PreparedModel(original: original, model: prepared, rewrites: log, interpreter: interpreter, plan: plan, integerTensors: integerTensors)
    }

    /// What calibration must collect besides the table for `options`: the input Hessians of the weighted layers
    /// when weights are rounded by GPTQ (pass it to `calibrate`, then its `hessians` to `quantize`); nil otherwise.
    public static func hessianCollector(_ p: PreparedModel, options: QuantizeOptions, threads: Int) -> HessianCollector? {
        guard options.weightRounding == .gptq else { return nil }
        return HessianCollector(graph: p.model.graph, opset: p.model.opset, nodes: p.plan.quantized.sorted(), threads: threads,
                                maxInputs: options.gptq.hessianImages)
    }

    /// The Q/DQ model and its integer tensors from the statistics of `table` (which must cover every tensor the
    /// plan measures): thresholds by `options.method`, weights rounded by `options.weightRounding` (GPTQ reads
    /// `hessians`; a layer without one is rounded to nearest), bias correction from the channel means.
    /// `progress` hears of each layer GPTQ rounds.
    public static func quantize(_ p: PreparedModel, table: CalibrationTable, hessians: [Int: LayerHessian] = [:], options: QuantizeOptions,
                                threads: Int = 1, progress: (Int, Int, String) -> Void = { _, _, _ in }) throws -> QuantizedModel {
        let missing = p.plan.measured.filter { table.tensors[$0] == nil }
        if !missing.isEmpty {
            throw PipelineError("the calibration statistics lack \(missing.count) tensors of this model (first: '\(missing[0])'); was the table made from another model or other --exclude?")
        }
        let ranges = table.ranges(method: options.method, percentile: options.percentile, bits: options.activationBits)
        let means = table.tensors.compactMapValues(\.channelMeans)
        let rounded = roundWeights(p.model, plan: p.plan, hessians: hessians, options: options, threads: threads, progress: progress)
        return try materialize(p.model, plan: p.plan, ranges: ranges, channelMeans: means, rounded: rounded, options: options)
    }

    /// The bytes of the outputs: the int8 weight file, and the Q/DQ model recording the weight file's CRC, the
    /// preprocessing (when images calibrated it) and the producer.
    public static func files(_ q: QuantizedModel, preprocessing: Preprocessing?, producerVersion: String) throws -> (model: [UInt8], weights: [UInt8]) {
        var m = q.model
        let weights = try Int8WeightFile.serialize(q.weightRecords)
        m.metadataProps.removeAll { $0.key == Preprocessing.metadataKey || $0.key == Int8WeightFile.metadataKey }
        if let preprocessing { m.metadataProps.append((Preprocessing.metadataKey, preprocessing.metadataValue)) }
        m.metadataProps.append((Int8WeightFile.metadataKey, Int8WeightFile.metadataValue(weights)))
        m.producerName = "swiftq"
        m.producerVersion = producerVersion
        return (try ONNXWriter.serialize(m), weights)
    }

    /// What the plan did, for the summary: quantized nodes by op type, float nodes by reason (their op types),
    /// and the count of weighted layers.
    public static func summary(_ p: PreparedModel) -> (quantizedByOp: [String: Int], floatByReason: [String: [String]], weighted: Int) {
        let g = p.model.graph
        var byOp: [String: Int] = [:]
        for i in p.plan.quantized { byOp[g.nodes[i].opType, default: 0] += 1 }
        var whyFloat: [String: [String]] = [:]
        for (i, why) in p.plan.float { whyFloat[why, default: []].append(g.nodes[i].opType) }
        let weighted = p.plan.quantized.filter { opQuantizers[g.nodes[$0].opType] == .weighted }.count
        return (byOp, whyFloat, weighted)
    }
}

/// What calibrates a model: a table read back (`--calib-table`), array files, or images.
public enum CalibrationData {
    case table(CalibrationTable, path: String)
    case arrays([String])
    case images(Dataset, [Dataset.Item])
}

/// A prepared model with its calibration: what `QuantizationJob.quantize` (and `MixedPrecision`) need.
public struct CalibratedModel {
    public let job: PreparedModel
    public var table: CalibrationTable
    /// The input Hessians of the weighted layers (GPTQ), empty when the options do not round by GPTQ.
    public let hessians: [Int: LayerHessian]
    /// The data input shapes calibration used.
    public let inputShapes: [String: [Int]]
}

extension QuantizationJob {
    /// `prepare`, then calibration on `data` (collecting the Hessians GPTQ needs when `options` asks for it):
    /// one call from a float model to everything `quantize` takes. `prepared` hears of the rewritten model
    /// before calibration starts; `path` names the model in errors.
    public static func calibrated(_ original: Model, path: String, data: CalibrationData, preprocessing: Preprocessing, limits: ImageLimits,
                                  maxElements: Int, options: QuantizeOptions, threads: Int, events: ImageJobEvents = ImageJobEvents(),
                                  prepared: (PreparedModel) -> Void = { _ in }) throws -> CalibratedModel {
        let shapes: [String: [Int]]
        if case .arrays(let files) = data {
            shapes = try arrayInputShapes(original, first: files[0], path: path, maxElements: maxElements)
        } else {
            shapes = [original.graph.dataInputs.first?.name ?? "": try ImageInput.shape(of: original, path: path, preprocessing: preprocessing, maxElements: maxElements)]
        }
        let job = try prepare(original, path: path, inputShapes: shapes, exclude: options.exclude, threads: threads)
        try job.checkNames(options, path: path)
        prepared(job)
        let hessians = hessianCollector(job, options: options, threads: threads)
        var table: CalibrationTable
        switch data {
        case .table(let t, let tablePath):
            if options.weightRounding == .gptq {
                throw PipelineError("\(tablePath): GPTQ needs the calibration images (--calib); a calibration table holds no input Hessians (or give --weight-rounding nearest)")
            }
            table = t
        case .arrays(let files):
            table = try calibrate(job.interpreter, plan: job.plan, modelPath: path, arrays: files, threads: threads, maxElements: maxElements,
                                  hessians: hessians, events: events)
        case .images(let dataset, let items):
            table = try calibrate(job.interpreter, plan: job.plan, modelPath: path, dataset: dataset, items: items, preprocessing: preprocessing,
                                  limits: limits, inputShape: shapes.values.first!, threads: threads, hessians: hessians, events: events)
            table.preprocessing = preprocessing.metadataValue
        }
        for w in table.nonFiniteWarnings { events.warning(w) }
        return CalibratedModel(job: job, table: table, hessians: hessians?.hessians ?? [:], inputShapes: shapes)
    }
}
