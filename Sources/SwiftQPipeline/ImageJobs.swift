import Foundation
import SwiftQCore
import SwiftQImages
import SwiftQONNX
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

/// Statistics of every tensor a plan measures, fed one input after another (images or arrays).
final class CalibrationPass {
    var interpreter: Interpreter
    let plan: QuantizationPlan
    let collector: ActivationCollector
    let hessians: HessianCollector?
    let threads: Int
    var used = 0

    init(_ interpreter: Interpreter, plan: QuantizationPlan, hessians: HessianCollector?, threads: Int) {
        self.interpreter = interpreter
        self.plan = plan
        self.threads = threads
        self.hessians = hessians
        collector = ActivationCollector(names: plan.measured, channelStatistics: plan.weightedInputs)
        collector.threads = threads
    }

    func see(_ name: String, _ t: RTensor) {
        collector.observe(name, t)
        hessians?.observe(name, t)
    }

    /// Runs one set of inputs, observing every measured tensor.
    func observe(_ feeds: [String: RTensor]) throws {
        var seen = Set(feeds.keys)
        for (name, t) in feeds { see(name, t) }
        _ = try interpreter.run(feeds) { name, t in
            self.see(name, t)
            if self.used == 0 { seen.insert(name) }
        }
        if used == 0, !plan.measured.allSatisfy(seen.contains) {
            // The runtime's own Conv+activation fusion hides a value the plan quantizes (an excluded
            // Conv before a quantized Relu): run unfused from here on.
            interpreter = try Interpreter(model: interpreter.model, options: .init(threads: threads, fuse: false))
            _ = try interpreter.run(feeds) { name, t in
                if !seen.contains(name) { self.see(name, t) }
            }
        }
        used += 1
    }
}

/// One pass of `items` through `interpreter`: the statistics (min/max, histogram, channel means) of every
/// tensor `plan` measures; with `hessians`, the input Hessians of its weighted layers too (for GPTQ). An image that cannot be decoded is skipped with a warning; the job fails when every
/// one is. `modelPath` names the model in errors and in the table.
public func calibrate(_ interpreter: Interpreter, plan: QuantizationPlan, modelPath: String, dataset: Dataset, items: [Dataset.Item],
                      preprocessing: Preprocessing, limits: ImageLimits, inputShape: [Int], threads: Int, hessians: HessianCollector? = nil,
                      events: ImageJobEvents = ImageJobEvents()) throws -> CalibrationTable {
    let pass = CalibrationPass(interpreter, plan: plan, hessians: hessians, threads: threads)
    let stream = ImageStream(dataset: dataset, items: items, preprocessing: preprocessing, limits: limits)
    defer { stream.cancel() }
    var skipped = 0
    for (i, item) in items.enumerated() {
        switch stream.take(i) {
        case .failed(let why):
            skipped += 1
            events.warning("skipped \(why)")
        case .tensor(let pixels, let shape):
            let input = RTensor(floats: pixels, shape: preprocessing.mode == .fit32 ? shape : inputShape)
            do {
                try pass.observe([interpreter.inputNames[0]: input])
            } catch {
                throw PipelineError("\(modelPath): \(error) (on \(item.path))")
            }
        }
        events.progress(i + 1, "")
    }
    if pass.used == 0 { throw PipelineError("every calibration image failed to load (\(items.count) of \(items.count)); see the warnings above") }
    return CalibrationTable(model: PathNames.name(of: modelPath), images: pass.used, skipped: skipped, preprocessing: nil,
                            tensors: pass.collector.statistics)
}

/// The `.npy` and `.npz` files under `root` (class folders searched too), sorted by path, the first `limit`;
/// empty when the folder also holds images (then images calibrate).
public func calibrationArrays(root: String, limit: Int) throws -> [String] {
    guard let walker = FileManager.default.enumerator(atPath: root) else { throw PipelineError("\(root): cannot read the folder") }
    var paths: [String] = []
    while let rel = walker.nextObject() as? String {
        let lower = rel.lowercased()
        if lower.hasSuffix(".npy") || lower.hasSuffix(".npz") { paths.append(PathNames.join(root, rel)) }
        if [".jpg", ".jpeg", ".png"].contains(where: lower.hasSuffix) { return [] }
    }
    return Array(paths.sorted().prefix(limit))
}

/// The input shapes the first array file gives `model` (read from `path`), with every tensor size they imply
/// checked against `maxElements` before anything is allocated.
public func arrayInputShapes(_ model: Model, first: String, path: String, maxElements: Int = Model.defaultMaxTensorElements) throws -> [String: [Int]] {
    let shapes = try arrayFeeds(path: first, inputs: model.graph.dataInputs, maxElements: maxElements).mapValues(\.shape)
    try model.checkTensorSizes(path: path, inputShapes: shapes, maxElements: maxElements)
    return shapes
}

/// The feeds one array file gives `inputs` (the model's data inputs with their element types): a `.npy` array or
/// the single array of a `.npz` for a one-input model; a `.npz` with one array named after each input
/// otherwise. Each array must have the type class and rank the input declares.
public func arrayFeeds(path: String, inputs: [ValueInfo], maxElements: Int = Model.defaultMaxTensorElements) throws -> [String: RTensor] {
    let arrays = try NumpyFile.read(path: path, maxElements: maxElements)
    var feeds: [String: RTensor] = [:]
    if inputs.count == 1 && arrays.count == 1 {
        feeds[inputs[0].name] = RTensor(arrays[0].tensor)
    } else {
        let byName = Dictionary(arrays.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for v in inputs {
            guard let t = byName[v.name] else {
                throw PipelineError("\(path): no array named '\(v.name)' (the model's inputs: \(inputs.map(\.name).joined(separator: ", ")); the file holds \(arrays.map { $0.name.isEmpty ? "one unnamed array" : $0.name }.joined(separator: ", ")))")
            }
            feeds[v.name] = RTensor(t)
        }
    }
    for v in inputs {
        let t = feeds[v.name]!
        if let want = v.dtype, want.isFloatingPoint != t.dtype.isFloatingPoint || (!want.isFloatingPoint && want != t.dtype) {
            throw PipelineError("\(path): input '\(v.name)' takes \(want), the array holds \(t.dtype)")
        }
        if let dims = v.shape {
            guard dims.count == t.rank, zip(dims, t.shape).allSatisfy({ d, s in d.value.map { $0 < 0 || $0 == s } ?? true }) else {
                throw PipelineError("\(path): input '\(v.name)' takes \(dims.map(\.description).joined(separator: "x")), the array is \(t.shape.map(String.init).joined(separator: "x"))")
            }
        }
    }
    return feeds
}

/// Calibration on array files (`calibrationArrays`): one set of feeds per file, for models whose inputs are not
/// images or that have several. A file that cannot be read is skipped with a warning; the job fails when every one is.
public func calibrate(_ interpreter: Interpreter, plan: QuantizationPlan, modelPath: String, arrays: [String], threads: Int,
                      maxElements: Int = Model.defaultMaxTensorElements, hessians: HessianCollector? = nil,
                      events: ImageJobEvents = ImageJobEvents()) throws -> CalibrationTable {
    let pass = CalibrationPass(interpreter, plan: plan, hessians: hessians, threads: threads)
    let inputs = interpreter.model.graph.dataInputs
    var skipped = 0
    for (i, path) in arrays.enumerated() {
        let feeds: [String: RTensor]
        do { feeds = try arrayFeeds(path: path, inputs: inputs, maxElements: maxElements) } catch {
            skipped += 1
            events.warning("skipped \(error)")
            events.progress(i + 1, "")
            continue
        }
        do { try pass.observe(feeds) } catch { throw PipelineError("\(modelPath): \(error) (on \(path))") }
        events.progress(i + 1, "")
    }
    if pass.used == 0 { throw PipelineError("every calibration array failed to load (\(arrays.count) of \(arrays.count)); see the warnings above") }
    return CalibrationTable(model: PathNames.name(of: modelPath), images: pass.used, skipped: skipped, preprocessing: nil,
                            tensors: pass.collector.statistics)
}

/// What `evaluate` measured.
public struct EvaluationResult {
    public var skipped = 0
    public var seconds = 0.0
    /// Seconds spent decoding and preprocessing the images (on the prefetch thread, beside the network), and
    /// seconds the network waited for an image that was not ready.
    public var decodeSeconds = 0.0, waitedSeconds = 0.0
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
    (result.decodeSeconds, result.waitedSeconds) = stream.seconds
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
