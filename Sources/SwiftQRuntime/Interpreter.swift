import Foundation
import SwiftQCore
import SwiftQKernels

/// Runs a model's graph on float (and small integer) tensors.
///
/// Built once per model: nodes in topological order, each compiled to an `Operator` from `operatorTable`,
/// constants converted once. Running reuses buffers through the context's pool, so after the first image
/// of a given size no tensor memory is allocated except for the returned outputs.
public final class Interpreter: @unchecked Sendable {
    /// A class, so that the run loop takes each step with one retain instead of copying its fields.
    final class Step {
        let op: Operator
        let inputs: [Int]   // value slot, or -1 for an omitted input
        let outputs: [Int]
        let node: Node

        init(op: Operator, inputs: [Int], outputs: [Int], node: Node) {
            self.op = op
            self.inputs = inputs
            self.outputs = outputs
            self.node = node
        }
    }

    public struct Options: Sendable {
        /// Threads for kernels (both cores by default).
        public var threads: Int
        /// Fold BatchNormalization and Relu/Clip into the preceding Conv (faster; the intermediate values
        /// then are not observable), and run some pairs as one step (`fusePairs`: a 1x1 Conv feeding a depthwise
        /// Conv, a direct 3x3 Conv feeding a MaxPool; the value between them stays observable: a run with an
        /// observer runs the pair unfused).
        public var fuse: Bool
        /// With `fuse`, also run a SiLU (`x · Sigmoid(x)`) or HardSwish after a Conv as the Conv's activation: the
        /// Conv's output before it is then not observable (calibration, which measures it, turns this off).
        public var fuseActivations = true
        /// Run 3x3 stride-1 convolutions by Winograd's F(4x4, 3x3) where it applies (`Fast.conv`): 4x fewer
        /// multiply-adds, rounding at the scale of the layer's largest values (about 1e-5 of them). Calibration turns
        /// it off: its ranges, and so the quantized model, stay those of the direct form.
        public var winograd = true
        /// Use only the reference kernels.
        public var referenceOnly: Bool
        /// Accumulate the time spent in each op type (`Interpreter.profile`).
        public var profile = false

        public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, fuse: Bool = true, referenceOnly: Bool = false) {
            self.threads = threads
            self.fuse = fuse
            self.referenceOnly = referenceOnly
        }
    }

    public let model: Model
    /// The options it was built with.
    public let options: Options
    public let context: ExecutionContext
    public let inputNames: [String]
    public let outputNames: [String]
    let steps: [Step]
    let slotNames: [String]
    let constantSlots: [Int: RTensor]
    let inputSlots: [Int]
    let outputSlots: [Int]
    let useCounts: [Int]
    let inputTypes: [DType?]
    let concatPlan: ConcatPlan
    /// Weights to fetch ahead, by the step that starts the fetch (`fetchAheadPlan`).
    let fetchAhead: [Int: UnsafeRawBufferPointer]
    /// Seconds spent per op type over all runs so far, when `Options.profile` is on.
    public private(set) var profile: [String: Double] = [:]
    /// Seconds spent per node (display name, op type, first output's shape), in run order, with `Options.profile`:
    /// `seconds` over all runs so far, `best` the fastest single run of the node (on a noisy machine the mean of a
    /// node swings with whatever else ran; its best is what the kernel can do there).
    /// `macs`: the multiply-accumulates of a Conv, ConvTranspose, Gemm or MatMul step (0 for other ops).
    public var nodeProfile: [(node: String, opType: String, shape: [Int], seconds: Double, best: Double, macs: Int)] {
        // Empty until the first profiled run sizes the tables (it read past them before).
        stepSeconds.indices.map { (steps[$0].node.displayName, steps[$0].node.opType, stepShapes[$0], stepSeconds[$0], stepBest[$0], stepMACs[$0]) }
    }
    private var stepSeconds: [Double] = []
    private var stepBest: [Double] = []
    private var stepShapes: [[Int]] = []
    private var stepMACs: [Int] = []
    let profiling: Bool

    /// The kernels' context for a run with `options`.
    private static func context(_ options: Options) -> ExecutionContext {
        ExecutionContext(threads: options.threads, referenceOnly: options.referenceOnly, winograd: options.winograd)
    }

    public init(model: Model, options: Options = Options()) throws {
        var graph = model.graph
        if options.fuse { graph = fuseForExecution(graph, opset: model.opset, smoothActivations: options.fuseActivations) }
        self.model = model
        self.options = options
        profiling = options.profile
        context = Self.context(options)
        var slot: [String: Int] = [:]
        var names: [String] = []
        func id(_ name: String) -> Int {
            if let s = slot[name] { return s }
            slot[name] = names.count
            names.append(name)
            return names.count - 1
        }
        var constants: [String: Tensor] = graph.initializerTable
        let dataInputs = graph.dataInputs
        inputNames = dataInputs.map(\.name)
        inputTypes = dataInputs.map(\.dtype)
        inputSlots = dataInputs.map { id($0.name) }
        let order = try graph.topologicalOrder()
        var steps: [Step] = []
        for index in order {
            let node = graph.nodes[index]
            if node.opType == "Constant", node.isDefaultDomain, let value = try constantValue(node) {
                if let out = node.outputs.first { constants[out] = value }
                continue
            }
            guard node.isDefaultDomain, let factory = operatorTable[node.opType] else {
                throw RuntimeError.unsupported(node: node.displayName, opType: node.qualifiedOpType,
                                               what: "swiftq's runtime has no kernel for this operator")
            }
            let setup = OperatorSetup(node: node, opset: model.opset, constants: node.inputs.map { $0.isEmpty ? nil : constants[$0] })
            let op = try factory(setup)
            let varying = node.inputs.filter { !$0.isEmpty && constants[$0] == nil }
            if varying.isEmpty && !node.inputs.isEmpty && !randomOps.contains(node.opType) {
                // Every input is known: evaluate once now (exporters' ConstantOfShape weights, shape chains).
                let outs = try op.run(node.inputs.map { $0.isEmpty ? nil : RTensor(constants[$0]!) }, ExecutionContext(threads: options.threads))
                for (k, name) in node.outputs.enumerated() where !name.isEmpty && k < outs.count { constants[name] = outs[k].tensor() }
                continue
            }
            steps.append(Step(op: op, inputs: node.inputs.map { $0.isEmpty ? -1 : id($0) }, outputs: node.outputs.map { $0.isEmpty ? -1 : id($0) }, node: node))
        }
        outputNames = graph.outputs.map(\.name)
        outputSlots = graph.outputs.map { id($0.name) }
        if options.fuse { steps = fusePairs(steps, graphOutputs: Set(outputSlots), names: names, threads: options.threads) }
        var cs: [Int: RTensor] = [:]
        for (name, t) in constants where slot[name] != nil { cs[slot[name]!] = RTensor(t) }
        constantSlots = cs
        var uses = [Int](repeating: 0, count: names.count)
        for s in steps { for i in s.inputs where i >= 0 { uses[i] += 1 } }
        for o in outputSlots { uses[o] += 1 << 30 }
        useCounts = uses
        slotNames = names
        self.steps = steps
        concatPlan = options.fuse && !options.referenceOnly ? ConcatPlan(steps, useCounts: uses) : .none
        fetchAhead = options.referenceOnly ? [:] : fetchAheadPlan(steps)
    }

    /// An interpreter of the same steps that runs beside `other` on `threads` threads: buffers and kernel scratch of
    /// its own, `other`'s constants and packed weights (read-only while they run). Image workers thus hold the
    /// weights once, not once each, and their runs share them in cache.
    public init(sharingWeightsOf other: Interpreter, threads: Int) {
        model = other.model
        var options = other.options
        options.threads = threads
        options.profile = false
        self.options = options
        profiling = false
        context = Self.context(options)
        inputNames = other.inputNames
        outputNames = other.outputNames
        steps = other.steps.map { s in
            Step(op: (s.op as? OwnsScratch)?.withOwnScratch(threads: threads) ?? s.op, inputs: s.inputs, outputs: s.outputs, node: s.node)
        }
        slotNames = other.slotNames
        constantSlots = other.constantSlots
        inputSlots = other.inputSlots
        outputSlots = other.outputSlots
        useCounts = other.useCounts
        inputTypes = other.inputTypes
        concatPlan = other.concatPlan
        fetchAhead = other.fetchAhead
    }

    /// The steps that start fetching a later step's weights into cache (`fetchAheadPlan`), with the bytes each fetches.
    public var fetchesAhead: [(step: String, bytes: Int)] {
        fetchAhead.keys.sorted().map { (steps[$0].node.displayName, fetchAhead[$0]!.count) }
    }

    /// How many Concats the Convs that feed them assemble in place (`ConcatPlan`).
    public var concatsAssembledInPlace: Int { concatPlan.concats.count }

    /// Bytes the interpreter holds between runs: its constants and the buffers its last run used.
    public var heldBytes: Int {
        constantSlots.values.reduce(0) { $0 + $1.count * ($1.dtype.byteSize ?? 8) } + context.pool.freeBytes
    }

    /// Runs the graph. `feeds` maps input names to tensors; `observe` sees every value a node produces
    /// (name, tensor) while it is alive. Returns the graph outputs by name.
    public func run(_ feeds: [String: RTensor], observe: ((String, RTensor) -> Void)? = nil) throws -> [String: RTensor] {
        var values = [RTensor?](repeating: nil, count: slotNames.count)
        for (s, t) in constantSlots { values[s] = t }
        for (k, name) in inputNames.enumerated() {
            guard let t = feeds[name] else { throw RuntimeError.badFeed(input: name, what: "not given") }
            if let want = inputTypes[k], want != t.dtype, !(want.isFloatingPoint && t.dtype == .float) {
                throw RuntimeError.badFeed(input: name, what: "expected \(want), got \(t.dtype)")
            }
            values[inputSlots[k]] = t
        }
        var remaining = useCounts
        if profiling && stepSeconds.isEmpty {
            stepSeconds = Array(repeating: 0, count: steps.count)
            stepBest = Array(repeating: .infinity, count: steps.count)
            stepShapes = Array(repeating: [], count: steps.count)
            stepMACs = Array(repeating: 0, count: steps.count)
        }
        // Concats whose slices their Convs write in place (`ConcatPlan`); not for an observer, which sees each value.
        var assembly = observe == nil && !concatPlan.isEmpty ? ConcatAssembly(concatPlan) : nil
        for (index, step) in steps.enumerated() {
            var outs: [RTensor] = []
            var inPlaceShape: [Int]?
            // `ins` ends with this scope, so that recycling below sees each spent input uniquely referenced (a debug
            // build keeps a local alive to the end of its scope).
            do {
                let ins = step.inputs.map { $0 >= 0 ? values[$0] : nil }
                let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
                if let later = fetchAhead[index] { Fast.fetchAhead(later) }
                if let y = assembly?.finished(step: index) {
                    outs = [y]
                } else {
                    for (k, i) in step.inputs.enumerated() where i >= 0 && ins[k] == nil {
                        throw RuntimeError.invalidInput(node: step.node.displayName, opType: step.node.opType, what: "input '\(slotNames[i])' has no value")
                    }
                    if let observe, let pair = step.op as? FusedPair {
                        outs = try pair.unfused(ins, context, observe: observe)
                    } else if let shape = try assembly?.write(step: index, steps, ins, context, values: &values) {
                        inPlaceShape = shape
                    } else {
                        outs = try step.op.run(ins, context)
                    }
                }
                if profiling {
                    let t = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    profile[step.node.opType, default: 0] += t
                    stepSeconds[index] += t
                    stepBest[index] = min(stepBest[index], t)
                    // A Conv that wrote into a concatenation returned no tensor, only its output's shape.
                    let shape = inPlaceShape ?? outs.first?.shape
                    stepShapes[index] = shape ?? []
                    if let pair = step.op as? FusedPair, let x = ins.first ?? nil, let y = outs.first {
                        stepMACs[index] = pair.multiplyAccumulates(input: x, output: y)
                    } else if let shape {
                        stepMACs[index] = multiplyAccumulates(step.node, inputs: ins, outputCount: shape.reduce(1, *))
                    }
                }
            }
            for (k, o) in step.outputs.enumerated() where o >= 0 && k < outs.count {
                values[o] = outs[k]
                observe?(slotNames[o], outs[k])
            }
            for i in step.inputs where i >= 0 {
                remaining[i] -= 1
                if remaining[i] == 0 && constantSlots[i] == nil { recycle(&values[i]) }
            }
            for o in step.outputs where o >= 0 && remaining[o] == 0 { recycle(&values[o]) }
        }
        context.pool.endRun()
        if !fetchAhead.isEmpty { Fast.fetchAhead(nil) }
        var result: [String: RTensor] = [:]
        for (k, name) in outputNames.enumerated() {
            guard let t = values[outputSlots[k]] else { throw RuntimeError.badFeed(input: name, what: "graph output was not computed") }
            result[name] = t
        }
        return result
    }

    private func recycle(_ slot: inout RTensor?) {
        guard var t = slot else { return }
        slot = nil
        if isKnownUniquelyReferenced(&t.storage) { context.pool.give(t.storage) }
    }
}

/// Where to fetch large streamed weights ahead: for a step that reads over 1 MiB of weights from memory each run
/// (`StreamsWeights`: MobileNetV2's and EfficientNet-Lite0's 1280 x 1000 classifier, 5 MB), the nearest of the 4
/// steps before it that is a convolution (the 7x7 head, compute-bound) starts the fetch.
func fetchAheadPlan(_ steps: [Interpreter.Step]) -> [Int: UnsafeRawBufferPointer] {
    var plan: [Int: UnsafeRawBufferPointer] = [:]
    for (j, s) in steps.enumerated() {
        guard let w = (s.op as? StreamsWeights)?.streamedWeights, w.count > 1 << 20 else { continue }
        if let i = (max(0, j - 4)..<j).reversed().first(where: { steps[$0].op is ConvOp || steps[$0].op is FusedPair }) { plan[i] = w }
    }
    return plan
}

/// Steps with every pair the runtime runs as one step merged, named after both ("a+b"): a 1x1 Conv whose output
/// only the next step reads, a depthwise Conv (`ExpandDepthwiseOp`) or an Add (`ConvAddOp`), or a direct 3x3 Conv
/// and the MaxPool that alone reads it (`ConvMaxPoolOp`). The merged step reads only the data input (and the Add's
/// other operand): the weights are its operators' constants.
func fusePairs(_ steps: [Interpreter.Step], graphOutputs: Set<Int>, names: [String], threads: Int) -> [Interpreter.Step] {
    var readers = [Int](repeating: 0, count: names.count)
    for s in steps { for i in s.inputs where i >= 0 { readers[i] += 1 } }
    var out: [Interpreter.Step] = []
    var i = 0
    while i < steps.count {
        let a = steps[i]
        if i + 1 < steps.count, a.outputs.count == 1, let mid = a.outputs.first, mid >= 0, readers[mid] == 1, !graphOutputs.contains(mid),
           let x = a.inputs.first, x >= 0, steps[i + 1].inputs.first == mid,
           let pair: FusedPair = ExpandDepthwiseOp(a.op, steps[i + 1].op, intermediate: names[mid], threads: threads)
               ?? ConvMaxPoolOp(a.op, steps[i + 1].op, intermediate: names[mid], threads: threads) {
            let b = steps[i + 1]
            var node = b.node
            node.name = "\(a.node.displayName)+\(b.node.displayName)"
            node.inputs = [a.node.inputs[0]]
            out.append(Interpreter.Step(op: pair, inputs: [x], outputs: b.outputs, node: node))
            i += 2
            continue
        }
        // A 1x1 Conv and the Add of its output to another value (`ConvAddOp`): the step reads the Conv's input and that value.
        if i + 1 < steps.count, a.outputs.count == 1, let mid = a.outputs.first, mid >= 0, readers[mid] == 1, !graphOutputs.contains(mid),
           let x = a.inputs.first, x >= 0, steps[i + 1].inputs.count == 2, let k = steps[i + 1].inputs.firstIndex(of: mid),
           case let r = steps[i + 1].inputs[1 - k], r >= 0, r != mid,
           let pair = ConvAddOp(a.op, steps[i + 1].op, convFirst: k == 0, intermediate: names[mid]) {
            let b = steps[i + 1]
            var node = b.node
            node.name = "\(a.node.displayName)+\(b.node.displayName)"
            node.inputs = [a.node.inputs[0], b.node.inputs[1 - k]]
            node.opType = a.node.opType   // the profile's time by op type counts the step as the Conv it mostly is
            out.append(Interpreter.Step(op: pair, inputs: [x, r], outputs: b.outputs, node: node))
            i += 2
            continue
        }
        out.append(a)
        i += 1
    }
    return out
}

/// The multiply-accumulates of one run of a Conv (output elements × weights per output channel), ConvTranspose
/// (input elements × weights per input channel), Gemm or MatMul (output elements × the inner dimension); 0 otherwise.
/// `outputCount`: the elements of the (first) output.
func multiplyAccumulates(_ n: Node, inputs: [RTensor?], outputCount: Int) -> Int {
    guard inputs.count >= 2, let a = inputs[0], let w = inputs[1], w.rank >= 1 else { return 0 }
    switch n.opType {
    case "Conv": return w.shape[0] > 0 ? outputCount * (w.count / w.shape[0]) : 0
    case "ConvTranspose": return w.shape[0] > 0 ? a.count * (w.count / w.shape[0]) : 0
    case "Gemm": return a.rank == 2 ? outputCount * ((n.int("transA") ?? 0) != 0 ? a.shape[0] : a.shape[1]) : 0
    case "MatMul": return outputCount * (a.shape.last ?? 0)
    default: return 0
    }
}

/// Ops whose output is not a function of their inputs: never evaluated ahead of time.
let randomOps: Set<String> = ["RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"]

/// The tensor of a Constant node (value, or the value_float(s)/value_int(s) forms).
func constantValue(_ node: Node) throws -> Tensor? {
    if let t = node.tensor("value") { return t }
    if let v = node.float("value_float") { return Tensor(floats: [v], shape: []) }
    if let v = node.floats("value_floats") { return Tensor(floats: v, shape: [v.count]) }
    if let v = node.int("value_int") { return Tensor(int64s: [v], shape: []) }
    if let v = node.ints("value_ints") { return Tensor(int64s: v, shape: [v.count]) }
    throw RuntimeError.unsupported(node: node.displayName, opType: "Constant", what: "only tensor, float(s) and int(s) values")
}
