import ArgumentParser
import Foundation
import SwiftQCore
import SwiftQImages
import SwiftQONNX
import SwiftQPipeline
import SwiftQReport
import SwiftQRuntime

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure top-1 / top-5 accuracy of one or more classifiers on a labelled image folder.",
        discussion: """
            Images are read from DIR: with --labels, the files it lists (`relative/path class_index` per line); \
            otherwise every .jpg/.jpeg/.png in DIR's class folders (`DIR/<class>/<image>`), classes numbered by \
            --classes or by sorted folder names. With several threads, each decodes, preprocesses and runs its own images. \
            Each image is resized (shorter side to --resize, bilinear as PIL), center-cropped to --size and \
            normalized by the preset or the explicit flags. An unreadable image is reported and skipped.

            With several models, each one runs on every image; they share the first model's preprocessing. \
            images/s counts time inside the network only; end-to-end images/s counts everything from reading \
            the file to the prediction.

            Two models (fp32, then its int8 version): the summary adds the int8 top-1 drop and the share of images \
            where both predict the same class (JSON: "drop", "agreement"). A swiftq int8 model whose .swq lies \
            beside it runs on the integer runtime.

            Exit codes: 0 done; 1 the int8 top-1 dropped more than --max-drop; 2 a model, the data or an output \
            file could not be used, every image failed, or --max-drop has no labels to compare (none, or labels \
            past the model's classes).
            """
    )

    @Argument(help: ArgumentHelp("The ONNX classifier(s) to evaluate.", valueName: "model"))
    var models: [String]

    @Option(help: ArgumentHelp("The image folder.", valueName: "dir"))
    var data: String

    @Option(help: ArgumentHelp("Labels file: `relative/path class_index` per line, paths relative to --data.", valueName: "file"))
    var labels: String?

    @Option(help: ArgumentHelp("Class names, one per line (line number = class index), matched to --data's folder names; e.g. ImageNet's synsets.txt.", valueName: "file"))
    var classes: String?

    @OptionGroup(title: "Preprocessing")
    var preprocessing: PreprocessingOptions

    @Option(parsing: .unconditional, help: ArgumentHelp("Evaluate only the first N images.", valueName: "n"))
    var limit: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Threads for the network (default: all cores).", valueName: "n"))
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: ArgumentHelp("Write the results as JSON to this file ('-' for standard output).", valueName: "file"))
    var json: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("With two models (fp32 then int8): exit with code 1 when the second's top-1 is more than PTS points below the first's (a CI gate).", valueName: "pts"))
    var maxDrop: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("With two models: exit with code 1 when any output's SQNR against the float model's is below DB (the CI gate for detectors and other models without labels).", valueName: "db"))
    var minSQNR: Double?

    @Option(help: ArgumentHelp("Write one line per image: path, label, then each model's top-1 class ('-' when unknown or skipped).", valueName: "file"))
    var predictions: String?

    @Option(help: ArgumentHelp("Save every model's raw output as a float32 .npy array [models, images, classes] (NaN rows for skipped images).", valueName: "file"))
    var saveOutputs: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("With two models (fp32, then an int8 model on the integer runtime): measure each int8 activation's SQNR against the float model on the first N images and list the lowest (0: off).", valueName: "n"))
    var sqnrImages = 8

    @Option(help: ArgumentHelp("Write an HTML report to this file: top-1 and speed; with fp32 and int8, the drop, each output's fidelity and each activation's SQNR in graph order (one self-contained file, no script).", valueName: "file.html"))
    var report: String?

    func validate() throws {
        if report == "-" { throw ValidationError("--report needs a file name") }
        if sqnrImages < 0 { throw ValidationError("--sqnr-images must not be negative") }
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
        if threads <= 0 { throw ValidationError("--threads must be positive") }
        if maxDrop != nil && models.count != 2 { throw ValidationError("--max-drop compares two models: the float one, then the int8 one") }
        if let maxDrop, !(maxDrop >= 0) { throw ValidationError("--max-drop must be 0 or more") }
        if minSQNR != nil && models.count != 2 { throw ValidationError("--min-sqnr compares two models: the float one, then the int8 one") }
        if let minSQNR, !minSQNR.isFinite { throw ValidationError("--min-sqnr must be a number of dB") }
    }

    func run() throws {
        try failing {
            let outputs = OutputFiles(inputs: models + [labels, classes].compactMap { $0 })
            let loaded = try models.map { path in (path, try ONNXReader.read(path: path, externalFile: outputs.addInput)) }
            for path in models { outputs.addInput(PathNames.sibling(of: path, suffix: ".swq")) }
            try reserve(json, role: "--json", in: outputs)
            try reserve(predictions, role: "--predictions", in: outputs)
            try reserve(saveOutputs, role: "--save-outputs", in: outputs)
            try reserve(report, role: "--report", in: outputs)
            let (prep, source) = try preprocessing.resolve(for: (loaded.first { Preprocessing(metadataOf: $0.1) != nil } ?? loaded[0]).1)
            for (path, model) in loaded {
                try model.checkRunnable(path: path)
                _ = try ImageInput.shape(of: model, path: path, preprocessing: prep, maxElements: preprocessing.maxTensorElements)
            }
            let dataset = try Dataset(root: data, labels: labels, classes: classes)
            var items = dataset.items
            if let limit { items = Array(items.prefix(limit)) }
            if items.isEmpty {
                throw CLIError(message: labels != nil ? "\(labels!) lists no images" : "\(data): no images (.jpg, .jpeg, .png) in the folder or its class folders")
            }
            let options = Interpreter.Options(threads: threads)
            let runs = try loaded.map { l in try naming(l.0) { try ClassifierRun(path: l.0, model: l.1, options: options) } }
            for run in runs { if let w = run.warning { printWarning(w) } }
            let quiet = json == "-"
            let labelled = items.filter { $0.label != nil }.count
            if maxDrop != nil && labelled == 0 {
                throw CLIError(message: "\(data): no image is labelled, and --max-drop compares top-1 accuracy (give a labels.txt or class folders; without labels gate on --min-sqnr)")
            }
            let summary = [("data", "\(data): \(items.count) images, \(labelled == items.count ? "all" : "\(labelled)") labelled\(labels.map { " (\($0))" } ?? "")"),
                           ("preprocess", "\(source): \(prep.summary)")]
            if !quiet { summary.forEach { print(factLine($0.0, $0.1)) } }
            let progress = Progress("eval", total: items.count)
            let result: EvaluationResult
            do {
                defer { progress.clear() }
                result = try evaluate(runs, dataset: dataset, items: items, preprocessing: prep, limits: preprocessing.limits,
                                      keepOutputs: saveOutputs != nil, sqnrImages: sqnrImages, events: progress.events(quiet: quiet))
            }
            let comparison = result.comparison(runs)
            // The float model's node that computes each tensor, to name it beside its SQNR.
            let producers = Dictionary(loaded[0].1.graph.nodes.flatMap { n in n.outputs.map { ($0, n) } }, uniquingKeysWith: { a, _ in a })
            if !quiet {
                printSummary(runs, result)
                if let c = comparison, c.drop != nil || result.fidelity.rows.first?.top1Agreement != nil {
                    print(String(format: "int8 vs fp32: top-1 drop %.2f points, top-1 agreement %.2f%% of %d images", c.drop ?? .nan, c.agreement, c.images))
                }
                result.fidelity.lines.forEach { print($0) }
                if result.sqnr.images > 0 {
                    print("lowest SQNR (int8 activation against the float model, first \(result.sqnr.images) images):")
                    for (name, db) in result.sqnr.lowest(5) {
                        let node = producers[name].map { "  (\($0.opType)\($0.name.isEmpty ? "" : " '\($0.name)'"))" } ?? ""
                        print(String(format: "  %7.2f dB  %@%@", db, name, node))
                    }
                }
            }
            var object = jsonObject(runs, result, prep)
            if let c = comparison { object["drop"] = c.drop ?? NSNull(); object["agreement"] = c.agreement; object["fidelity"] = result.fidelity.json }
            if result.sqnr.images > 0 {
                object["sqnr_images"] = result.sqnr.images
                object["lowest_sqnr"] = result.sqnr.lowest(10).map { entry -> [String: Any] in
                    var o: [String: Any] = ["tensor": entry.name, "db": entry.db.isFinite ? entry.db : 999]
                    if let n = producers[entry.name] { o["op"] = n.opType; o["node"] = n.name }
                    return o
                }
            }
            if let json { try writeJSON(object, to: json, outputs: outputs) }
            if let predictions { try outputs.write(Data(result.predictionsText(runs, items: items).utf8), to: predictions) }
            if let saveOutputs {
                guard let npy = result.outputsNpy else { throw CLIError(message: "--save-outputs: the models' outputs differ in size") }
                try outputs.write(npy, to: saveOutputs)
            }
            if let report {
                let r = EvaluationReport(summary: summary + [("images", throughput(runs, result))], runs: runs, result: result, floatModel: loaded[0].1)
                try outputs.write(Data(r.html.utf8), to: report)
            }
            if maxDrop != nil, let foreign = result.foreignLabel {
                // Counted, every image is wrong for both models, and the gate would pass whatever the int8 model does.
                throw CLIError(message: "\(foreign): the labels are not this model's, so --max-drop has no top-1 to compare")
            }
            try outputs.commit()
            if let minSQNR, let low = result.fidelity.lowestSQNR, low < minSQNR {
                printError(String(format: "an output's SQNR is %.2f dB, below --min-sqnr %.2f", low, minSQNR))
                throw ExitCode(1)
            }
            if let maxDrop, let drop = comparison?.drop, drop > maxDrop {
                printError(String(format: "top-1 dropped %.2f points, more than --max-drop %.2f", drop, maxDrop))
                throw ExitCode(1)
            }
        }
    }

    func printSummary(_ runs: [ClassifierRun], _ r: EvaluationResult) {
        let names = runs.map { PathNames.name(of: $0.path) }
        let w = max(12, names.map(\.count).max()! + 2)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        print("")
        print(pad("model", w) + lpad("top-1", 8) + lpad("top-5", 8) + lpad("images/s", 11) + "  runtime")
        for (run, name) in zip(runs, names) {
            let t1 = run.top1Percent.map { String(format: "%.2f", $0) } ?? "-"
            let t5 = run.top5Percent.map { String(format: "%.2f", $0) } ?? "-"
            print(pad(name, w) + lpad(t1, 8) + lpad(t5, 8) + lpad(String(format: "%.1f", Double(run.images) / max(run.networkSeconds, 1e-9)), 11) + "  " + run.runtime + (run.floatIslands.isEmpty ? "" : " (float: \(run.floatIslands))"))
        }
        print("")
        print(throughput(runs, r))
    }

    /// "1300 images, 0 skipped; end to end 3.9 s, 333.3 images/s including decoding (...)".
    func throughput(_ runs: [ClassifierRun], _ r: EvaluationResult) -> String {
        let done = runs[0].images, labelled = runs[0].labelled
        return "\(done) images\(labelled < done ? " (\(labelled) labelled)" : ""), \(r.skipped) skipped; end to end \(String(format: "%.1f", r.seconds)) s, \(String(format: "%.1f", Double(done) / max(r.seconds, 1e-9))) images/s including decoding"
            + (r.imageWorkers > 1
               ? String(format: " (%d images at a time, each worker decoding its own: %.2f ms an image)", r.imageWorkers, r.decodeMillisecondsPerImage)
               : String(format: " (decoding %.2f ms an image beside the network, which waited %.2f s for images)", r.decodeMillisecondsPerImage, r.waitedSeconds))
    }

    func jsonObject(_ runs: [ClassifierRun], _ r: EvaluationResult, _ prep: Preprocessing) -> [String: Any] {
        let e2e = Double(runs[0].images) / max(r.seconds, 1e-9)
        return [
            "models": runs.map { run -> [String: Any] in
                [
                    "path": run.path,
                    "top1": run.top1Percent ?? NSNull(),
                    "top5": run.top5Percent ?? NSNull(),
                    "images": run.images,
                    "labelled": run.labelled,
                    "images_per_second": Double(run.images) / max(run.networkSeconds, 1e-9),
                    "runtime": run.runtime, "float_islands": run.integer?.floatOps ?? [:],
                    "end_to_end_images_per_second": e2e,
                ]
            },
            "skipped": r.skipped,
            "seconds": r.seconds,
            "decode_ms_per_image": r.decodeMillisecondsPerImage, "waited_for_images_seconds": r.waitedSeconds, "image_workers": r.imageWorkers,
            "threads": threads,
            "preprocessing": [
                "size": prep.size, "resize": prep.resize, "bgr": prep.bgr, "divisor": prep.divisor,
                "mean": prep.mean, "std": prep.std,
            ] as [String: Any],
        ]
    }
}
