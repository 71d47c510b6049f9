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
        do { interpreter = try Interpreter(model: prepared, options: .init(threads: threads, fuse: true)) } catch let e as RuntimeError {
            throw PipelineError("\(path): \(e)")
        }
        let facts = ShapeInference.run(prepared, inputShapes: inputShapes).facts
        let plan = QuantizationPlan(prepared.graph, exclude: exclude, floatTypes: { facts[$0]?.dtype?.isFloatingPoint ?? true })
        try plan.checkFiniteWeights(prepared.graph, original: original.graph, path: path)
        return PreparedModel(original: original, model: prepared, rewrites: log, interpreter: interpreter, plan: plan)
    }

    /// What calibration must collect besides the table for `options`: the input Hessians of the weighted layers
    /// when weights are rounded by GPTQ (pass it to `calibrate`, then its `hessians` to `quantize`); nil otherwise.
    public static func hessianCollector(_ p: PreparedModel, options: QuantizeOptions, threads: Int) -> HessianCollector? {
        guard options.weightRounding == .gptq else { return nil }
        return HessianCollector(graph: p.model.graph, opset: p.model.opset, nodes: p.plan.quantized.sorted(), threads: threads)
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
