import Foundation
import SwiftQCore
import SwiftQKernels
import SwiftQONNX
import SwiftQRuntime

/// swiftq's integer runtime: the Q/DQ graph and its int8 weight file lowered to integer steps.
///
/// Activations are 8-bit tensors in buffers the program owns (`QBuffer`: NHWC bytes for rank 4). Conv (any
/// group count) and Gemm/MatMul run the int8 GEMM with int32 accumulation and the int32 bias, depthwise Conv
/// its own kernel; each is requantized per channel by a `FixedPointMultiplier` (Relu/Clip before the
/// QuantizeLinear become the clamp), rounding as ONNX Runtime does. Add rescales both inputs as ONNX Runtime's
/// QLinearAdd (`AddRescale`); MaxPool,
/// AveragePool and GlobalAveragePool, Concat (requantizing inputs whose scale differs) and moves (Flatten,
/// Reshape, Squeeze, Unsqueeze, Transpose) work on the bytes. Float appears only where the graph keeps a node
/// float and at float outputs (a DequantizeLinear or a layer without a QuantizeLinear after it).
///
/// The first run for a set of input shapes plans the steps (allocating every buffer) while it executes them;
/// later runs with the same shapes replay the steps.
public final class IntegerProgram {
    let model: Model
    let order: [Int]
    let inits: [String: Tensor]
    let consumers: [String: [Int]]
    let producers: [String: Int]
    let graphOutputs: Set<String>
    /// The float kernels' context for the nodes the integer rules leave in float (with the program's threads).
    private(set) var context = ExecutionContext(threads: 1)
    /// Integer constants from the weight file, by initializer name.
    let integerConstants: [String: Int8WeightFile.Record]
    /// Threads for the integer kernels.
    public var threads = 1 { didSet { if threads != context.threads { context = ExecutionContext(threads: threads) } } }
    public private(set) var integerNodes = 0
    public var floatNodes: Int { floatOps.values.reduce(0, +) }
    /// The op types the last plan ran in float (islands between dequantized inputs and quantized outputs), with counts.
    public private(set) var floatOps: [String: Int] = [:]
    private var plan: Plan?
    /// Keep every activation of a run in memory of its own, for `activations()` afterwards. Off (the default), a
    /// plan's buffers share memory wherever their steps do not overlap (faster: the memory a layer writes is
    /// still in cache).
    public var keepsActivations = false
    /// Bytes of memory the current plan's 8-bit activations occupy (0 before the first run).
    public var activationBytes: Int {
        var seen = Set<ObjectIdentifier>()
        return plan?.buffers.reduce(0) { $0 + (seen.insert(ObjectIdentifier($1.memory)).inserted ? $1.memory.count : 0) } ?? 0
    }
    /// When set, runs after the first time each step (labelled "OpType name") into `stepSeconds`, and each
    /// step's fastest run into `stepBest` (on a shared machine a step's mean swings with whatever else ran).
    public var profile = false
    public private(set) var stepSeconds: [String: Double] = [:]
    public private(set) var stepBest: [String: Double] = [:]

    /// Loads `model` with its weight file: the file's CRC must be the one the model records, and every record
    /// must equal the model's initializer of that name.
    public init(model: Model, weights: [UInt8], weightsPath: String) throws {
        self.model = model
        guard let recorded = model.metadataProps.last(where: { $0.key == Int8WeightFile.metadataKey })?.value else {
            throw IntegerRuntimeError("the model records no int8 weight file (\(Int8WeightFile.metadataKey)); was it written by swiftq quantize?")
        }
        let records = try Int8WeightFile.read(weights, path: weightsPath)
        let crc = Int8WeightFile.metadataValue(weights)
        guard crc == recorded else {
            throw IntegerRuntimeError("\(weightsPath) does not belong to this model (CRC \(crc), the model records \(recorded))")
        }
        inits = model.graph.initializerTable
        for r in records {
            guard let t = inits[r.name], t.shape == r.shape, t.int64s().elementsEqual(r.values.lazy.map { Int64($0) }) else {
                throw IntegerRuntimeError("\(weightsPath): tensor '\(r.name)' differs from the model's initializer")
            }
        }
        integerConstants = Dictionary(records.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        order = try model.graph.topologicalOrder()
        consumers = model.graph.consumers()
        producers = model.graph.producers()
        graphOutputs = Set(model.graph.outputs.map(\.name))
    }

    /// A program of the same model and weights with its own buffers and `threads`, to run beside this one on
    /// another thread (the weights are shared, not copied; the plan is made again on its first run).
    public func copy(threads: Int) -> IntegerProgram { IntegerProgram(self, threads: threads) }

    private init(_ other: IntegerProgram, threads: Int) {
        model = other.model
        order = other.order
        inits = other.inits
        consumers = other.consumers
        producers = other.producers
        graphOutputs = other.graphOutputs
        integerConstants = other.integerConstants
        keepsActivations = other.keepsActivations
        self.threads = threads
        context = ExecutionContext(threads: threads)
    }

    /// The integer program of a swiftq int8 model whose weight file lies beside it (OUT.onnx → OUT.swq); nil for
    /// a model without one, or nil and a warning when the model records a weight file that is missing.
    public static func beside(modelPath path: String, model: Model) throws -> (IntegerProgram?, String?) {
        guard model.metadataProps.contains(where: { $0.key == Int8WeightFile.metadataKey }) else { return (nil, nil) }
        let weights = PathNames.sibling(of: path, suffix: ".swq")
        guard FileManager.default.fileExists(atPath: weights) else {
            return (nil, "\(path): its int8 weight file \(weights) is missing; running the Q/DQ graph on the float runtime (fake quantization)")
        }
        let bytes: Data
        do { bytes = try FileBytes.read(weights, maxBytes: Int(Int32.max)) } catch {
            throw IntegerRuntimeError("\(weights): cannot read the int8 weight file: \(error)")
        }
        return (try IntegerProgram(model: model, weights: [UInt8](bytes), weightsPath: weights), nil)
    }

    /// Runs one input; returns the graph outputs in float.
    public func run(_ feeds: [String: RTensor]) throws -> [String: RTensor] {
        let shapes = feeds.mapValues(\.shape)
        if let plan, plan.inputShapes == shapes, plan.threads == threads {
            plan.share(!keepsActivations)
            for (k, v) in feeds { plan.slots[k]?.f = v }
            if profile {
                for (k, step) in plan.steps.enumerated() {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    try step()
                    let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                    stepSeconds[plan.labels[k], default: 0] += t
                    stepBest[plan.labels[k]] = min(stepBest[plan.labels[k]] ?? .infinity, t)
                }
            } else {
                for step in plan.steps { try step() }
            }
            return try plan.outputs()
        }
        plan = nil
        let p = try Planner(self, feeds: feeds).build()
        plan = p
        integerNodes = p.integerNodes
        floatOps = p.floatOps
        let outputs = try p.outputs()
        p.share(!keepsActivations)   // after the planning run: its activations stay for `activations()` when wanted
        return outputs
    }

    /// The 8-bit activations of the last run, dequantized (NCHW), each named by the float tensor it stands for
    /// (the input of its QuantizeLinear); empty unless the run kept them (`keepsActivations`).
    public func activations() -> [(name: String, value: RTensor)] {
        guard let plan, !plan.sharing else { return [] }
        var seen = Set<ObjectIdentifier>()
        var out: [(String, RTensor)] = []
        for n in model.graph.nodes where n.opType == "QuantizeLinear" {
            guard let name = n.input(0), let q = plan.slots[n.outputs[0]]?.q, seen.insert(ObjectIdentifier(q)).inserted else { continue }
            out.append((name, q.dequantized()))
        }
        return out
    }

    // MARK: - graph patterns

    /// Activation scale, zero point and type of a QuantizeLinear/DequantizeLinear node (per tensor only).
    func params(_ n: Node) -> (scale: Float, zero: Int32, dtype: DType)? {
        guard let s = n.input(1).flatMap({ inits[$0] }), s.elementCount == 1 else { return nil }
        let z = n.input(2).flatMap { inits[$0] }
        guard (z?.elementCount ?? 1) == 1 else { return nil }
        let t = z?.dtype ?? .uint8
        guard t == .uint8 || t == .int8 else { return nil }
        return (s.floats()[0], Int32(z?.int64s().first ?? 0), t)
    }

    /// The QuantizeLinear reading `name` as its only reader, through an optional Relu/Clip: (Q node index,
    /// activation node index, clamp bounds in real values).
    func quantizer(after name: String) -> (q: Int, act: Int?, lo: Float, hi: Float)? {
        guard !graphOutputs.contains(name), let r = consumers[name], r.count == 1 else { return nil }
        let n = model.graph.nodes[r[0]]
        if n.opType == "QuantizeLinear" { return params(n) == nil ? nil : (r[0], nil, -.infinity, .infinity) }
        guard n.opType == "Relu" || n.opType == "Clip", let out = n.outputs.first, !graphOutputs.contains(out),
              let r2 = consumers[out], r2.count == 1, model.graph.nodes[r2[0]].opType == "QuantizeLinear", params(model.graph.nodes[r2[0]]) != nil else { return nil }
        var lo: Float = 0, hi: Float = .infinity
        if n.opType == "Clip" {
            lo = n.input(1).flatMap { inits[$0]?.floats().first } ?? -.infinity
            hi = n.input(2).flatMap { inits[$0]?.floats().first } ?? .infinity
        }
        return (r2[0], r[0], lo, hi)
    }

    /// The weight file record behind a DequantizeLinear output (int8 or int4 weights, int32 biases).
    func constant(_ name: String) -> Int8WeightFile.Record? {
        guard let p = producers[name] else { return nil }
        let dq = model.graph.nodes[p]
        guard dq.opType == "DequantizeLinear", let src = dq.input(0).flatMap(recordName) else { return nil }
        return integerConstants[src]
    }

    /// The weight file record a DequantizeLinear input stands for: its own, or the INT4 record a Cast to INT8
    /// widens (how swiftq writes INT4 weights so that ONNX Runtime fuses them into its int8 kernels).
    func recordName(_ name: String) -> String? {
        if integerConstants[name] != nil { return name }
        guard let c = producers[name].map({ model.graph.nodes[$0] }), c.opType == "Cast", c.int("to") == Int64(DType.int8.rawValue),
              let narrow = c.input(0), integerConstants[narrow]?.dtype == .int4 else { return nil }
        return narrow
    }

    func runFloatAll(_ n: Node, _ ins: [RTensor?]) throws -> [RTensor] {
        guard let factory = operatorTable[n.opType] else {
            throw IntegerRuntimeError("node '\(n.displayName)' (\(n.opType)): no kernel")
        }
        let op = try factory(OperatorSetup(node: n, opset: model.opset, constants: n.inputs.map { $0.isEmpty ? nil : inits[$0] }))
        return try op.run(ins, context)
    }
}

/// An 8-bit activation in memory a plan owns: bytes b = q − lo (an int8 tensor is stored as q + 128), NHWC for
/// rank 4 when `nhwc`, else in the logical (row-major) order; real = scale × (b − zero). 64 bytes of slack
/// follow the data (the GEMM reads up to 3 bytes past a row); the data starts on a 64-byte boundary.
///
/// A buffer the planner made (`uses` set while the plan is made) records the first and last step that touched
/// its bytes, so that after planning buffers whose steps do not overlap can share memory (`Plan.share`).
final class QBuffer {
    let shape: [Int]
    let nhwc: Bool
    let scale: Float
    /// The zero point in bytes (zero point − lo).
    let zero: Int32
    /// The zero point as the type holds it.
    var zeroPoint: Int32 { zero + dtype.integerRange!.lo }
    let dtype: DType
    let count: Int
    /// The memory the buffer lives in now.
    private(set) var memory: AlignedBuffer<UInt8>
    private var start: UnsafeMutablePointer<UInt8>
    /// The planner's record of steps while the plan is made; nil afterwards (and for buffers made elsewhere). A
    /// strong reference (a weak one costs a runtime call on every `bytes`), dropped when planning ends.
    var uses: BufferUses?
    /// The first and last step that touched the bytes (-1: none), and whether anything outside a step did.
    private(set) var firstStep = -1, lastStep = -1, touchedOutsideSteps = false

    var bytes: UnsafeMutablePointer<UInt8> {
        if let uses {
            if let step = uses.step {
                if firstStep < 0 { firstStep = step }
                lastStep = step
            } else {
                touchedOutsideSteps = true
            }
        }
        return start
    }

    init(shape: [Int], nhwc: Bool, scale: Float, zeroPoint: Int32, dtype: DType, uses: BufferUses? = nil) {
        self.shape = shape
        self.nhwc = nhwc && shape.count == 4
        self.scale = scale
        self.dtype = dtype
        zero = zeroPoint - dtype.integerRange!.lo
        count = shape.reduce(1, *)
        memory = AlignedBuffer(count: count + 64, repeating: 0)
        start = memory.p
        self.uses = uses
        uses?.buffers.append(self)
    }

    /// The same quantization, another shape and layout (recorded by the same planner).
    func like(shape: [Int], nhwc: Bool) -> QBuffer {
        QBuffer(shape: shape, nhwc: nhwc, scale: scale, zeroPoint: zeroPoint, dtype: dtype, uses: uses)
    }

    /// Bytes this buffer needs, slack included.
    var bytesNeeded: Int { count + 64 }

    /// Moves the buffer onto `memory` (at least `bytesNeeded`), shared with others or its own; the contents are not kept.
    func bind(_ memory: AlignedBuffer<UInt8>) {
        precondition(memory.count >= bytesNeeded)
        self.memory = memory
        start = memory.p
    }

    /// Bytes per image and the (channels, pixels) of one image for the plane conversions.
    var image: (c: Int, hw: Int, images: Int) {
        shape.count == 4 ? (shape[1], shape[2] * shape[3], shape[0]) : (1, count, 1)
    }

    /// The real values, NCHW.
    func dequantized() -> RTensor {
        let y = RTensor(dtype: .float, shape: shape)
        let (c, hw, images) = image
        for n in 0..<images { FastInteger.dequantize(bytes + n * c * hw, channels: c, pixels: hw, scale: scale, zero: zero, nhwc: nhwc, into: y.f + n * c * hw) }
        return y
    }
}

/// A value of the plan: 8-bit (`q`) or float (`f`).
final class Slot {
    var q: QBuffer?
    var f: RTensor?
    init(q: QBuffer? = nil, f: RTensor? = nil) { self.q = q; self.f = f }
}

/// Scratch memory every step of a plan uses in turn (im2col, depthwise rings): the largest any step needs, so the
/// scratch a step writes was written by an earlier step of the same run (in cache). Steps leave nothing in it
/// for a later run.
final class ScratchArea {
    private var memory = AlignedBuffer<UInt8>(count: 64, repeating: 0)
    var bytes: UnsafeMutablePointer<UInt8> { memory.p }

    /// At least `count` bytes from here on (the contents are not kept).
    func reserve(_ count: Int) {
        if count > memory.count { memory = AlignedBuffer(count: count, repeating: 0) }
    }
}

/// The steps a planner touched a buffer's bytes in, counted while it makes (and runs) the plan.
final class BufferUses {
    /// The step running; nil between steps (the planner's own code).
    var step: Int?
    /// The buffers made with this record, in the order made.
    var buffers: [QBuffer] = []
}

final class Plan {
    let inputShapes: [String: [Int]]
    let threads: Int
    var slots: [String: Slot] = [:]
    var steps: [() throws -> Void] = []
    /// "OpType node" of each step.
    var labels: [String] = []
    var outputNames: [String] = []
    var integerNodes = 0
    var floatOps: [String: Int] = [:]
    let scratch = ScratchArea()
    /// Every buffer the planner made.
    var buffers: [QBuffer] = []
    /// Buffers that can share memory, a group each (`pools`); `sharing` says whether they do now.
    var pools: [[QBuffer]] = []
    private(set) var sharing = false

    init(inputShapes: [String: [Int]], threads: Int) {
        self.inputShapes = inputShapes
        self.threads = threads
    }

    /// Groups buffers whose steps never overlap, so each group can live in one piece of memory: in order of
    /// first step, a buffer takes the memory a buffer released most recently (its last step before this one's
    /// first): the most recent one large enough, else the most recent one, grown; else memory of its own. The
    /// memory a step writes was then read or written a few steps earlier (in cache), where every buffer of its
    /// own was last written a whole run ago. Buffers touched outside the steps (written while planning), never
    /// touched, or in `keeping` (graph outputs, read after the run) stay alone.
    static func pools(_ buffers: [QBuffer], keeping: Set<ObjectIdentifier>) -> [[QBuffer]] {
        let movable = buffers.enumerated()
            .filter { $0.element.firstStep >= 0 && !$0.element.touchedOutsideSteps && !keeping.contains(ObjectIdentifier($0.element)) }
            .sorted { ($0.element.firstStep, $0.offset) < ($1.element.firstStep, $1.offset) }.map(\.element)
        var pools: [[QBuffer]] = [], size: [Int] = []
        var busy: [(pool: Int, last: Int)] = []
        var free: [Int] = []   // released pools, the most recent last
        for b in movable {
            // Everything released before b's first step, in the order released (every earlier buffer's first step
            // is at most b's, so no buffer released later can have ended before one released now).
            free += busy.filter { $0.last < b.firstStep }.sorted { $0.last < $1.last }.map(\.pool)
            busy.removeAll { $0.last < b.firstStep }
            let pool: Int
            if let k = free.lastIndex(where: { size[$0] >= b.bytesNeeded }) ?? free.indices.last {
                pool = free.remove(at: k)
            } else {
                pool = pools.count
                pools.append([])
                size.append(0)
            }
            pools[pool].append(b)
            size[pool] = max(size[pool], b.bytesNeeded)
            busy.append((pool, b.lastStep))
        }
        return pools.filter { $0.count > 1 }
    }

    /// Puts each pool's buffers in one piece of memory (`on`) or each in its own, zeroed; contents are not kept.
    func share(_ on: Bool) {
        guard on != sharing else { return }
        sharing = on
        for pool in pools {
            if on {
                let memory = AlignedBuffer<UInt8>(count: pool.map(\.bytesNeeded).max()!, repeating: 0)
                for b in pool { b.bind(memory) }
            } else {
                for b in pool { b.bind(AlignedBuffer(count: b.bytesNeeded, repeating: 0)) }
            }
        }
    }

    func outputs() throws -> [String: RTensor] {
        var out: [String: RTensor] = [:]
        for name in outputNames {
            guard let s = slots[name] else { throw IntegerRuntimeError("graph output '\(name)' was not computed") }
            if let q = s.q { out[name] = q.dequantized() } else if let f = s.f { out[name] = f }
        }
        return out
    }
}

public struct IntegerRuntimeError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
