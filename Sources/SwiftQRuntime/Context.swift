import Dispatch
import Foundation
import SwiftQCore
import SwiftQKernels

/// What can go wrong while building or running a graph; each case names the node.
public enum RuntimeError: Error, Equatable, CustomStringConvertible {
    /// An operator (or an attribute form of it) the runtime does not implement.
    case unsupported(node: String, opType: String, what: String)
    /// Inputs that break the operator's rules (shapes, types, values).
    case invalidInput(node: String, opType: String, what: String)
    /// A graph input was not fed, or fed with the wrong type or rank.
    case badFeed(input: String, what: String)

    public var description: String {
        switch self {
        case .unsupported(let n, let op, let w): "node '\(n)' (\(op)): not supported: \(w)"
        case .invalidInput(let n, let op, let w): "node '\(n)' (\(op)): \(w)"
        case .badFeed(let i, let w): "input '\(i)': \(w)"
        }
    }
}

/// Reuses tensor storage between nodes and between runs: after the first run of a shape, no allocation.
///
/// A request takes the most recently released buffer that fits (at most three times the size asked for), whatever
/// size it was made for: memory the previous nodes just wrote or read is still in cache, so the next node
/// writes its output there instead of into a buffer last touched a whole run ago. (Exact-size free lists
/// gave every node its own buffer, and on MobileNetV2 each layer's output went to memory the rest of the
/// network had pushed out of cache: the early layers ran 3x slower inside the whole network than alone.)
/// Up to three times rather than twice: fewer, larger buffers serve the run (EfficientNet-Lite0 held 8.0 MiB between
/// runs, now 5.6; MobileNetV2 7.2 → 5.4; SqueezeNet 6.3 → 4.9) and the float networks ran 1.6–4% faster at 1 and 2
/// threads, alternating; four times held less on the MobileNets but more on SqueezeNet, which ran 1% slower.
/// `endRun` drops the buffers the run just finished did not use, so the pool stays within one run's needs.
public final class BufferPool: @unchecked Sendable {
    /// Released buffers, the most recently released last.
    private var free: [Storage] = []
    /// Buffers handed out since the last `endRun`.
    private var used = Set<ObjectIdentifier>()

    public init() {}

    public func take(bytes: Int) -> Storage {
        let need = max(64, (bytes + 63) / 64 * 64)
        let s: Storage
        if let i = free.lastIndex(where: { $0.byteCapacity >= need && $0.byteCapacity <= 3 * need }) {
            s = free.remove(at: i)
        } else {
            s = Storage(byteCapacity: need)
        }
        used.insert(ObjectIdentifier(s))
        return s
    }

    public func give(_ s: Storage) { free.append(s) }

    /// Ends one run of the graph: released buffers that no request took since the last call are freed.
    public func endRun() {
        free.removeAll { !used.contains(ObjectIdentifier($0)) }
        used.removeAll(keepingCapacity: true)
    }

    /// Bytes held in released buffers (for tests).
    public var freeBytes: Int { free.reduce(0) { $0 + $1.byteCapacity } }
}

/// Per-interpreter state kernels use: the buffer pool, threads, and the node being run (for messages).
public final class ExecutionContext: @unchecked Sendable {
    public let pool: BufferPool
    /// How many threads kernels may use.
    public let threads: Int
    /// Use the reference kernels only (the specification), for tests.
    public let referenceOnly: Bool
    /// Let convolutions run by Winograd's F(4x4, 3x3) where it applies (`Interpreter.Options.winograd`).
    public let winograd: Bool

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, referenceOnly: Bool = false, winograd: Bool = true) {
        pool = BufferPool()
        self.threads = max(1, threads)
        self.referenceOnly = referenceOnly
        self.winograd = winograd
    }

    /// A tensor with uninitialized contents whose storage comes from the pool.
    public func alloc(_ dtype: DType, _ shape: [Int]) -> RTensor {
        RTensor(dtype: dtype, shape: shape, storage: pool.take(bytes: shape.reduce(1, *) * dtype.byteSize!))
    }
}

/// One compiled node: runs on its inputs (nil for an omitted optional input) and returns its outputs.
public protocol Operator {
    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor]
}

/// An operator that reads large constant weights once per run, straight from memory (a batch-1 fully connected
/// layer): the interpreter has the layers before it fetch them into cache while they compute (`Fast.fetchAhead`).
protocol StreamsWeights: Operator {
    var streamedWeights: UnsafeRawBufferPointer? { get }
}

/// An operator with kernel scratch of its own (the rest of it, packed weights included, is read-only while it runs).
protocol OwnsScratch: Operator {
    /// The same operator, sharing its constants, with new scratch for `threads` threads: for an interpreter that
    /// runs beside this one.
    func withOwnScratch(threads: Int) -> Operator
}

/// An operator whose only scratch is one buffer, whatever the threads.
protocol OwnsOneScratch: OwnsScratch {
    var scratch: Scratch { get set }
}

extension OwnsOneScratch {
    /// The same operator with a new buffer.
    func freshScratch() -> Self {
        var op = self
        op.scratch = Scratch()
        return op
    }

    func withOwnScratch(threads: Int) -> Operator { freshScratch() }
}

/// What an operator's builder sees: the node, the opset and which inputs are constants.
public struct OperatorSetup {
    public let node: Node
    public let opset: Int64
    /// Constant inputs by position (initializers and Constant outputs), nil where the input varies.
    public let constants: [Tensor?]
    /// A windowed op's attributes read once, for the spatial rank and kernel of its constant weight (or of its
    /// kernel_shape): `convGeometry` then reads no attribute on each run.
    let window: ParsedWindow?

    public init(node: Node, opset: Int64, constants: [Tensor?]) {
        self.node = node
        self.opset = opset
        self.constants = constants
        window = ParsedWindow(node, constants: constants)
    }

    public func constant(_ i: Int) -> Tensor? { i < constants.count ? constants[i] : nil }

    public func unsupported(_ what: String) -> RuntimeError { .unsupported(node: node.displayName, opType: node.opType, what: what) }
    public func invalid(_ what: String) -> RuntimeError { .invalidInput(node: node.displayName, opType: node.opType, what: what) }

    public func int(_ name: String, _ d: Int) -> Int { node.int(name).map { Int($0) } ?? d }
    public func ints(_ name: String) -> [Int]? { node.ints(name)?.map { Int($0) } }
    public func float(_ name: String, _ d: Float) -> Float { node.float(name) ?? d }
}

/// Errors raised while an operator runs, naming its node.
public struct NodeFailure {
    public let node: String
    public let opType: String
    public func invalid(_ what: String) -> RuntimeError { .invalidInput(node: node, opType: opType, what: what) }
    public func unsupported(_ what: String) -> RuntimeError { .unsupported(node: node, opType: opType, what: what) }

    public init(_ setup: OperatorSetup) {
        node = setup.node.displayName
        opType = setup.node.opType
    }
}

extension Array where Element == RTensor? {
    /// Input `i`, which the operator requires.
    func required(_ i: Int, _ f: NodeFailure) throws -> RTensor {
        guard i < count, let t = self[i] else { throw f.invalid("input \(i) is missing") }
        return t
    }
}

/// `WindowAttributes` of a node parsed for one spatial rank and weight kernel (nil kernel: pooling, or a weight that
/// is not constant): the same value `WindowAttributes(node:spatialRank:kernel:)` gives for those two.
struct ParsedWindow: Sendable {
    let spatialRank: Int
    let kernel: [Int]?
    let attributes: WindowAttributes

    static let ops: [String: Int] = ["Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "MaxPool": -1, "AveragePool": -1, "LpPool": -1]

    init?(_ n: Node, constants: [Tensor?]) {
        guard let weightInput = Self.ops[n.opType] else { return nil }
        let w = weightInput >= 0 && weightInput < constants.count ? constants[weightInput] : nil
        let kernel = w.flatMap { $0.shape.count >= 3 ? Array($0.shape.dropFirst(2)) : nil }
        guard let rank = kernel?.count ?? n.ints("kernel_shape")?.count,
              let a = try? WindowAttributes(node: n, spatialRank: rank, kernel: kernel) else { return nil }
        (spatialRank, self.kernel, attributes) = (rank, kernel, a)
    }
}
