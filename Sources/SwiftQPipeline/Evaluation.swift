import Foundation
import SwiftQCore
import SwiftQImages
import SwiftQInteger
import SwiftQONNX
import SwiftQPasses
import SwiftQRuntime

/// The `k` largest entries of `scores`, best first; ties go to the lower index (as a stable sort would).
public func topK(_ scores: UnsafeBufferPointer<Float>, _ k: Int) -> [Int] {
    var best: [Int] = []
    best.reserveCapacity(k + 1)
    for i in scores.indices {
        let v = scores[i]
        if best.count == k, let last = best.last, !(v > scores[last]) { continue }
        var pos = best.count
        while pos > 0 && v > scores[best[pos - 1]] { pos -= 1 }
        best.insert(i, at: pos)
        if best.count > k { best.removeLast() }
    }
    return best
}

/// The model the float runtime runs for `model`: rewritten by `Rewriter.execution` (folds and fused activations,
/// same results up to float rounding, less work), or `model` itself when it holds QuantizeLinear or
/// DequantizeLinear nodes (a quantized model runs as it is written) or a rewrite does not apply.
public func executionModel(_ model: Model) -> Model {
    if model.graph.nodes.contains(where: { $0.opType == "QuantizeLinear" || $0.opType == "DequantizeLinear" }) { return model }
    return (try? Rewriter.execution.run(model).model) ?? model
}

/// One classifier being evaluated: its interpreter and what it has scored so far.
public final class ClassifierRun: @unchecked Sendable {
    public let path: String
    public let interpreter: Interpreter
    public let inputName: String
    public let outputName: String
    /// Top-1 / top-5 hits over the labelled images seen so far.
    public private(set) var top1 = 0
    public private(set) var top5 = 0
    public private(set) var labelled = 0
    public private(set) var images = 0
    /// Seconds spent inside the network.
    public private(set) var networkSeconds = 0.0

    /// The integer runtime, for a swiftq int8 model whose weight file lies beside it (OUT.swq).
    public let integer: IntegerProgram?
    /// Why the integer runtime is not used for a model that asks for it, if so.
    public let warning: String?
    /// "float" or "integer": which runtime scores this model.
    public var runtime: String { integer == nil ? "float" : "integer" }
    /// The nodes the integer runtime ran in float, by op type ("Sigmoid 1, ConvTranspose 2"), empty when none.
    public var floatIslands: String {
        guard let i = integer else { return "" }
        return i.floatOps.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    public init(path: String, model: Model, options: Interpreter.Options) throws {
        self.path = path
        interpreter = try Interpreter(model: executionModel(model), options: options)
        (integer, warning) = try IntegerProgram.beside(modelPath: path, model: model)
        integer?.threads = options.threads
        guard interpreter.inputNames.count == 1 else {
            throw PipelineError("\(path): a classifier takes one image input; this model has \(interpreter.inputNames.count) (\(interpreter.inputNames.joined(separator: ", ")))")
        }
        inputName = interpreter.inputNames[0]
        outputName = interpreter.outputNames[0]
    }

    private init(copying run: ClassifierRun, threads: Int) throws {
        path = run.path
        interpreter = Interpreter(sharingWeightsOf: run.interpreter, threads: threads)
        integer = run.integer?.copy(threads: threads)
        warning = run.warning
        inputName = run.inputName
        outputName = run.outputName
    }

    /// A run of the same model with its own buffers, `threads` threads and no counts, to score other images beside
    /// this one (`absorb` adds its counts back).
    public func copy(threads: Int) throws -> ClassifierRun { try ClassifierRun(copying: self, threads: threads) }

    /// Adds the counts of `copies` that scored other images. Their network seconds, which overlapped, count as the
    /// busy time of one of them (the sum over the copies divided by their number).
    public func absorb(_ copies: [ClassifierRun]) {
        guard !copies.isEmpty else { return }
        for c in copies {
            top1 += c.top1; top5 += c.top5; labelled += c.labelled; images += c.images
        }
        networkSeconds += copies.reduce(0) { $0 + $1.networkSeconds } / Double(copies.count)
    }

    /// Bytes the run holds between images (its interpreter's; an integer program is not counted).
    public var heldBytes: Int { interpreter.heldBytes }

    /// Runs one preprocessed image; returns every output by name.
    public func outputs(_ input: RTensor) throws -> [String: RTensor] {
        let start = DispatchTime.now().uptimeNanoseconds
        let out = try integer?.run([inputName: input]) ?? interpreter.run([inputName: input])
        networkSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        images += 1
        return out
    }

    /// Runs one preprocessed image; returns the scores of the first output (flattened).
    public func classify(_ input: RTensor) throws -> RTensor { try outputs(input)[outputName]! }

    /// Counts the top-5 of `scores` against `label`; returns the top-1 class.
    public func score(_ scores: RTensor, label: Int?) -> Int {
        let best = topK(UnsafeBufferPointer(start: scores.f, count: scores.count), 5)
        if let label {
            labelled += 1
            if best.first == label { top1 += 1 }
            if best.contains(label) { top5 += 1 }
        }
        return best.first ?? -1
    }

    public var top1Percent: Double? { labelled > 0 ? 100 * Double(top1) / Double(labelled) : nil }
    public var top5Percent: Double? { labelled > 0 ? 100 * Double(top5) / Double(labelled) : nil }
}

/// Images of a dataset, decoded and preprocessed ahead on a background thread, handed out in order.
public struct ImageStream {
    public let dataset: Dataset
    public let items: [Dataset.Item]
    let prefetcher: Prefetcher

    public init(dataset: Dataset, items: [Dataset.Item], preprocessing: Preprocessing, limits: ImageLimits = ImageLimits()) {
        self.dataset = dataset
        self.items = items
        let prep = preprocessing
        prefetcher = Prefetcher(paths: items.map(dataset.fullPath)) { path in
            try prep.input(contentsOf: path, limits: limits)
        }
    }

    /// The input tensor for image `i` (0, 1, 2, … in order), or why it could not be made.
    public func take(_ i: Int) -> Prefetcher.Result { prefetcher.take(i) }

    /// Seconds spent decoding and preprocessing, and seconds the consumer waited for an image (`Prefetcher.seconds`).
    public var seconds: (preparing: Double, waiting: Double) { prefetcher.seconds }

    public func cancel() { prefetcher.cancel() }
}

/// A problem with the job as a whole (not one node or one file), as one line for the user.
public struct PipelineError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Signal-to-quantization-noise ratio per activation, 10·log10(Σ f² / Σ (f − q)²) in dB over the images seen:
/// the float model's tensor f against the int8 model's dequantized activation q of the same name.
public struct SQNRMeter {
    private var sums: [String: (signal: Double, noise: Double)] = [:]
    public private(set) var images = 0

    public init() {}

    /// Adds one image: the float model's observed tensors and the integer runtime's activations.
    public mutating func add(float: [String: RTensor], quantized: [(name: String, value: RTensor)]) {
        add(SQNRMeter.sums(float: float, quantized: quantized))
    }

    /// One image's Σ f² and Σ (f − q)² per activation (in the order given), for `add`.
    public static func sums(float: [String: RTensor], quantized: [(name: String, value: RTensor)]) -> [(name: String, signal: Double, noise: Double)] {
        quantized.compactMap { name, q in
            guard let f = float[name], f.count == q.count, f.dtype == .float else { return nil }
            var signal = 0.0, noise = 0.0
            for i in 0..<f.count {
                let a = Double(f.f[i]), d = a - Double(q.f[i])
                signal += a * a; noise += d * d
            }
            return (name, signal, noise)
        }
    }

    /// Adds one image's sums (`sums`).
    public mutating func add(_ image: [(name: String, signal: Double, noise: Double)]) {
        images += 1
        for (name, signal, noise) in image {
            let s = sums[name] ?? (0, 0)
            sums[name] = (s.signal + signal, s.noise + noise)
        }
    }

    /// The `k` activations with the lowest SQNR (dB; +inf when there is no noise).
    public func lowest(_ k: Int) -> [(name: String, db: Double)] {
        sums.map { ($0.key, $0.value.noise > 0 ? 10 * log10($0.value.signal / $0.value.noise) : .infinity) }
            .sorted { $0.1 < $1.1 }.prefix(k).map { $0 }
    }
}
