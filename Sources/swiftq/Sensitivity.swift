import ArgumentParser
import Foundation
import SwiftQCore
import SwiftQONNX
import SwiftQPipeline
import SwiftQReport
import SwiftQQuantize

struct Sensitivity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rank the weighted layers of a float model by the damage quantizing them does.",
        discussion: """
            Calibrates as quantize does, then for each Conv/Gemm measures on --data (the float model's outputs as \
            reference): the network output's SQNR and top-1 drop with only that layer quantized (its weights at \
            its bits, its activations at 8 bits, everything else float), and with everything quantized but that \
            layer moved one step up (below 8 bits to 8, 8 to float). The table is sorted by what the move gains, \
            the ranking quantize --max-drop follows.

            Exit codes: 0 done; 2 the model, the images or an output could not be used.
            """
    )

    @Argument(help: ArgumentHelp("The float ONNX model.", valueName: "model"))
    var model: String

    @Option(help: ArgumentHelp("Evaluation images (a labels.txt in the folder, or class folders; without labels only SQNR and agreement).", valueName: "dir"))
    var data: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Measure on the first N images of --data (shuffled with a fixed seed).", valueName: "n"))
    var limit: Int = 200

    @OptionGroup var calibration: CalibrationFlags
    @OptionGroup var quantization: QuantizationFlags

    @OptionGroup(title: "Preprocessing (as for eval)")
    var preprocessing: PreprocessingOptions

    @Option(parsing: .unconditional, help: ArgumentHelp("Threads for the network (default: all cores).", valueName: "n"))
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: ArgumentHelp("Write the ranking as JSON to this file ('-' for standard output).", valueName: "file"))
    var json: String?

    @Option(help: ArgumentHelp("Write the ranking as an HTML report to this file (one self-contained file, no script).", valueName: "file.html"))
    var report: String?

    func validate() throws {
        if limit <= 0 { throw ValidationError("--limit must be positive") }
        if threads <= 0 { throw ValidationError("--threads must be positive") }
        if report == "-" { throw ValidationError("--report needs a file name") }
    }

    func run() throws {
        try failing {
            let outputs = OutputFiles(inputs: [model] + [calibration.calibTable, calibration.calibList].compactMap { $0 })
            try reserve(json, role: "--json", in: outputs)
            try reserve(report, role: "--report", in: outputs)
            let quiet = json == "-"
            let original = try ONNXReader.read(path: model, externalFile: outputs.addInput)
            try original.checkRunnable(path: model)
            var (prep, _) = try preprocessing.resolve(for: original)
            try calibration.applyInputShape(&prep, resize: preprocessing.resize)
            let data = try calibration.data()
            let (dataset, items) = try calibrationImages(root: self.data, list: nil, limit: limit, seed: calibration.seed)
            guard case .images = data else { throw CLIError(message: "sensitivity measures on images: give --calib with images") }
            let options = quantization.options(haveImages: true)
            var progress = Progress("calibrate", total: calibration.count(data))
            let c = try QuantizationJob.calibrated(original, path: model, data: data, preprocessing: prep, limits: preprocessing.limits,
                                                   maxElements: preprocessing.maxTensorElements, options: options, threads: threads,
                                                   events: progress.events(quiet: quiet))
            progress.clear()
            progress = Progress("evaluate", total: items.count)
            let set = try EvaluationSet(c, dataset: dataset, items: items, preprocessing: prep, limits: preprocessing.limits, events: progress.events(quiet: quiet))
            progress.clear()
            let mixed = MixedPrecision(c, options: options, threads: threads)
            let layerProgress = Progress("layers", total: mixed.layers.count, unit: "layers")
            let ranking = try mixed.sensitivity(on: set, limit: set.count) { done, _, _ in if !quiet { layerProgress.update(done) } }
            layerProgress.clear()
            let headline = "\(ranking.count) weighted layers, \(set.count) images" + (set.floatTop1.map { String(format: ", float top-1 %.2f%%", $0) } ?? " (no labels)")
                + ", \(mixed.evaluations) evaluations"
            if !quiet {
                print("\(model): \(headline)")
                print("rank  layer                            op    bits     alone: SQNR  drop    all but it: SQNR  drop    gain dB")
                for (k, l) in ranking.enumerated() {
                    func drop(_ s: VariantScore) -> String { s.top1Drop.map { String(format: "%5.2f", $0) } ?? "    -" }
                    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
                    print(String(format: "%4d  %@ %@ %@  %11.1f  %@  %16.1f  %@  %7.2f", k + 1, pad(l.node, 32), pad(l.op, 5), pad(l.precision, 7),
                                 l.alone.sqnr, drop(l.alone), l.allBut.sqnr, drop(l.allBut), l.gain))
                }
            }
            if let json {
                try writeJSON(["model": model, "images": set.count, "float_top1": set.floatTop1 as Any, "evaluations": mixed.evaluations,
                               "layers": try jsonObject(ranking)], to: json, outputs: outputs)
            }
            if let report {
                let summary = [("model", model), ("data", self.data), ("measured", headline), ("quantization", "\(options.weightBits)-bit weights, \(options.activationBits)-bit activations, \(options.method.rawValue) calibration")]
                try outputs.write(Data(SensitivityReport(model: model, summary: summary, ranking: ranking).html.utf8), to: report)
            }
            try outputs.commit()
        }
    }
}
