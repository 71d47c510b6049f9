import Foundation
import SwiftQCore
import SwiftQKernels
import SwiftQONNX
import SwiftQRuntime

/// A quantized activation: integer values (widened to Int32) with one scale and zero point,
/// real = scale × (q − zero). `lo`/`hi` are the limits of its 8-bit type.
public struct QTensor: Sendable {
    public var shape: [Int]
    public var values: [Int32]
    public var scale: Float
    public var zero: Int32
    public var dtype: DType
    var lo: Int32 { dtype.integerRange!.lo }

    /// The real values (only at float islands and the final outputs).
    public func dequantized() -> RTensor {
        RTensor(floats: values.map { Float($0 - zero) * scale }, shape: shape)
    }
}

/// swiftq's integer runtime, first cut: the Q/DQ graph and its int8 weight file lowered to integer ops on
/// the exact reference kernels. Conv and Gemm accumulate in int32 with the int32 bias and requantize by a
/// fixed-point multiplier per channel (Relu/Clip before the QuantizeLinear become the clamp); Add rescales
/// both inputs in fixed point; MaxPool and moves (Flatten, Reshape, Squeeze, Unsqueeze, Transpose) work on
/// the integers. Any other node runs in float on dequantized inputs, as does a Gemm/MatMul/Conv whose output is
/// not quantized (its int32 accumulator is dequantized). Group-1 convolutions run on the int8 GEMM (VNNI when
/// present, `FastInteger.conv`), depthwise ones on an exact int32 loop in C (`FastInteger.depthwise`), other
/// grouped ones on the reference loops.
public final class IntegerProgram {
    enum Value { case q(QTensor), f(RTensor) }

    let model: Model
    let order: [Int]
    let inits: [String: Tensor]
    let consumers: [String: [Int]]
    let producers: [String: Int]
    let graphOutputs: Set<String>
    let context = ExecutionContext(threads: 1)
    /// Integer constants from the weight file, by initializer name.
    let integerConstants: [String: Int8WeightFile.Record]
    /// int8 weights packed for the fast convolution, by initializer name.
    private var packedWeights: [String: PackedInt8Weights] = [:]
    /// Threads for the fast integer kernels.
    public var threads = 1
    public private(set) var integerNodes = 0
    public private(set) var floatNodes = 0

    /// Loads `model` with its weight file: the file's CRC must be the one the model records, and every record
    /// must equal the model's initializer of that name.
    public init(model: Model, weights: [UInt8], weightsPath: String) throws {
        self.model = model
        guard let recorded = model.metadataProps.last(where: { $0.key == Int8WeightFile.metadataKey })?.value else {
            throw IntegerRuntimeError("the model records no int8 weight file (\(Int8WeightFile.metadataKey)); was it written by swiftq quantize?")
        }
        let records = try Int8WeightFile.read(weights, path: weightsPath)
        let crc = Int8WeightFile.fileChecksum(weights)
        guard String(format: "%08x", crc) == recorded else {
            throw IntegerRuntimeError("\(weightsPath) does not belong to this model (CRC \(String(format: "%08x", crc)), the model records \(recorded))")
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

    /// Runs one input; returns the graph outputs in float.
    public func run(_ feeds: [String: RTensor]) throws -> [String: RTensor] {
        var values: [String: Value] = [:]
        for (k, v) in feeds { values[k] = .f(v) }
        var skip = Set<Int>()
        integerNodes = 0
        floatNodes = 0
        let g = model.graph
        for i in order where !skip.contains(i) {
            let n = g.nodes[i]
            if let done = try integerStep(i, n, &values, &skip) {
                if done { integerNodes += 1; continue }
            }
            try floatStep(n, &values)
            floatNodes += 1
        }
        var out: [String: RTensor] = [:]
        for o in g.outputs {
            switch values[o.name] {
            case .q(let q)?: out[o.name] = q.dequantized()
            case .f(let f)?: out[o.name] = f
            case nil: throw IntegerRuntimeError("graph output '\(o.name)' was not computed")
            }
        }
        return out
    }

    // MARK: - lowering rules

    /// Activation scale and zero point of a QuantizeLinear/DequantizeLinear node (per tensor).
    func params(_ n: Node) -> (Float, Int32, DType)? {
        guard let s = n.input(1).flatMap({ inits[$0] }), s.elementCount == 1 else { return nil }
        let z = n.input(2).flatMap { inits[$0] }
        return (s.floats()[0], Int32(z?.int64s().first ?? 0), z?.dtype ?? .uint8)
    }

    /// The QuantizeLinear reading `name` as its only reader, through an optional Relu/Clip: (Q node index,
    /// activation node index, clamp bounds in real values).
    func quantizer(after name: String) -> (q: Int, act: Int?, lo: Float, hi: Float)? {
        guard !graphOutputs.contains(name), let r = consumers[name], r.count == 1 else { return nil }
        let n = model.graph.nodes[r[0]]
        if n.opType == "QuantizeLinear" { return (r[0], nil, -.infinity, .infinity) }
        guard n.opType == "Relu" || n.opType == "Clip", let out = n.outputs.first, !graphOutputs.contains(out),
              let r2 = consumers[out], r2.count == 1, model.graph.nodes[r2[0]].opType == "QuantizeLinear" else { return nil }
        var lo: Float = 0, hi: Float = .infinity
        if n.opType == "Clip" {
            lo = n.input(1).flatMap { inits[$0]?.floats().first } ?? -.infinity
            hi = n.input(2).flatMap { inits[$0]?.floats().first } ?? .infinity
        }
        return (r2[0], r[0], lo, hi)
    }

    /// The weight file record behind a DequantizeLinear output (int8 weights, int32 biases).
    func constant(_ name: String) -> Int8WeightFile.Record? {
        guard let p = producers[name] else { return nil }
        let dq = model.graph.nodes[p]
        guard dq.opType == "DequantizeLinear", let src = dq.input(0) else { return nil }
        return integerConstants[src]
    }

    /// Lowers node `i` to integers when its pattern allows; nil (or false) leaves it to float.
    func integerStep(_ i: Int, _ n: Node, _ values: inout [String: Value], _ skip: inout Set<Int>) throws -> Bool? {
        let g = model.graph
        switch n.opType {
        case "DequantizeLinear":
            guard let x = n.input(0), case .q(let q)? = values[x] else {
                // Weights and biases: their integers are read by the layers that use them.
                if let x = n.input(0), integerConstants[x] != nil { return true }
                return nil
            }
            values[n.outputs[0]] = .q(q)
            return true
        case "QuantizeLinear":
            // The runtime's QuantizeLinear (round half to even, saturate) turns the float input into integers.
            guard let x = n.input(0), case .f(let f)? = values[x], let (s, z, t) = params(n) else { return nil }
            let q = try runFloat(n, [f] + n.inputs.dropFirst().map { $0.isEmpty ? nil : inits[$0].map(RTensor.init) })
            values[n.outputs[0]] = .q(QTensor(shape: f.shape, values: q.int64s().map { Int32($0) }, scale: s, zero: z, dtype: t))
            return true
        case "Conv", "Gemm", "MatMul":
            guard let x = n.input(0), case .q(let xq)? = values[x], let w = n.input(1).flatMap(constant), w.dtype == .int8 else { return nil }
            let bias = n.input(2).flatMap(constant)
            if n.input(2) != nil && bias == nil { return nil }
            let acc: [Int32], shape: [Int], channels: Int, inner: Int
            if n.opType == "Conv" {
                guard xq.shape.count == 4 else { return nil }
                let setup = OperatorSetup(node: n, opset: model.opset, constants: [])
                let geo = try convGeometry(x: xq.shape, w: w.shape, setup: setup, group: Int(n.int("group") ?? 1), fail: NodeFailure(setup))
                if geo.group == 1 {
                    let k = w.shape[1] * w.shape[2] * w.shape[3]
                    let packed = packedWeights[w.name] ?? PackedInt8Weights(rows: w.shape[0], cols: k, values: w.values)
                    packedWeights[w.name] = packed
                    acc = FastInteger.conv(x: xq.values, xZero: xq.zero, lo: xq.lo, w: packed, bias: bias?.values, geo, threads: threads)
                } else if geo.isDepthwise && geo.dilationH == 1 && geo.dilationW == 1 {
                    acc = FastInteger.depthwise(x: xq.values, xZero: xq.zero, lo: xq.lo, w: w.values.map { Int8(clamping: $0) }, bias: bias?.values, geo, threads: threads)
                } else {
                    acc = IntegerReference.conv(x: xq.values, xZero: xq.zero, w: w.values, wZero: [0], bias: bias?.values, geo)
                }
                shape = [geo.batch, geo.outChannels, geo.outHeight, geo.outWidth]
                channels = geo.outChannels; inner = geo.outHeight * geo.outWidth
            } else {
                guard xq.shape.count == 2, w.shape.count == 2 else { return nil }
                let transB = n.opType == "Gemm" && (n.int("transB") ?? 0) != 0
                if n.opType == "Gemm", (n.int("transA") ?? 0) != 0 { return nil }
                let (k, nOut) = transB ? (w.shape[1], w.shape[0]) : (w.shape[0], w.shape[1])
                let bMatrix: [Int32] = transB ? (0..<(k * nOut)).map { idx in w.values[(idx % nOut) * k + idx / nOut] } : w.values
                var c = IntegerReference.matmul(a: xq.values[...], aZero: [xq.zero], b: bMatrix[...], bZero: [0], m: xq.shape[0], n: nOut, k: k)
                if let b = bias?.values, b.count == nOut { for r in 0..<xq.shape[0] { for j in 0..<nOut { c[r * nOut + j] &+= b[j] } } }
                acc = c
                shape = [xq.shape[0], nOut]
                channels = nOut; inner = 1
            }
            let scales = w.scales
            let wScale = { (c: Int) in scales.count == 1 ? scales[0] : scales[c] }
            // Conv accumulators are channel-major (N, M, H·W); Gemm/MatMul ones row-major (N, M).
            let isConv = n.opType == "Conv"
            let channelOf = { (idx: Int) in isConv ? (idx / inner) % channels : idx % channels }
            guard let (qi, act, rlo, rhi) = quantizer(after: n.outputs[0]), let (ys, yz, yt) = params(g.nodes[qi]) else {
                // Float output (logits): the accumulator dequantized, the only float step of the layer.
                let y = RTensor(floats: acc.indices.map { Float(acc[$0]) * xq.scale * wScale(channelOf($0)) }, shape: shape)
                values[n.outputs[0]] = .f(y)
                return true
            }
            guard var (lo, hi) = yt.integerRange else { return nil }
            if rlo.isFinite { lo = max(lo, Int32(min(max((rlo / ys).rounded(.toNearestOrEven) + Float(yz), -1e9), 1e9))) }
            if rhi.isFinite { hi = min(hi, Int32(min(max((rhi / ys).rounded(.toNearestOrEven) + Float(yz), -1e9), 1e9))) }
            let multipliers = (0..<channels).map { FixedPointMultiplier(Double(xq.scale) * Double(wScale($0)) / Double(ys)) }
            var q = [Int32](repeating: 0, count: acc.count)
            acc.withUnsafeBufferPointer { a in
                q.withUnsafeMutableBufferPointer { out in
                    for idx in 0..<a.count {
                        let v = multipliers[isConv ? (idx / inner) % channels : idx % channels]?.apply(a[idx]) ?? 0
                        out[idx] = min(max(v &+ yz, lo), hi)
                    }
                }
            }
            values[g.nodes[qi].outputs[0]] = .q(QTensor(shape: shape, values: q, scale: ys, zero: yz, dtype: yt))
            skip.insert(qi)
            if let act { skip.insert(act) }
            return true
        case "Add":
            guard n.inputs.count == 2, case .q(let a)? = values[n.inputs[0]], case .q(let b)? = values[n.inputs[1]], a.shape == b.shape,
                  let (qi, act, rlo, _) = quantizer(after: n.outputs[0]), let (ys, yz, yt) = params(g.nodes[qi]) else { return nil }
            guard var (lo, hi) = yt.integerRange else { return nil }
            if act != nil, rlo.isFinite { lo = max(lo, yz) }
            let y = IntegerReference.add(a.values, aZero: a.zero, aScale: a.scale, b.values, bZero: b.zero, bScale: b.scale,
                                         yZero: yz, yScale: ys, lo: lo, hi: hi)
            values[g.nodes[qi].outputs[0]] = .q(QTensor(shape: a.shape, values: y, scale: ys, zero: yz, dtype: yt))
            skip.insert(qi)
            if let act { skip.insert(act) }
            return true
        case "Flatten", "Reshape", "Squeeze", "Unsqueeze", "MaxPool", "Transpose":
            // Same integers in other places: run the float operator on the integers themselves (exact for
            // 8-bit values), keep the scale; a different output scale is requantized.
            guard let x = n.input(0), case .q(let xq)? = values[x] else { return nil }
            let f = try runFloat(n, [RTensor(floats: xq.values.map { Float($0) }, shape: xq.shape)] + n.inputs.dropFirst().map { $0.isEmpty ? nil : inits[$0].map(RTensor.init) })
            let moved = f.floatArray().map { Int32($0) }
            var y = QTensor(shape: f.shape, values: moved, scale: xq.scale, zero: xq.zero, dtype: xq.dtype)
            if let (qi, _, _, _) = quantizer(after: n.outputs[0]), let (ys, yz, yt) = params(g.nodes[qi]) {
                if ys != xq.scale || yz != xq.zero || yt != xq.dtype { y = requantize(y, scale: ys, zero: yz, dtype: yt) }
                values[g.nodes[qi].outputs[0]] = .q(y)
                skip.insert(qi)
            } else {
                values[n.outputs[0]] = .f(y.dequantized())
            }
            return true
        default:
            return nil
        }
    }

    /// `x` at another scale and zero point: one fixed-point multiply (one rounding) per value.
    func requantize(_ x: QTensor, scale: Float, zero: Int32, dtype: DType) -> QTensor {
        let m = FixedPointMultiplier(Double(x.scale) / Double(scale))
        let (lo, hi) = dtype.integerRange!
        let q = x.values.map { min(max((m?.apply($0 - x.zero) ?? 0) &+ zero, lo), hi) }
        return QTensor(shape: x.shape, values: q, scale: scale, zero: zero, dtype: dtype)
    }

    /// A node the integer rules do not cover: float on dequantized inputs.
    func floatStep(_ n: Node, _ values: inout [String: Value]) throws {
        let ins: [RTensor?] = n.inputs.map { name in
            if name.isEmpty { return nil }
            switch values[name] {
            case .q(let q)?: return q.dequantized()
            case .f(let f)?: return f
            case nil: return inits[name].map(RTensor.init)
            }
        }
        let outs = try runFloatAll(n, ins)
        for (k, o) in n.outputs.enumerated() where !o.isEmpty && k < outs.count { values[o] = .f(outs[k]) }
    }

    func runFloat(_ n: Node, _ ins: [RTensor?]) throws -> RTensor { try runFloatAll(n, ins)[0] }

    func runFloatAll(_ n: Node, _ ins: [RTensor?]) throws -> [RTensor] {
        guard let factory = operatorTable[n.opType] else {
            throw IntegerRuntimeError("node '\(n.displayName)' (\(n.opType)): no kernel")
        }
        let op = try factory(OperatorSetup(node: n, opset: model.opset, constants: n.inputs.map { $0.isEmpty ? nil : inits[$0] }))
        return try op.run(ins, context)
    }
}

public struct IntegerRuntimeError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
