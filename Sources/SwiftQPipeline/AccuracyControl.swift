import Foundation
import SwiftQCore
import SwiftQImages
import SwiftQInteger
import SwiftQONNX
import SwiftQQuantize
import SwiftQRuntime

/// Images held in memory for many evaluations of model variants: the preprocessed inputs, their labels, and the
/// float model's output on each (the reference every variant is measured against).
public struct EvaluationSet {
    public let inputName: String
    /// Each input as a float tensor, or as the bytes its pixels were (`Preprocessing.bytes(of:)`, a quarter of
    /// the memory) with the shape.
    enum Stored {
        case tensor(RTensor)
        case bytes([UInt8], shape: [Int])
    }
    var stored: [Stored] = []
    /// How images become floats again (nil: inputs given as tensors), and its `byteTable`.
    let preprocessing: Preprocessing?
    let byteTable: [Float]
    public var labels: [Int?] = []
    /// The float outputs compared, in the graph's order.
    public private(set) var outputNames: [String] = []
    /// The float model's outputs per image (in `outputNames` order), flattened.
    public var reference: [[[Float]]] = []
    /// The first output's shape on the first image.
    public private(set) var firstOutputShape: [Int] = []
    /// The first output holds class scores ([N, K] or [N, K, 1, 1]): top-1 and agreement are read from it.
    public var classScores: Bool { OutputFidelity.classCount(firstOutputShape) != nil }
    /// The float model's top-1 (percent of the labelled images), nil without labels or class scores.
    public var floatTop1: Double?

    /// Decodes `items` (skipping, with a warning, those that fail) and runs them through `float`.
    public init(_ float: Interpreter, dataset: Dataset, items: [Dataset.Item], preprocessing: Preprocessing, limits: ImageLimits,
                inputShape: [Int], events: ImageJobEvents = ImageJobEvents()) throws {
        inputName = float.inputNames[0]
        self.preprocessing = preprocessing
        byteTable = preprocessing.byteTable
        let stream = ImageStream(dataset: dataset, items: items, preprocessing: preprocessing, limits: limits)
        defer { stream.cancel() }
        var paths: [String] = []
        for (i, item) in items.enumerated() {
            switch stream.take(i) {
            case .failed(let why): events.warning("skipped \(why)")
            case .tensor(let pixels, let shape):
                let x = RTensor(floats: pixels, shape: preprocessing.mode == .fit32 ? shape : inputShape)
                stored.append(preprocessing.bytes(of: pixels).map { .bytes($0, shape: x.shape) } ?? .tensor(x))
                labels.append(item.label)
                paths.append(item.path)
                try addReference(float.run([inputName: x]), outputs: float.outputNames)
            }
            events.progress(i + 1, "")
        }
        guard !stored.isEmpty else { throw PipelineError("every evaluation image failed to load (\(items.count) of \(items.count))") }
        if let why = dropForeignLabels(paths: paths) { events.warning(why) }
        floatTop1 = top1(reference.map { $0[0] })
    }

    /// Labels past the model's classes are not this model's (ImageNet labels on a 2-class model): counted, every
    /// image would be wrong for the float and the quantized model alike, and a top-1 budget would hold at once.
    /// The labels are dropped, so budgets read the disagreement with float; returns the warning saying so.
    private mutating func dropForeignLabels(paths: [String]) -> String? {
        guard let classes = OutputFidelity.classCount(firstOutputShape),
              let k = labels.firstIndex(where: { $0.map { $0 < 0 || $0 >= classes } ?? false }) else { return nil }
        let why = "\(k < paths.count ? paths[k] : "image \(k)") has label \(labels[k]!) but the model scores \(classes) classes: "
            + "the labels are not this model's; measuring the disagreement with the float model instead of top-1"
        labels = labels.map { _ in nil }
        return why
    }

    /// The number of inputs.
    public var count: Int { stored.count }

    /// Input `k` as the network takes it.
    public func input(_ k: Int) -> RTensor {
        switch stored[k] {
        case .tensor(let t): return t
        case .bytes(let b, let shape):
            let t = RTensor(dtype: .float, shape: shape)
            b.withUnsafeBufferPointer { b in byteTable.withUnsafeBufferPointer { preprocessing!.floats(fromBytes: b, table: $0, into: t.f) } }
            return t
        }
    }

    /// `items` for a calibrated model: through its float interpreter, at the input shape calibration used.
    public init(_ c: CalibratedModel, dataset: Dataset, items: [Dataset.Item], preprocessing: Preprocessing, limits: ImageLimits,
                events: ImageJobEvents = ImageJobEvents()) throws {
        try self.init(c.job.interpreter, dataset: dataset, items: items, preprocessing: preprocessing, limits: limits,
                      inputShape: c.inputShapes.values.first!, events: events)
    }

    /// Inputs already preprocessed (arrays, tests), with their labels (nil: unlabelled).
    public init(_ float: Interpreter, inputs: [RTensor], labels: [Int?]) throws {
        inputName = float.inputNames[0]
        preprocessing = nil
        byteTable = []
        stored = inputs.map { .tensor($0) }
        self.labels = labels
        for x in inputs { try addReference(float.run([inputName: x]), outputs: float.outputNames) }
        _ = dropForeignLabels(paths: [])
        floatTop1 = top1(reference.map { $0[0] })
    }

    /// Keeps one image's float outputs: those of `outputs` that hold floats (the first image decides which).
    private mutating func addReference(_ out: [String: RTensor], outputs: [String]) throws {
        if reference.isEmpty {
            outputNames = outputs.filter { out[$0]?.dtype == .float }
            guard let first = outputNames.first else { throw PipelineError("the model has no float output to compare") }
            firstOutputShape = out[first]!.shape
        }
        reference.append(try outputNames.map { name in
            guard let t = out[name], t.dtype == .float else { throw PipelineError("output '\(name)' is missing or not float on an evaluation image") }
            return t.floatArray()
        })
    }

    /// Percent of the labelled images whose top class (of the first output's scores) is their label; nil without
    /// labels or class scores.
    func top1(_ outputs: [[Float]]) -> Double? {
        guard classScores else { return nil }
        var hits = 0, labelled = 0
        for (o, l) in zip(outputs, labels) {
            guard let l else { continue }
            labelled += 1
            if argmax(o) == l { hits += 1 }
        }
        return labelled > 0 ? 100 * Double(hits) / Double(labelled) : nil
    }

    func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] < v[$1] || (v[$0] == v[$1] && $0 > $1) } ?? -1 }
}

/// How a model variant compares with the float model on an `EvaluationSet`.
public struct VariantScore: Sendable, Codable, Equatable {
    /// Top-1 points below the float model's (nil without labels or class scores).
    public var top1Drop: Double?
    /// Percent of images whose top class is the float model's (nil when the first output holds no class scores).
    public var agreement: Double?
    /// Output SQNR against the float model, in dB, over all images: the lowest of the outputs'.
    public var sqnr: Double
    /// What `--max-drop` is checked against: the top-1 drop, or without labels the disagreement with the float
    /// model; nil without class scores.
    public var drop: Double? { top1Drop ?? agreement.map { 100 - $0 } }

    public init(top1Drop: Double?, agreement: Double?, sqnr: Double) {
        self.top1Drop = top1Drop
        self.agreement = agreement
        self.sqnr = sqnr
    }
}

/// What a mixed-precision plan must keep on the evaluation images: a top-1 drop (without labels, a disagreement
/// with float) of at most `maxDrop` points, an output SQNR (every output's) of at least `minSQNR` dB, or both.
public struct AccuracyBudget: Sendable, Equatable {
    public var maxDrop: Double?
    public var minSQNR: Double?
    public init(maxDrop: Double? = nil, minSQNR: Double? = nil) {
        self.maxDrop = maxDrop
        self.minSQNR = minSQNR
    }

    public func holds(_ s: VariantScore) -> Bool {
        if let maxDrop, !(s.drop.map { $0 <= maxDrop } ?? false) { return false }
        if let minSQNR, !(s.sqnr >= minSQNR) { return false }
        return true
    }
}

/// A weighted layer's precision in a mixed-precision plan: its weight bits, or float.
public enum LayerPrecision: Sendable, Equatable, Codable, CustomStringConvertible {
    case bits(Int)
    case float

    public var description: String { if case .bits(let b) = self { "\(b)-bit" } else { "float" } }
    /// One step up: below 8 bits to 8, 8 to float; nil from float.
    var next: LayerPrecision? { if case .bits(let b) = self { b < 8 ? .bits(8) : .float } else { nil } }
}

/// The damage one weighted layer does, measured two ways on an `EvaluationSet`.
public struct LayerSensitivity: Sendable, Codable, Equatable {
    public var node: String
    public var op: String
    public var precision: String
    /// Only this layer quantized (its weights at its bits, its input and output activations at 8 bits).
    public var alone: VariantScore
    /// Everything quantized but this layer, which is one step up (below 8 bits → 8; 8 → float).
    public var allBut: VariantScore
    /// allBut.sqnr − the fully quantized model's: what moving this layer up gains.
    public var gain: Double
}

/// One move of the accuracy-budget search.
public struct PrecisionStep: Sendable, Codable, Equatable {
    public var node: String
    public var from: String
    public var to: String
    /// The whole model's score after the move, on the evaluation images.
    public var score: VariantScore

    public init(node: String, from: String, to: String, score: VariantScore) {
        self.node = node
        self.from = from
        self.to = to
        self.score = score
    }
}

/// Quantizes one prepared model many times with different per-layer precisions, without calibrating again: the
/// calibration table and Hessians are fixed, GPTQ's rounding is computed once per layer and bit width.
public final class MixedPrecision {
    public let job: PreparedModel
    public let table: CalibrationTable
    let hessians: [Int: LayerHessian]
    public let options: QuantizeOptions
    let threads: Int
    /// The activation ranges and channel means of `table`: the same for every variant (per-layer precisions
    /// change weight bits and exclusions, never the method), so computed once, not at every evaluation.
    let ranges: [String: (lo: Float, hi: Float)]
    let channelMeans: [String: [Double]]
    /// The quantized weighted layers, graph order.
    public let layers: [Int]
    var rounded: [Int: [Int: RoundedWeight]] = [:]  // bits → node → rounding
    public private(set) var evaluations = 0

    public init(_ job: PreparedModel, table: CalibrationTable, hessians: [Int: LayerHessian], options: QuantizeOptions, threads: Int) {
        self.job = job
        self.table = table
        self.hessians = hessians
        self.options = options
        self.threads = threads
        ranges = table.ranges(method: options.method, percentile: options.percentile, bits: options.activationBits)
        channelMeans = table.tensors.compactMapValues(\.channelMeans)
        layers = job.plan.quantized.sorted().filter { opQuantizers[job.model.graph.nodes[$0].opType] == .weighted }
    }

    /// A calibrated model's variants: its table and Hessians.
    public convenience init(_ c: CalibratedModel, options: QuantizeOptions, threads: Int) {
        self.init(c.job, table: c.table, hessians: c.hessians, options: options, threads: threads)
    }

    /// Each layer's precision under `options` (its bits, or float when excluded).
    public var initial: [Int: LayerPrecision] {
        Dictionary(uniqueKeysWithValues: layers.map { ($0, .bits(options.weightBits(of: job.model.graph.nodes[$0]))) })
    }

    /// The options that give layer `i` the precision `p[i]` (float: excluded, with the activation fused to it).
    public func options(for p: [Int: LayerPrecision]) -> QuantizeOptions {
        var o = options
        for (i, prec) in p {
            let n = job.model.graph.nodes[i]
            switch prec {
            case .bits(let b): o.nodeWeightBits[n.reportName] = b
            case .float:
                // With its fused activation: the pair is one group (no Q/DQ between them, no statistics there).
                o.exclude.insert(n.reportName)
                if let a = job.plan.fused[i] { o.exclude.insert(job.model.graph.nodes[a].reportName) }
            }
        }
        return o
    }

    /// The quantized model for per-layer precisions `p` (layers not in `p` keep `options`), with every other node
    /// quantized (or, with `only`, every other weighted and requantizing node float: the layer alone).
    public func quantize(_ p: [Int: LayerPrecision], only: Int? = nil) throws -> QuantizedModel {
        var o = options(for: p)
        if let only {
            let g = job.model.graph
            // Ops that move values (MaxPool, Concat, reshapes) stay as they are: they only hand ranges on.
            for i in job.plan.quantized where i != only && job.plan.fused[only] != i {
                if let kind = opQuantizers[g.nodes[i].opType], kind == .weighted || kind == .requantize { o.exclude.insert(g.nodes[i].reportName) }
            }
        }
        let plan = job.plan(excluding: o.exclude)
        var byNode: [Int: RoundedWeight] = [:]
        if o.weightRounding == .gptq {
            for i in layers where plan.quantized.contains(i) {
                let bits = o.weightBits(of: job.model.graph.nodes[i])
                if rounded[bits] == nil {
                    var all = o
                    all.nodeWeightBits = [:]
                    all.weightBits = bits
                    rounded[bits] = roundWeights(job.model, plan: job.plan, hessians: hessians, options: all, threads: threads)
                }
                byNode[i] = rounded[bits]![i]
            }
        }
        return try materialize(job.model, plan: plan, ranges: ranges, channelMeans: channelMeans, rounded: byNode, options: o)
    }

    /// Runs `q` on the first `limit` images of `set` (the integer runtime; the float interpreter when `float`) and
    /// compares with the float model.
    public func score(_ q: QuantizedModel, on set: EvaluationSet, limit: Int? = nil, float: Bool = false) throws -> VariantScore {
        evaluations += 1
        let n = min(limit ?? set.count, set.count)
        let run: (RTensor) throws -> [String: RTensor]
        if float {
            let interpreter = try Interpreter(model: q.model, options: .init(threads: threads))
            run = { try interpreter.run([set.inputName: $0]) }
        } else {
            var m = q.model
            let bytes = try Int8WeightFile.serialize(q.weightRecords)
            m.metadataProps.append((Int8WeightFile.metadataKey, Int8WeightFile.metadataValue(bytes)))
            let program = try IntegerProgram(model: m, weights: bytes, weightsPath: "variant.swq")
            program.threads = threads
            run = { try program.run([set.inputName: $0]) }
        }
        var firstOutputs: [[Float]] = []
        var signal = Array(repeating: 0.0, count: set.outputNames.count), noise = signal
        var same = 0
        for k in 0..<n {
            let out = try run(set.input(k))
            for (o, name) in set.outputNames.enumerated() {
                guard let t = out[name], t.dtype == .float, t.count == set.reference[k][o].count else {
                    throw PipelineError("the quantized model's output '\(name)' is missing or of another size")
                }
                let y = t.floatArray()
                for (a, b) in zip(y, set.reference[k][o]) { signal[o] += Double(b) * Double(b); noise[o] += Double(a - b) * Double(a - b) }
                if o == 0 && set.classScores {
                    if set.argmax(y) == set.argmax(set.reference[k][0]) { same += 1 }
                    firstOutputs.append(y)
                }
            }
        }
        var sub = set
        sub.labels = Array(set.labels.prefix(n))
        let top1 = sub.top1(firstOutputs), floatTop1 = sub.top1(set.reference.prefix(n).map { $0[0] })
        let sqnr = zip(signal, noise).map { 10 * log10($0 / max($1, .leastNormalMagnitude)) }.min() ?? 0
        return VariantScore(top1Drop: top1.flatMap { t in floatTop1.map { $0 - t } },
                            agreement: set.classScores ? 100 * Double(same) / Double(max(n, 1)) : nil, sqnr: sqnr)
    }

    /// Every weighted layer's damage on the first `limit` images of `set`, most damaging first (by what moving it
    /// up gains). `progress` hears of each layer done.
    public func sensitivity(on set: EvaluationSet, limit: Int, progress: (Int, Int, String) -> Void = { _, _, _ in }) throws -> [LayerSensitivity] {
        let start = initial
        let base = try score(quantize(start), on: set, limit: limit)
        var out: [LayerSensitivity] = []
        for (k, i) in layers.enumerated() {
            let n = job.model.graph.nodes[i]
            let alone = try score(quantize(start, only: i), on: set, limit: limit, float: true)
            var moved = start
            moved[i] = start[i]!.next
            let allBut = try score(quantize(moved), on: set, limit: limit)
            out.append(LayerSensitivity(node: n.reportName, op: n.opType, precision: start[i]!.description, alone: alone, allBut: allBut,
                                        gain: allBut.sqnr - base.sqnr))
            progress(k + 1, layers.count, n.reportName)
        }
        return out.sorted { $0.gain > $1.gain }
    }

    /// The accuracy-budget search (as NNCF's quantize_with_accuracy_control): while `budget` does not hold on `set`,
    /// move the layer whose move gains most output SQNR (ranked on the first `rankLimit` images, every layer one
    /// step up; re-ranked after `rerank` moves) one step up, and evaluate again. Once the budget holds, each moved
    /// layer, last first, is tried one step down again and stays there when the budget still holds. Returns the
    /// plan, the moves (and the moves back), and whether the budget holds. A top-1 budget on a model whose first
    /// output holds no class scores (a detector) is refused: there is no top class to compare.
    public func fit(_ budget: AccuracyBudget, on set: EvaluationSet, rankLimit: Int, rerank: Int = 4,
                    step: (PrecisionStep) -> Void = { _ in }) throws -> (precisions: [Int: LayerPrecision], base: VariantScore, steps: [PrecisionStep], met: Bool) {
        if budget.maxDrop != nil && !set.classScores {
            throw PipelineError("--max-drop compares top classes, and the output '\(set.outputNames[0])' \(set.firstOutputShape) holds no class scores; give --min-sqnr DB (the output SQNR the model must keep) instead")
        }
        var p = initial
        let base = try score(quantize(p), on: set)
        var current = base
        var steps: [PrecisionStep] = []
        // The upward moves as precisions (the steps hold their printed names), for the pass back down.
        var moves: [(layer: Int, from: LayerPrecision, to: LayerPrecision)] = []
        func record(_ i: Int, _ from: LayerPrecision, _ to: LayerPrecision, _ score: VariantScore) {
            let s = PrecisionStep(node: job.model.graph.nodes[i].reportName, from: from.description, to: to.description, score: score)
            steps.append(s)
            step(s)
        }
        var ranking: [Int] = []
        var sinceRank = 0
        while !budget.holds(current) {
            if ranking.isEmpty || sinceRank >= rerank {
                let reference = try score(quantize(p), on: set, limit: rankLimit).sqnr
                var gains: [(Int, Double)] = []
                for i in layers {
                    guard let next = p[i]!.next else { continue }
                    var moved = p
                    moved[i] = next
                    gains.append((i, try score(quantize(moved), on: set, limit: rankLimit).sqnr - reference))
                }
                ranking = gains.sorted { $0.1 > $1.1 }.map(\.0)
                sinceRank = 0
            }
            guard let i = ranking.first(where: { p[$0]!.next != nil }) else { break }
            ranking.removeAll { $0 == i }
            let from = p[i]!
            p[i] = from.next
            current = try score(quantize(p), on: set)
            sinceRank += 1
            moves.append((i, from, p[i]!))
            record(i, from, p[i]!, current)
        }
        if budget.holds(current) {
            // Moves made early, on a coarse ranking, may not have been needed once later ones were made: each moved
            // layer, last moved first, goes back down one step if the budget still holds without it.
            for (i, from, to) in moves.reversed() where p[i] == to {
                var trial = p
                trial[i] = from
                let score = try self.score(quantize(trial), on: set)
                if budget.holds(score) {
                    p = trial
                    current = score
                    record(i, to, from, score)
                }
            }
        }
        return (p, base, steps, budget.holds(current))
    }
}

extension PreparedModel {
    /// The plan with `exclude` kept float (node names, output names or op types).
    public func plan(excluding exclude: Set<String>) -> QuantizationPlan {
        QuantizationPlan(model.graph, exclude: exclude, floatTypes: { !self.integerTensors.contains($0) })
    }
}
