import ArgumentParser
import Foundation
import SwiftQCalibrate
import SwiftQCore
import SwiftQImages
import SwiftQONNX
import SwiftQPasses
import SwiftQPipeline
import SwiftQQuantize
import SwiftQReport
import SwiftQRuntime


struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a float ONNX CNN to int8: a Q/DQ ONNX model and an int8 weight file.",
        discussion: """
            Steps: Identity/Dropout removed, constants folded, BatchNormalization folded into the Conv/Gemm \
            before it, the model moved to opset 13; then one pass over the calibration images collects, for \
            every activation that gets quantized, its min/max and a 2048-bin histogram; thresholds come from \
            those statistics by --method; the Q/DQ model (QuantizeLinear/DequantizeLinear, int8 weights per \
            output channel, int32 biases, uint8 asymmetric activations by default) is written with the \
            preprocessing recorded in its metadata, beside the int8 weight file (.swq) and the calibration \
            table (.calib.json). Rerun with --calib-table to try another method without the images.

            Exit codes: 0 done; 2 the model, the images or an output could not be used (no output is left behind).
            """
    )

    @Argument(help: ArgumentHelp("The float ONNX model.", valueName: "model"))
    var model: String

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The Q/DQ ONNX model to write (default: MODEL with .int8.onnx). The weight file and calibration table go beside it.", valueName: "file"))
    var output: String?

    @OptionGroup var calibration: CalibrationFlags
    @OptionGroup var quantization: QuantizationFlags

    @Option(parsing: .unconditional, help: ArgumentHelp("Accuracy budget: after quantizing, evaluate on --eval-data and, while the top-1 drop exceeds PTS points, move the layer whose move gains most to a higher precision (below 8 bits → 8, then float), re-ranking as it goes; exit 1 when the budget cannot be met (the files are still written).", valueName: "pts"))
    var maxDrop: Double?

    @Option(name: .customLong("min-sqnr"), parsing: .unconditional, help: ArgumentHelp("Accuracy budget by fidelity, for models without class scores (detectors, segmenters): as --max-drop, until every output's SQNR against the float model on --eval-data is at least DB (with --max-drop, both must hold).", valueName: "db"))
    var minSQNR: Double?

    @Option(help: ArgumentHelp("Images for --max-drop or --min-sqnr (labels: a labels.txt in the folder, or class folders; without labels --max-drop reads the disagreement with float).", valueName: "dir"))
    var evalData: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Evaluate the budget on the first N images of --eval-data (shuffled with a fixed seed).", valueName: "n"))
    var evalLimit: Int = 500

    @OptionGroup(title: "Preprocessing (as for eval)")
    var preprocessing: PreprocessingOptions

    @Option(parsing: .unconditional, help: ArgumentHelp("Threads for the network (default: all cores).", valueName: "n"))
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: ArgumentHelp("Write the summary as JSON to this file ('-' for standard output).", valueName: "file"))
    var json: String?

    @Option(help: ArgumentHelp("Write an HTML report to this file: the summary, each weighted layer's per-channel weight ranges and SQNR, each activation's calibration histogram with every method's threshold (one self-contained file, no script).", valueName: "file.html"))
    var report: String?

    func validate() throws {
        if threads <= 0 { throw ValidationError("--threads must be positive") }
        if (maxDrop == nil && minSQNR == nil) != (evalData == nil) { throw ValidationError("--eval-data goes with --max-drop or --min-sqnr, and they with it") }
        if let minSQNR, !minSQNR.isFinite { throw ValidationError("--min-sqnr must be a number of dB") }
        if report == "-" { throw ValidationError("--report needs a file name") }
        if let maxDrop, !(maxDrop >= 0) { throw ValidationError("--max-drop must be 0 or more points") }
        if evalLimit <= 0 { throw ValidationError("--eval-limit must be positive") }
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
            let outputs = OutputFiles(inputs: [model] + [calibration.calibTable, calibration.calibList].compactMap { $0 })
            let original = try ONNXReader.read(path: model, externalFile: outputs.addInput)
            try original.checkRunnable(path: model)
            if calibration.calibTable == nil { try outputs.reserve(tablePath, role: "calibration table") }
            try outputs.reserve(weightsPath, role: "weight file")
            try reserve(json, role: "--json", in: outputs)
            try reserve(report, role: "--report", in: outputs)
            try outputs.reserve(out, role: "--output")
            let quiet = json == "-"
            // Every summary line is printed and kept for the report as (label, value).
            var summary: [(String, String)] = []
            func say(_ s: String) {
                if !quiet { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
                let label = s.prefix { $0 != " " }
                summary.append((String(label), s.dropFirst(label.count).trimmingCharacters(in: .whitespaces)))
            }
            var phases: [(String, Double)] = []
            var clock = DispatchTime.now().uptimeNanoseconds
            func lap(_ name: String) {
                let now = DispatchTime.now().uptimeNanoseconds
                phases.append((name, Double(now - clock) / 1e9))
                clock = now
            }

            var (prep, source) = try preprocessing.resolve(for: original)
            try calibration.applyInputShape(&prep, resize: preprocessing.resize)
            let data = try calibration.data()
            // The eval images are listed before any work, so a wrong folder fails at once.
            let evalImages = try evalData.map { try calibrationImages(root: $0, list: nil, limit: evalLimit, seed: calibration.seed) }
            let images: Bool = if case .images = data { true } else { false }
            let options = quantization.options(haveImages: images)
            let progress = Progress("calibrate", total: calibration.count(data))
            let c = try QuantizationJob.calibrated(original, path: model, data: data, preprocessing: prep, limits: preprocessing.limits,
                                                   maxElements: preprocessing.maxTensorElements, options: options, threads: threads,
                                                   events: progress.events(quiet: quiet)) { job in
                lap("prepare")
                say("model       \(model) (\(humanBytes(fileSize(model)))): \(original.graph.nodes.count) nodes, opset \(original.opset); \(job.rewrites.count) rewrites → \(job.model.graph.nodes.count) nodes, opset \(job.model.opset)")
                if case .arrays = data {} else { say("preprocess  \(source): \(prep.summary)") }
                say(calibration.describe(data))
            }
            progress.clear()
            let (job, table, plan) = (c.job, c.table, c.job.plan)
            lap("calibrate")
            var q: QuantizedModel
            var budget: [String: Any]?, steps: [PrecisionStep] = []
            if let evalImages {
                (q, budget, steps) = try fitBudget(c, options: options, budget: AccuracyBudget(maxDrop: maxDrop, minSQNR: minSQNR), images: evalImages,
                                                   prep: prep, say: say)
            } else {
                let bar = Progress("gptq", total: c.hessians.count, unit: "layers")
                q = try QuantizationJob.quantize(job, table: table, hessians: c.hessians, options: options, threads: threads) { done, _, node in
                    if !quiet { bar.update(done, detail: node) }
                }
                bar.clear()
            }
            q.warnings.forEach(printWarning)
            lap("quantize")

            let (onnxBytes, weightBytes) = try QuantizationJob.files(q, preprocessing: images ? prep : nil, producerVersion: swiftqVersion)
            let tableBytes = calibration.calibTable == nil ? table.encoded() : nil
            if let tableBytes { try outputs.write(tableBytes, to: tablePath) }
            try outputs.write(weightBytes, to: weightsPath)
            try outputs.write(onnxBytes, to: out)
            lap("write")

            let (byOp, whyFloat, weighted) = QuantizationJob.summary(job)
            let f = quantization
            do {
                let ops = byOp.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                let widths = Dictionary(grouping: q.layers, by: \.bits).sorted { $0.key < $1.key }.map { "\($0.value.count) at \($0.key) bits" }.joined(separator: ", ")
                say("quantized   \(plan.quantized.count) nodes (\(ops)); \(weighted) weighted \(f.perTensor ? "per tensor" : "per channel") (\(widths)), \(plan.fused.count) activations fused")
                for (why, ops) in whyFloat.sorted(by: { $0.key < $1.key }) {
                    say("float       \(ops.count) nodes: \(why) [\(Set(ops).sorted().joined(separator: ", "))]")
                }
                say("calibration \(table.images) \(images ? "images" : "samples"), \(table.skipped) skipped; method \(f.method.rawValue)\(f.method == .percentile ? " \(f.percentile)" : ""); \(plan.tensors.count) activations (\(plan.measured.count) measured), \(f.symmetricActivations ? "int8 symmetric" : "uint8 asymmetric") \(f.activationBits)-bit")
                let g = q.layers.compactMap { l in l.outputSQNRRounded.map { ($0, l.outputSQNRNearest!) } }.filter { $0.0.isFinite && $0.1.isFinite }
                if !g.isEmpty {
                    let mean = { (v: [Double]) in v.reduce(0, +) / Double(v.count) }
                    say(String(format: "weights     GPTQ: mean layer output SQNR %.1f dB (nearest rounding %.1f dB) over %d layers (a layer whose weights already lie on the grid is left out)",
                                 mean(g.map(\.0)), mean(g.map(\.1)), g.count))
                }
                q.notes.forEach { say("note        " + $0) }
                say("time        " + phases.map { String(format: "%@ %.1f s", $0.0, $0.1) }.joined(separator: ", "))
                say("wrote       \(out) (\(humanBytes(onnxBytes.count))), \(weightsPath) (\(humanBytes(weightBytes.count)))\(tableBytes.map { ", \(tablePath) (\(humanBytes($0.count)))" } ?? "")")
            }
            if let json {
                var o: [String: Any] = [
                    "model": model, "output": out, "weights": weightsPath, "method": f.method.rawValue, "per_channel": !f.perTensor,
                    "symmetric_activations": f.symmetricActivations, "bias_correction": !f.noBiasCorrection, "weight_bits": f.weightBits, "activation_bits": f.activationBits,
                    "weight_rounding": options.weightRounding.rawValue, "weight_containers": f.int8Containers ? "int8" : f.int4Direct ? "int4 below 5 bits" : "int4 below 5 bits, cast to int8 before DequantizeLinear",
                    "quantized_nodes": plan.quantized.count, "quantized_by_op": byOp, "fused_activations": plan.fused.count,
                    "float_nodes": whyFloat.mapValues { $0.count }, "activations": plan.tensors.count,
                    "calibration": ["images": table.images, "skipped": table.skipped, "table": calibration.calibTable ?? tablePath],
                    "seconds": Dictionary(uniqueKeysWithValues: phases.map { ($0.0, $0.1) }),
                    "bytes": ["onnx": onnxBytes.count, "weights": weightBytes.count],
                    "rewrites": job.rewrites, "warnings": q.warnings, "notes": q.notes, "layers": try jsonObject(q.layers),
                ]
                if f.method == .percentile { o["percentile"] = f.percentile }
                if let budget { o["accuracy_budget"] = budget }
                try writeJSON(o, to: json, outputs: outputs)
            }
            if let report {
                var r = QuantizationReport(model: model, summary: summary, calibrated: c, quantized: q, options: options)
                r.budget = steps
                if let first = steps.first, first.score.top1Drop == nil { r.budgetMeasure = "disagreement with float" }
                let html = Data(r.html.utf8)
                try outputs.write(html, to: report)
                say("report      \(report) (\(humanBytes(html.count)))")
            }
            try outputs.commit()
            if let met = budget?["met"] as? Bool, !met { throw ExitCode(1) }
        }
    }

    /// --max-drop, --min-sqnr: the evaluation images in memory, then the search; prints each move.
    func fitBudget(_ c: CalibratedModel, options: QuantizeOptions, budget: AccuracyBudget, images: (Dataset, [Dataset.Item]), prep: Preprocessing,
                   say: (String) -> Void) throws -> (QuantizedModel, [String: Any], [PrecisionStep]) {
        let (dataset, items) = images
        let progress = Progress("evaluate", total: items.count)
        let set = try EvaluationSet(c, dataset: dataset, items: items, preprocessing: prep, limits: preprocessing.limits, events: progress.events(quiet: json == "-"))
        progress.clear()
        let mixed = MixedPrecision(c, options: options, threads: threads)
        let what = set.floatTop1 == nil ? "disagreement with float (no labels)" : "top-1 drop"
        // The measures the budget names, as printed: "top-1 drop 0.46 points, SQNR 14.0 dB".
        func measures(_ s: VariantScore) -> String {
            (budget.maxDrop != nil ? String(format: "%@ %.2f points, ", what, s.drop ?? .nan) : "") + String(format: "SQNR %.1f dB", s.sqnr)
        }
        let r: (precisions: [Int: LayerPrecision], base: VariantScore, steps: [PrecisionStep], met: Bool)
        do {
            r = try mixed.fit(budget, on: set, rankLimit: min(set.count, 100)) { s in say("budget      \(s.node) \(s.from) → \(s.to): \(measures(s.score))") }
        } catch let e as PipelineError { throw PipelineError("\(model): \(e)") }
        let initial = mixed.initial
        let moved = r.precisions.filter { initial[$0.key] != $0.value }
        let end = r.steps.last?.score ?? r.base
        let limits = [budget.maxDrop.map { String(format: "%@ at most %.2f points", what, $0) }, budget.minSQNR.map { String(format: "SQNR at least %.1f dB", $0) }]
        say("budget      at the start \(measures(r.base)); at the end \(measures(end)) (budget: \(limits.compactMap { $0 }.joined(separator: ", ")), \(set.count) images): "
            + "\(r.met ? "met" : "NOT met"); \(moved.count) of \(mixed.layers.count) layers moved, \(mixed.evaluations) evaluations")
        let plan = Dictionary(uniqueKeysWithValues: r.precisions.map { (c.job.model.graph.nodes[$0.key].reportName, $0.value.description) })
        var json: [String: Any] = ["met": r.met, "images": set.count, "float_top1": set.floatTop1 as Any, "outputs": set.outputNames,
                                   "start": try jsonObject(r.base), "end": try jsonObject(end), "steps": try jsonObject(r.steps), "moved": moved.count,
                                   "evaluations": mixed.evaluations, "plan": plan]
        if let maxDrop = budget.maxDrop { json["max_drop"] = maxDrop }
        if let minSQNR = budget.minSQNR { json["min_sqnr"] = minSQNR }
        return (try mixed.quantize(r.precisions), json, r.steps)
    }
}
