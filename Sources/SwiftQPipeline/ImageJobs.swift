import Foundation
import SwiftQCore
import SwiftQImages
import SwiftQKernels
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
            var options = interpreter.options   // calibration's (no Winograd), unfused
            options.fuse = false
            options.threads = threads
            interpreter = try Interpreter(model: interpreter.model, options: options)
            _ = try interpreter.run(feeds) { name, t in
                if !seen.contains(name) { self.see(name, t) }
            }
        }
        used += 1
    }

    /// What one input did on a worker.
    enum Outcome {
        case observed
        case skipped(String)
        case failed(String)
        /// Not run to the end: another input failed.
        case cancelled
    }

    /// Inputs `first ..< count`, `workers` at a time, each worker on a single-threaded copy of the interpreter.
    /// Every tensor's statistics (and Hessian sums) take the inputs in order (`InOrder`), so the table is the one
    /// a single thread makes. `input(i)` loads input `i` (a thrown error skips it, with a warning);
    /// `events` and each input's outcome are handled on the calling thread, in order. Returns the inputs skipped.
    func observeInParallel(first: Int, count: Int, workers: Int, input: @escaping @Sendable (Int) throws -> [String: RTensor],
                           name: @escaping @Sendable (Int) -> String, modelPath: String, events: ImageJobEvents) throws -> Int {
        var numbering: [String: Int] = [:]
        for n in collector.names + (hessians?.inputNames ?? []) where numbering[n] == nil { numbering[n] = numbering.count }
        let keys = numbering
        let order = InOrder(keys: keys.count + 1, first: first)
        let end = keys.count
        let copies = (0..<workers).map { _ in Interpreter(sharingWeightsOf: interpreter, threads: 1) }
        collector.threads = 1
        hessians?.reserve(workers: workers)
        defer { collector.threads = threads }
        let (collector, hessians) = (self.collector, self.hessians)
        let jobs = OrderedWorkers<Outcome>(count: count - first, workers: workers, depth: 2 * workers, threadExit: Fast.releaseThreadBuffers) { w, k in
            let i = first + k
            defer { order.finish(i) }
            let feeds: [String: RTensor]
            do { feeds = try input(i) } catch { return .skipped("\(error)") }
            func see(_ n: String, _ t: RTensor) {
                guard let key = keys[n] else { return }
                order.pass(key, i) {
                    collector.observe(n, t)
                    hessians?.observe(n, t, worker: w, threads: 1)
                }
            }
            for (n, t) in feeds { see(n, t) }
            do {
                _ = try copies[w].run(feeds) { n, t in see(n, t) }
            } catch {
                order.cancel()
                return .failed("\(modelPath): \(error) (on \(name(i)))")
            }
            return order.pass(end, i) {} ? .observed : .cancelled
        }
        defer { jobs.cancel() }
        var skipped = 0
        for i in first..<count {
            switch jobs.take(i - first) {
            case .observed: used += 1
            case .skipped(let why):
                skipped += 1
                events.warning("skipped \(why)")
            case .failed(let why): throw PipelineError(why)
            case .cancelled: continue
            }
            events.progress(i + 1, "")
        }
        return skipped
    }
}

/// How many inputs to run at once on `threads` threads, each on a single-threaded copy of the network: one per
/// thread (whole inputs split better than layers, whose threads wait for each other at every layer), fewer when
/// `count` inputs are too few to share, or when that many copies of `bytesPerCopy` would take more than `budget`.
public func imageWorkers(threads: Int, images count: Int, bytesPerCopy: Int, budget: Int = 1 << 30) -> Int {
    max(1, min(threads, count / 2, budget / max(1, bytesPerCopy)))
}

/// One pass of `items` through `interpreter`: the statistics (min/max, histogram, channel means) of every
/// tensor `plan` measures; with `hessians`, the input Hessians of its weighted layers too (for GPTQ). An image
/// that cannot be decoded is skipped with a warning; the job fails when every one is. `modelPath` names the
/// model in errors and in the table.
///
/// With two threads or more, the first image that loads runs alone on `interpreter` (with all threads), then the
/// rest run whole images at once on single-threaded copies of it (`imageWorkers`); the table is the same as on
/// one thread.
public func calibrate(_ interpreter: Interpreter, plan: QuantizationPlan, modelPath: String, dataset: Dataset, items: [Dataset.Item],
                      preprocessing: Preprocessing, limits: ImageLimits, inputShape: [Int], threads: Int, hessians: HessianCollector? = nil,
                      events: ImageJobEvents = ImageJobEvents()) throws -> CalibrationTable {
    let pass = CalibrationPass(interpreter, plan: plan, hessians: hessians, threads: threads)
    let inputName = interpreter.inputNames[0]
    let feeds: @Sendable ([Float], [Int]) -> [String: RTensor] = { pixels, shape in
        [inputName: RTensor(floats: pixels, shape: preprocessing.mode == .fit32 ? shape : inputShape)]
    }
    var skipped = 0
    func observe(_ i: Int, _ result: Prefetcher.Result) throws {
        switch result {
        case .failed(let why):
            skipped += 1
            events.warning("skipped \(why)")
        case .tensor(let pixels, let shape):
            do { try pass.observe(feeds(pixels, shape)) } catch { throw PipelineError("\(modelPath): \(error) (on \(items[i].path))") }
        }
        events.progress(i + 1, "")
    }
    var i = 0
    if threads > 1 {
        // The first image that loads alone, then whole images in parallel.
        while i < items.count && pass.used == 0 {
            let result: Prefetcher.Result
            do {
                let t = try preprocessing.input(contentsOf: dataset.fullPath(items[i]), limits: limits)
                result = .tensor(t.pixels, t.shape)
            } catch { result = .failed("\(error)") }
            try observe(i, result)
            i += 1
        }
        let workers = imageWorkers(threads: threads, images: items.count - i, bytesPerCopy: pass.interpreter.heldBytes)
        if workers > 1 {
            skipped += try pass.observeInParallel(first: i, count: items.count, workers: workers, input: { k in
                let t = try preprocessing.input(contentsOf: dataset.fullPath(items[k]), limits: limits)
                return feeds(t.pixels, t.shape)
            }, name: { items[$0].path }, modelPath: modelPath, events: events)
            i = items.count
        }
    }
    if i < items.count {
        let stream = ImageStream(dataset: dataset, items: Array(items[i...]), preprocessing: preprocessing, limits: limits)
        defer { stream.cancel() }
        for k in i..<items.count { try observe(k, stream.take(k - i)) }
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
    func observe(_ k: Int) throws {
        defer { events.progress(k + 1, "") }
        let feeds: [String: RTensor]
        do { feeds = try arrayFeeds(path: arrays[k], inputs: inputs, maxElements: maxElements) } catch {
            skipped += 1
            events.warning("skipped \(error)")
            return
        }
        do { try pass.observe(feeds) } catch { throw PipelineError("\(modelPath): \(error) (on \(arrays[k]))") }
    }
    // One file after another; with two threads or more, only until one is observed, then whole files in parallel.
    var i = 0
    while i < arrays.count && (threads == 1 || pass.used == 0) {
        try observe(i)
        i += 1
    }
    let workers = imageWorkers(threads: threads, images: arrays.count - i, bytesPerCopy: pass.interpreter.heldBytes)
    if workers > 1 {
        skipped += try pass.observeInParallel(first: i, count: arrays.count, workers: workers, input: { k in
            try arrayFeeds(path: arrays[k], inputs: inputs, maxElements: maxElements)
        }, name: { arrays[$0] }, modelPath: modelPath, events: events)
    } else {
        for k in i..<arrays.count { try observe(k) }
    }
    if pass.used == 0 { throw PipelineError("every calibration array failed to load (\(arrays.count) of \(arrays.count)); see the warnings above") }
    return CalibrationTable(model: PathNames.name(of: modelPath), images: pass.used, skipped: skipped, preprocessing: nil,
                            tensors: pass.collector.statistics)
}

/// What `evaluate` measured.
public struct EvaluationResult {
    public var skipped = 0
    public var seconds = 0.0
    /// Seconds spent decoding and preprocessing the images (on the prefetch thread beside the network, or summed
    /// over the image workers), and seconds the network waited for an image that was not ready (0 with image
    /// workers: each decodes its own).
    public var decodeSeconds = 0.0, waitedSeconds = 0.0
    /// Images run at once, each on its own single-threaded copy of the models (1: one image at a time on all
    /// threads, decoded ahead on a background thread).
    public var imageWorkers = 1
    /// Milliseconds of decoding and preprocessing per image (skipped ones included).
    public var decodeMillisecondsPerImage: Double { 1000 * decodeSeconds / Double(max(predicted.first?.count ?? 0, 1)) }
    /// Per model, per image: the top-1 class (nil when skipped).
    public var predicted: [[Int?]]
    /// Per model, per image: the raw output (only when kept).
    public var outputs: [[[Float]?]]
    /// SQNR of the int8 model's activations (two models, the second on the integer runtime).
    public var sqnr = SQNRMeter()
    /// With two models: every output of the second against the first's, over all images.
    public var fidelity = OutputFidelity()
    /// The first image whose label is past a model's classes (the labels are another model's), as warned.
    public var foreignLabel: String?

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

/// What became of one image of an evaluation.
enum ImageOutcome {
    case scored(ScoredImage)
    /// It could not be loaded (why).
    case skipped(String)
    /// A model failed on it: the job stops.
    case failed(PipelineError)
    /// Not run: a model failed on another image.
    case cancelled
}

/// What every model of an evaluation made of one image.
struct ScoredImage {
    /// Per model: the top-1 class, the number of classes scored, and the raw output when kept.
    var predicted: [Int] = [], classes: [Int] = []
    var outputs: [[Float]?] = []
    /// With two models: every output of both (copies), for `OutputFidelity`.
    var fidelity: (float: [String: RTensor], quantized: [String: RTensor])?
    /// With an int8 model on the integer runtime, when measured: its activations' SQNR sums.
    var sqnr: [(name: String, signal: Double, noise: Double)]?

    /// Runs every model of `runs` on `input` (each counts its top-1/top-5 against `label`).
    init(_ runs: [ClassifierRun], input: RTensor, label: Int?, path: String, keepOutputs: Bool, measureSQNR: Bool) throws {
        var all: [[String: RTensor]] = []
        if runs.count == 2 { runs[1].integer?.keepsActivations = measureSQNR }   // the SQNR reads every activation afterwards
        for run in runs {
            let scores: RTensor
            do {
                all.append(try run.outputs(input))
                scores = all.last![run.outputName]!
            } catch {
                throw PipelineError("\(run.path): \(error) (on \(path))")
            }
            classes.append(scores.count)
            predicted.append(run.score(scores, label: label))
            outputs.append(keepOutputs ? scores.floatArray() : nil)
        }
        guard runs.count == 2 else { return }
        let copied = all.map { $0.mapValues { RTensor(floats: $0.floatArray(), shape: $0.shape) } }
        fidelity = (copied[0], copied[1])
        if measureSQNR, let integer = runs[1].integer {
            let quantized = integer.activations()
            let wanted = Set(quantized.map(\.name))
            var float: [String: RTensor] = [:]
            _ = try runs[0].interpreter.run([runs[0].inputName: input]) { name, t in
                if wanted.contains(name) { float[name] = RTensor(floats: t.floatArray(), shape: t.shape) }
            }
            sqnr = SQNRMeter.sums(float: float, quantized: quantized)
        }
    }
}

/// Every model of `runs` on every image of `items` (each run keeps its top-1/top-5 counts). With two models,
/// the second an int8 model on the integer runtime, the images among the first `sqnrImages` also measure each
/// int8 activation's SQNR against the float model. `keepOutputs` keeps every raw output. Fails when every image does.
///
/// With two threads or more (the first run's interpreter's), the first image that loads runs alone, then whole
/// images run at once on single-threaded copies of the runs (`imageWorkers`), each decoding its own; the results
/// are added in image order, so they are the same as on one thread.
public func evaluate(_ runs: [ClassifierRun], dataset: Dataset, items: [Dataset.Item], preprocessing prep: Preprocessing,
                     limits: ImageLimits, keepOutputs: Bool, sqnrImages: Int, events: ImageJobEvents = ImageJobEvents()) throws -> EvaluationResult {
    var result = EvaluationResult(predicted: runs.map { _ in [] }, outputs: runs.map { _ in [] })
    let start = DispatchTime.now().uptimeNanoseconds
    var warnedClasses = false
    var hits = 0, labelled = 0
    let measuresSQNR = runs.count == 2 && runs[1].integer != nil
    /// Image `i`'s outcome, in image order.
    func add(_ i: Int, _ outcome: ImageOutcome) throws {
        switch outcome {
        case .cancelled: return
        case .failed(let e): throw e
        case .skipped(let why):
            result.skipped += 1
            events.warning("skipped \(why)")
            for m in runs.indices {
                result.predicted[m].append(nil)
                if keepOutputs { result.outputs[m].append(nil) }
            }
        case .scored(let s):
            for (m, run) in runs.enumerated() {
                if let label = items[i].label, label >= s.classes[m], !warnedClasses {
                    warnedClasses = true
                    result.foreignLabel = "\(items[i].path) has label \(label) but \(run.path) scores only \(s.classes[m]) classes"
                    events.warning(result.foreignLabel!)
                }
                result.predicted[m].append(s.predicted[m])
                if keepOutputs { result.outputs[m].append(s.outputs[m]) }
            }
            if let label = items[i].label { labelled += 1; if s.predicted[0] == label { hits += 1 } }
            if let f = s.fidelity { result.fidelity.add(float: f.float, quantized: f.quantized, order: runs[0].interpreter.outputNames) }
            if let q = s.sqnr { result.sqnr.add(q) }
        }
        events.progress(i + 1, labelled > 0 ? String(format: "top-1 %.2f%%", 100 * Double(hits) / Double(labelled)) : "")
    }
    @Sendable func score(_ runs: [ClassifierRun], _ i: Int, _ pixels: [Float], _ shape: [Int]) -> ImageOutcome {
        do {
            return .scored(try ScoredImage(runs, input: RTensor(floats: pixels, shape: shape), label: items[i].label, path: items[i].path,
                                           keepOutputs: keepOutputs, measureSQNR: measuresSQNR && i < sqnrImages))
        } catch let e as PipelineError { return .failed(e) } catch { return .failed(PipelineError("\(error)")) }
    }
    @Sendable func loadOrWhy(_ i: Int) -> Result<(pixels: [Float], shape: [Int], seconds: Double), PipelineError> {
        let t0 = DispatchTime.now().uptimeNanoseconds
        do {
            let t = try prep.input(contentsOf: dataset.fullPath(items[i]), limits: limits)
            return .success((t.pixels, t.shape, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9))
        } catch { return .failure(PipelineError("\(error)")) }
    }
    var i = 0
    let threads = runs[0].interpreter.options.threads
    if threads > 1 {
        // The first image that loads alone (the buffers it leaves size the copies), then whole images in parallel.
        while i < items.count && result.predicted[0].count == result.skipped {
            switch loadOrWhy(i) {
            case .failure(let why): try add(i, .skipped(why.description))
            case .success(let t):
                result.decodeSeconds += t.seconds
                try add(i, score(runs, i, t.pixels, t.shape))
            }
            i += 1
        }
        let workers = imageWorkers(threads: threads, images: items.count - i, bytesPerCopy: runs.reduce(0) { $0 + $1.heldBytes })
        if workers > 1 {
            let copies = try (0..<workers).map { _ in try runs.map { try $0.copy(threads: 1) } }
            let first = i
            let stop = StopFlag()
            let jobs = OrderedWorkers<(ImageOutcome, Double)>(count: items.count - first, workers: workers, depth: 2 * workers,
                                                              threadExit: Fast.releaseThreadBuffers) { w, k in
                let i = first + k
                if stop.isSet { return (.cancelled, 0) }
                switch loadOrWhy(i) {
                case .failure(let why): return (.skipped(why.description), 0)
                case .success(let t):
                    let outcome = score(copies[w], i, t.pixels, t.shape)
                    if case .failed = outcome { stop.set() }
                    return (outcome, t.seconds)
                }
            }
            defer { jobs.cancel() }
            for k in first..<items.count {
                let (outcome, seconds) = jobs.take(k - first)
                result.decodeSeconds += seconds
                try add(k, outcome)
            }
            for (m, run) in runs.enumerated() { run.absorb(copies.map { $0[m] }) }
            result.imageWorkers = workers
            i = items.count
        }
    }
    if i < items.count {
        let stream = ImageStream(dataset: dataset, items: Array(items[i...]), preprocessing: prep, limits: limits)
        defer { stream.cancel() }
        for k in i..<items.count {
            switch stream.take(k - i) {
            case .failed(let why): try add(k, .skipped(why))
            case .tensor(let pixels, let shape): try add(k, score(runs, k, pixels, shape))
            }
        }
        let (decode, waited) = stream.seconds
        result.decodeSeconds += decode
        result.waitedSeconds = waited
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

extension EvaluationResult {
    /// One line per image: its path, its label, then each model's top-1 class ('-' when unknown or skipped).
    public func predictionsText(_ runs: [ClassifierRun], items: [Dataset.Item]) -> String {
        var text = "# path label " + runs.map { PathNames.name(of: $0.path) }.joined(separator: " ") + "\n"
        for (i, item) in items.enumerated() {
            text += "\(item.path) \(item.label.map(String.init) ?? "-")"
            for m in runs.indices { text += " " + (predicted[m][i].map(String.init) ?? "-") }
            text += "\n"
        }
        return text
    }

    /// Every model's raw output (kept with `keepOutputs`) as a float32 .npy array [models, images, outputs], NaN rows for
    /// skipped images; nil when the models' outputs differ in size.
    public var outputsNpy: Data? {
        let size = outputs.flatMap { $0 }.compactMap { $0?.count }.first ?? 0
        if outputs.flatMap({ $0 }).contains(where: { $0 != nil && $0!.count != size }) { return nil }
        let values = outputs.flatMap { $0.flatMap { $0 ?? [Float](repeating: .nan, count: size) } }
        return NumpyFile.float32(shape: [outputs.count, outputs.first?.count ?? 0, size], values: values)
    }
}
