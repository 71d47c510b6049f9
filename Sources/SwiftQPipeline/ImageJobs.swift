import Foundation
import SwiftQCore
import SwiftQImages
import SwiftQQuantize
import SwiftQRuntime

/// What a job over an image folder tells whoever started it, as it goes: a skipped image or other warning
/// (one line naming the image), and the count of images done with a short detail (running accuracy).
public struct ImageJobEvents {
    public var warning: (String) -> Void
    public var progress: (_ done: Int, _ detail: String) -> Void

    public init(warning: @escaping (String) -> Void = { _ in }, progress: @escaping (Int, String) -> Void = { _, _ in }) {
        self.warning = warning
        self.progress = progress
    }
}

/// The calibration images: the folder's images shuffled with a fixed seed (SplitMix64, the same subset on every
/// machine), or the paths a list file names in its order (one per line, relative to `root`; a labels file works),
/// then the first `limit`. Returns the dataset and the chosen items.
public func calibrationImages(root: String, list: String?, limit: Int, seed: UInt64) throws -> (Dataset, [Dataset.Item]) {
    var dataset = try Dataset(root: root)
    var items = dataset.items
    if let list {
        let text = try Dataset.text(list, what: "calibration list")
        items = text.split(separator: "\n").compactMap { line in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { $0.hasPrefix("#") ? nil : Dataset.Item(path: String($0), label: nil) }
        }
        dataset.items = items
        if items.isEmpty { throw PipelineError("\(list): lists no images") }
    } else {
        var rng = SplitMix64(seed: seed)
        items.shuffle(using: &rng)
        if items.isEmpty { throw PipelineError("\(root): no images (.jpg, .jpeg, .png) in the folder or its class folders") }
    }
    return (dataset, Array(items.prefix(limit)))
}

/// One pass of `items` through `interpreter`: the statistics (min/max, histogram, channel means) of every
/// tensor `plan` measures. An image that cannot be decoded is skipped with a warning; the job fails when every
/// one is. `modelPath` names the model in errors and in the table.
public func calibrate(_ interpreter: Interpreter, plan: QuantizationPlan, modelPath: String, dataset: Dataset, items: [Dataset.Item],
                      preprocessing: Preprocessing, limits: ImageLimits, inputShape: [Int], threads: Int,
                      events: ImageJobEvents = ImageJobEvents()) throws -> CalibrationTable {
    var interpreter = interpreter
    let collector = ActivationCollector(names: plan.measured, channelStatistics: plan.weightedInputs)
    collector.threads = threads
    let stream = ImageStream(dataset: dataset, items: items, preprocessing: preprocessing, limits: limits)
    defer { stream.cancel() }
    var skipped = 0, used = 0
    for (i, item) in items.enumerated() {
        switch stream.take(i) {
        case .failed(let why):
            skipped += 1
            events.warning("skipped \(why)")
        case .tensor(let pixels, let shape):
            let input = RTensor(floats: pixels, shape: preprocessing.mode == .fit32 ? shape : inputShape)
            let inputName = interpreter.inputNames[0]
            do {
                var seen: Set<String> = [inputName]
                collector.observe(inputName, input)
                _ = try interpreter.run([inputName: input]) { name, t in
                    collector.observe(name, t)
                    if used == 0 { seen.insert(name) }
                }
                if used == 0, !plan.measured.allSatisfy(seen.contains) {
                    // The runtime's own Conv+activation fusion hides a value the plan quantizes (an excluded
                    // Conv before a quantized Relu): run unfused from here on.
                    interpreter = try Interpreter(model: interpreter.model, options: .init(threads: threads, fuse: false))
                    _ = try interpreter.run([inputName: input]) { name, t in
                        if !seen.contains(name) { collector.observe(name, t) }
                    }
                }
                used += 1
            } catch {
                throw PipelineError("\(modelPath): \(error) (on \(item.path))")
            }
        }
        events.progress(i + 1, "")
    }
    if used == 0 { throw PipelineError("every calibration image failed to load (\(items.count) of \(items.count)); see the warnings above") }
    return CalibrationTable(model: PathNames.name(of: modelPath), images: used, skipped: skipped, preprocessing: nil,
                            tensors: collector.statistics)
}

/// What `evaluate` measured.
public struct EvaluationResult {
    public var skipped = 0
    public var seconds = 0.0
    /// Per model, per image: the top-1 class (nil when skipped).
    public var predicted: [[Int?]]
    /// Per model, per image: the raw output (only when kept).
    public var outputs: [[[Float]?]]
    /// SQNR of the int8 model's activations (two models, the second on the integer runtime).
    public var sqnr = SQNRMeter()
    /// With two models: every output of the second against the first's, over all images.
    public var fidelity = OutputFidelity()

    /// With exactly two models: the second's top-1 drop against the first (points; nil without labels) and the
    /// share of images (in percent) on which both predict the same class.
    public func comparison(_ runs: [ClassifierRun]) -> (drop: Double?, agreement: Double, images: Int)? {
        guard runs.count == 2 else { return nil }
        let pairs = zip(predicted[0], predicted[1]).compactMap { a, b in a.flatMap { x in b.map { (x, $0) } } }
        let same = pairs.filter { $0.0 == $0.1 }.count
        let drop = runs[0].top1Percent.flatMap { a in runs[1].top1Percent.map { a - $0 } }
        return (drop, 100 * Double(same) / Double(max(pairs.count, 1)), pairs.count)
    }
}

/// Every model of `runs` on every image of `items` (each run keeps its top-1/top-5 counts). With two models,
/// the second an int8 model on the integer runtime, the first `sqnrImages` images also measure each int8
/// activation's SQNR against the float model. `keepOutputs` keeps every raw output. Fails when every image does.
public func evaluate(_ runs: [ClassifierRun], dataset: Dataset, items: [Dataset.Item], preprocessing prep: Preprocessing,
                     limits: ImageLimits, keepOutputs: Bool, sqnrImages: Int, events: ImageJobEvents = ImageJobEvents()) throws -> EvaluationResult {
    var result = EvaluationResult(predicted: runs.map { _ in [] }, outputs: runs.map { _ in [] })
    let start = DispatchTime.now().uptimeNanoseconds
    let stream = ImageStream(dataset: dataset, items: items, preprocessing: prep, limits: limits)
    defer { stream.cancel() }
    var warnedClasses = false
    for (i, item) in items.enumerated() {
        switch stream.take(i) {
        case .failed(let why):
            result.skipped += 1
            events.warning("skipped \(why)")
            for m in runs.indices {
                result.predicted[m].append(nil)
                if keepOutputs { result.outputs[m].append(nil) }
            }
        case .tensor(let pixels, let shape):
            let input = RTensor(floats: pixels, shape: shape)
            var all: [[String: RTensor]] = []
            for (m, run) in runs.enumerated() {
                let scores: RTensor
                do {
                    all.append(try run.outputs(input))
                    scores = all[m][run.outputName]!
                } catch {
                    throw PipelineError("\(run.path): \(error) (on \(item.path))")
                }
                if let label = item.label, label >= scores.count, !warnedClasses {
                    warnedClasses = true
                    events.warning("\(item.path) has label \(label) but \(run.path) scores only \(scores.count) classes")
                }
                result.predicted[m].append(run.score(scores, label: item.label))
                if keepOutputs { result.outputs[m].append(scores.floatArray()) }
            }
            if runs.count == 2 { result.fidelity.add(float: all[0], quantized: all[1], order: runs[0].interpreter.outputNames) }
            if runs.count == 2, let integer = runs[1].integer, result.sqnr.images < sqnrImages {
                let quantized = integer.activations()
                let wanted = Set(quantized.map(\.name))
                var float: [String: RTensor] = [:]
                _ = try runs[0].interpreter.run([runs[0].inputName: input]) { name, t in
                    if wanted.contains(name) { float[name] = RTensor(floats: t.floatArray(), shape: t.shape) }
                }
                result.sqnr.add(float: float, quantized: quantized)
            }
        }
        events.progress(i + 1, runs[0].top1Percent.map { String(format: "top-1 %.2f%%", $0) } ?? "")
    }
    result.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    if result.skipped == items.count {
        throw PipelineError("every image failed to load (\(items.count) of \(items.count)); see the warnings above")
    }
    return result
}

/// A small seeded generator (SplitMix64) so the calibration subset is the same on every run and machine.
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
