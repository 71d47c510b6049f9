import Foundation
import CKernels
import SwiftQCore
import SwiftQONNX
import SwiftQPasses

/// An integer tensor of the quantized model: what the Q/DQ graph stores as an initializer and the int8
/// weight file repeats with its parameters.
public struct QuantizedTensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var params: QuantParams
    /// The integer values (int8 weights, int32 biases) in row-major order.
    public var values: [Int32]
}

/// The outcome of quantization: the Q/DQ model and its integer tensors.
public struct QuantizedModel: Sendable {
    public var model: Model
    public var tensors: [QuantizedTensor]
    /// Activation parameters per tensor that got a Q/DQ pair.
    public var activations: [String: QuantParams]
    /// What the user should know about the result (a Concat whose shared scale leaves an input few levels).
    public var warnings: [String] = []
    /// Per quantized weighted layer, in graph order: how its weights were quantized and what it cost.
    public var layers: [WeightedLayerReport] = []
}

extension QuantizedModel {
    /// What to know before running the result on this kind of CPU. On x86 without an int8 dot product (VNNI), ONNX
    /// Runtime's u8 x s8 kernels add byte products in pairs with vpmaddubsw, whose int16 sums saturate once
    /// x0·w0 + x1·w1 passes 32767, which full-range 8-bit weights and uint8 activations reach: measured on an AVX2 Zen 3,
    /// swiftq's 8-bit MobileNetV2 scores 73.69 there (79.54 as written, on swiftq's integer runtime or an exact ONNX Runtime
    /// kernel), SqueezeNet 67.46 (70.38), EfficientNet-Lite0 79.62 (82.54). 7-bit weights (|w| ≤ 64: 255·128 < 32768)
    /// cannot saturate; with GPTQ rounding they scored 79.85, 70.08 and 82.46 there.
    public var notes: [String] {
        guard sq_cpu_has_int8_dot() == 0, layers.contains(where: { $0.bits == 8 }) else { return [] }
        return ["this CPU has no int8 dot product (VNNI): ONNX Runtime's int8 kernels on such CPUs add byte products in saturating 16-bit pairs, "
                + "which 8-bit weights can overflow (measured: MobileNetV2 73.7 top-1 there against 79.5 as written); to deploy on them, "
                + "quantize with --weight-bits 7 (GPTQ rounding; measured 79.9). swiftq's integer runtime and ONNX Runtime on VNNI CPUs are exact either way"]
    }
}

/// How one weighted layer's weights were quantized.
public struct WeightedLayerReport: Sendable, Codable, Equatable {
    public var node: String
    public var op: String
    public var bits: Int
    public var rounding: WeightRounding
    /// 10·log10(Σw² / Σ(w − ŵ)²) over the layer's weights.
    public var weightSQNR: Double
    /// With GPTQ: the layer's output SQNR on the calibration inputs (from the input Hessian) for nearest rounding
    /// and for GPTQ's.
    public var outputSQNRNearest: Double?
    public var outputSQNRRounded: Double?
}

/// Inserts the Q/DQ pairs the plan asks for. Activation tensors: QuantizeLinear → DequantizeLinear right after
/// the producer, every reader reads the dequantized value. Weights: int8 initializer → DequantizeLinear (axis
/// of the output channels when per channel). Biases: int32 with scale s_input × s_weight, zero point 0.
/// Passthrough ops keep their input's parameters and Concat inputs share the output's, so runtimes fuse them.
/// `channelMeans` (per input channel of weighted layers) enables bias correction; `rounded` (by node index, from
/// `roundWeights`) replaces nearest rounding of those nodes' weights.
public func materialize(_ model: Model, plan: QuantizationPlan, ranges: [String: (lo: Float, hi: Float)],
                        channelMeans: [String: [Double]] = [:], rounded: [Int: RoundedWeight] = [:], options: QuantizeOptions) throws -> QuantizedModel {
    var g = model.graph
    let inits = g.initializerTable
    var act: [String: QuantParams] = [:]
    var warnings: [String] = []
    func params(_ lo: Float, _ hi: Float) -> QuantParams {
        .activation(lo: lo, hi: hi, bits: options.activationBits, symmetric: options.symmetricActivations)
    }
    // Measured tensors first; then, in graph order, what passthrough ops hand on and what Concat unifies.
    var r: [String: (lo: Float, hi: Float)] = [:]
    let consumers = g.consumers()
    let graphOutputs = Set(g.outputs.map(\.name))
    for t in plan.tensors where !plan.derived.contains(t) {
        guard var v = ranges[t] else { throw QuantizeError.missingStatistics(tensor: t) }
        // Where every reader is a quantized activation that is flat beyond some input, values past it cannot change
        // any output: the range stops there and its steps get finer (a Conv before HardSwish needs nothing below −3).
        let readers = consumers[t] ?? []
        let flat = readers.map { plan.quantized.contains($0) ? saturation(g.nodes[$0], inits) : nil }
        if !graphOutputs.contains(t), !flat.isEmpty, flat.allSatisfy({ $0 != nil }) {
            // The union of the readers' live ranges.
            let lo = max(v.lo, flat.map { $0!.0 }.min()!), hi = min(v.hi, flat.map { $0!.1 }.max()!)
            if lo < hi { v = (lo, hi) }
        }
        r[t] = v
    }
    let marked = Set(plan.tensors)
    for (i, n) in g.nodes.enumerated() where plan.quantized.contains(i) {
        switch opQuantizers[n.opType] {
        case .passthrough?:
            if let x = n.input(0), let v = r[x] { for o in n.outputs where marked.contains(o) { r[o] = v } }
        case .concat?:
            let members = (n.inputs + [n.outputs[0]]).filter(marked.contains)
            let known = members.compactMap { r[$0] }
            let lo = known.map(\.lo).min() ?? 0, hi = known.map(\.hi).max() ?? 0
            // One scale for all: an input whose range is a small part of the joint range keeps few levels (a
            // detection head joining box coordinates in pixels with scores in [0, 1]). Say so, with the figures.
            let levels = Float((1 << options.activationBits) - 1)
            for x in n.inputs where marked.contains(x) {
                guard let v = r[x], hi > lo else { continue }
                let kept = (v.hi - v.lo) / (hi - lo) * levels
                if kept < 16 {
                    warnings.append(String(format: "Concat '%@' shares one scale over [%g, %g]: its input '%@' in [%g, %g] keeps %.1f of %.0f levels (--exclude %@ keeps the join in float)",
                                           n.displayName, lo, hi, x, v.lo, v.hi, kept, levels, n.name.isEmpty ? "Concat" : n.name))
                }
            }
            for m in members { r[m] = (lo, hi) }
        default: break
        }
    }
    for t in plan.tensors {
        guard let v = r[t] else { throw QuantizeError.missingStatistics(tensor: t) }
        act[t] = params(v.lo, v.hi)
    }
    var names = FreshNames(g)
    func fresh(_ base: String) -> String { names.make(base) }
    var newInits: [Initializer] = []
    var tensors: [QuantizedTensor] = []
    func scalarOrVector(_ v: [Float], perChannel: Bool) -> Tensor { Tensor(floats: v, shape: perChannel ? [v.count] : []) }
    func zeroPointTensor(_ p: QuantParams, perChannel: Bool) -> Tensor {
        let shape = perChannel ? [p.zeroPoints.count] : []
        switch p.dtype {
        case .uint8: return Tensor(integers: p.zeroPoints.map { UInt8($0) }, dtype: .uint8, shape: shape)
        case .int8, .int4: return Tensor(integers: p.zeroPoints.map { Int8($0) }, dtype: p.dtype, shape: shape)
        default: return Tensor(integers: p.zeroPoints, dtype: .int32, shape: shape)
        }
    }
    /// Scale and zero-point initializers; returns their names.
    func paramInits(_ base: String, _ p: QuantParams) -> (String, String) {
        let per = p.axis != nil
        let s = fresh("\(base)_scale"), z = fresh("\(base)_zero_point")
        newInits.append(Initializer(name: s, tensor: scalarOrVector(p.scales, perChannel: per)))
        newInits.append(Initializer(name: z, tensor: zeroPointTensor(p, perChannel: per)))
        return (s, z)
    }
    func dequantize(_ input: String, _ output: String, _ p: QuantParams, _ scale: String, _ zp: String) -> Node {
        Node(name: fresh("\(output)_DequantizeLinear"), opType: "DequantizeLinear", inputs: [input, scale, zp], outputs: [output],
             attributes: p.axis.map { [Attribute(name: "axis", value: .int(Int64($0)))] } ?? [])
    }
    /// An integer constant with its DequantizeLinear; returns the dequantized value's name.
    func constant(_ name: String, shape: [Int], values: [Int32], _ p: QuantParams, into nodes: inout [Node]) -> String {
        let q = fresh("\(name)_quantized"), dq = fresh("\(name)_dequantized")
        let t: Tensor = switch p.dtype {
        case .int32: Tensor(integers: values, dtype: .int32, shape: shape)
        case .uint8: Tensor(integers: values.map { UInt8($0) }, dtype: .uint8, shape: shape)
        default: Tensor(integers: values.map { Int8($0) }, dtype: p.dtype, shape: shape)
        }
        newInits.append(Initializer(name: q, tensor: t))
        tensors.append(QuantizedTensor(name: q, shape: shape, params: p, values: values))
        if p.dtype == .int4 && options.int4ThroughCast {
            // INT4 → Cast → INT8 → DequantizeLinear: runtimes fold the Cast of a constant and see 8-bit weights.
            var p8 = p
            p8.dtype = .int8
            let wide = fresh("\(name)_int8")
            // Unnamed (its output names it): the model file stays at about half the 8-bit one.
            nodes.append(Node(name: "", opType: "Cast", inputs: [q], outputs: [wide],
                              attributes: [Attribute(name: "to", value: .int(Int64(DType.int8.rawValue)))]))
            let (s, z) = paramInits(name, p8)
            nodes.append(dequantize(wide, dq, p8, s, z))
            return dq
        }
        let (s, z) = paramInits(name, p)
        nodes.append(dequantize(q, dq, p, s, z))
        return dq
    }
    var dequantized: [String: String] = [:]
    var nodes: [Node] = []
    var layers: [WeightedLayerReport] = []
    func quantizeActivation(_ t: String) {
        guard let p = act[t], dequantized[t] == nil else { return }
        let (s, z) = paramInits(t, p)
        let q = fresh("\(t)_quantized"), dq = fresh("\(t)_dequantized")
        nodes.append(Node(name: fresh("\(t)_QuantizeLinear"), opType: "QuantizeLinear", inputs: [t, s, z], outputs: [q]))
        nodes.append(dequantize(q, dq, p, s, z))
        dequantized[t] = dq
    }
    for v in g.inputs { quantizeActivation(v.name) }
    for (i, n0) in g.nodes.enumerated() {
        var n = n0
        n.inputs = n.inputs.map { dequantized[$0] ?? $0 }
        if plan.quantized.contains(i), constantOperandOps.contains(n.opType) {
            // A constant operand of Add or Mul: an integer tensor of the activations' type with its own range.
            for (k, name) in n0.inputs.enumerated() where !name.isEmpty {
                guard let c = inits[name], c.dtype == .float else { continue }
                let v = c.floats()
                let p = params(Swift.min(0, v.min() ?? 0), Swift.max(0, v.max() ?? 0))
                n.inputs[k] = constant(name, shape: c.shape, values: v.map { p.quantize($0, channel: 0) }, p, into: &nodes)
            }
        }
        if plan.quantized.contains(i), opQuantizers[n.opType] == .weighted {
            let wName = n0.inputs[1]
            let w = inits[wName]!
            let layout = OutputChannels(node: n0, weightShape: w.shape)!
            let values = w.floats()
            let perChannel = weightPerChannel(n0, options: options)
            let wp: QuantParams, qw: [Int32]
            if let r = rounded[i] {
                wp = QuantParams.weight(steps: r.scales, axis: perChannel ? layout.axis : nil, bits: r.bits, packed: options.packedWeights)
                qw = r.values
            } else {
                var absMax = [Float](repeating: 0, count: perChannel ? layout.count : 1)
                for (k, v) in values.enumerated() {
                    let c = perChannel ? layout.channel(of: k) : 0
                    absMax[c] = Swift.max(absMax[c], abs(v))
                }
                wp = QuantParams.weight(absMax: absMax, axis: perChannel ? layout.axis : nil, bits: options.weightBits(of: n0), packed: options.packedWeights)
                qw = values.enumerated().map { wp.quantize($0.element, channel: perChannel ? layout.channel(of: $0.offset) : 0) }
            }
            n.inputs[1] = constant(wName, shape: w.shape, values: qw, wp, into: &nodes)
            var signal = 0.0, noise = 0.0
            for (k, v) in values.enumerated() {
                let d = Double(wp.scales[perChannel ? layout.channel(of: k) : 0]) * Double(qw[k]) - Double(v)
                signal += Double(v) * Double(v)
                noise += d * d
            }
            layers.append(WeightedLayerReport(node: n0.reportName, op: n0.opType, bits: wp.bits, rounding: rounded[i] == nil ? .nearest : options.weightRounding,
                                              weightSQNR: 10 * log10(signal / Swift.max(noise, .leastNormalMagnitude)),
                                              outputSQNRNearest: rounded[i]?.error.sqnrNearest, outputSQNRRounded: rounded[i]?.error.sqnrRounded))
            var bias: (name: String, values: [Float])? = n0.input(2).flatMap { b in inits[b].map { (b, $0.floats()) } }
            if options.biasCorrection, n0.opType != "MatMul", let means = channelMeans[n0.inputs[0]],
               let shift = roundingShift(n0, weight: values, quantized: qw, params: wp, layout: layout, means: means),
               bias == nil || bias!.values.count == layout.count {
                var b = bias?.values ?? Array(repeating: 0, count: layout.count)
                for c in b.indices { b[c] -= Float(shift[c]) }
                bias = (bias?.name ?? fresh("\(n0.name.isEmpty ? n0.outputs[0] : n0.name)_bias"), b)
            }
            if let (b, bv) = bias, let inParams = act[n0.inputs[0]], bv.count == layout.count || (!perChannel && bv.count == 1) {
                let sIn = inParams.scales[0]
                let bScales = (0..<bv.count).map { sIn * wp.scales[perChannel ? $0 : 0] }
                let bp = QuantParams(scales: bScales, zeroPoints: Array(repeating: 0, count: bScales.count), axis: bScales.count > 1 || perChannel ? 0 : nil,
                                     dtype: .int32, bits: 32, qmin: Int32.min + 1, qmax: Int32.max)
                let qb = bv.enumerated().map { bp.quantize($0.element, channel: $0.offset) }
                while n.inputs.count < 3 { n.inputs.append("") }
                n.inputs[2] = constant(b, shape: [bv.count], values: qb, bp, into: &nodes)
            }
        }
        nodes.append(n)
        for o in n0.outputs { quantizeActivation(o) }
    }
    g.nodes = nodes
    g.initializers += newInits
    g.valueInfo = []
    var m = model
    m.graph = g
    m = Rewriter([]).removeDead(m)
    if tensors.contains(where: { $0.params.dtype == .int4 }) && m.opset < 21 {
        // DequantizeLinear reads INT4 from opset 21.
        m = try Rewriter([UpgradeOpset(target: 21)]).run(m).0
    }
    return QuantizedModel(model: m, tensors: tensors, activations: act, warnings: warnings, layers: layers)
}

/// The inputs outside which an activation's output no longer changes (within half a step of any 8-bit output),
/// nil for an op that is not flat anywhere: Relu below 0, Clip outside its bounds, HardSwish below −3, HardSigmoid
/// outside [−β/α, (1 − β)/α], Sigmoid beyond ±8 (1 − σ(8) = 3.4e-4) and Tanh beyond ±4.5 (1 − tanh(4.5) = 2.5e-4).
func saturation(_ n: Node, _ inits: [String: Tensor]) -> (Float, Float)? {
    switch n.opType {
    case "Relu": return (0, .infinity)
    case "Clip":
        guard let lo = clipLowerBound(n, inits) else { return nil }
        let hi = n.float("max") ?? n.input(2).flatMap { inits[$0]?.floats().first } ?? .infinity
        return (lo, hi)
    case "HardSwish": return (-3, .infinity)
    case "HardSigmoid":
        let a = n.float("alpha") ?? 0.2, b = n.float("beta") ?? 0.5
        guard a > 0 else { return nil }
        return (-b / a, (1 - b) / a)
    case "Sigmoid": return (-8, 8)
    case "Tanh": return (-4.5, 4.5)
    default: return nil
    }
}

/// The mean output shift per output channel that rounding the weights causes, (W_q − W) · E[x], for Conv
/// (any group count; zero padding at the borders ignored) and Gemm; nil when the input means do not fit.
func roundingShift(_ n: Node, weight w: [Float], quantized q: [Int32], params p: QuantParams, layout: OutputChannels,
                   means: [Double]) -> [Double]? {
    var shift = [Double](repeating: 0, count: layout.count)
    func delta(_ k: Int, _ c: Int) -> Double { Double(p.scales[p.scales.count == 1 ? 0 : c] * Float(q[k]) - w[k]) }
    switch n.opType {
    case "Conv":
        let m = layout.count, perOut = w.count / m, group = Int(n.int("group") ?? 1)
        guard group > 0, m % group == 0 else { return nil }
        let cpg = means.count / group, taps = cpg > 0 ? perOut / cpg : 0
        guard cpg * group == means.count, taps * cpg == perOut else { return nil }
        for o in 0..<m {
            let g = o / (m / group)
            for ci in 0..<cpg {
                let mean = means[g * cpg + ci]
                var s = 0.0
                for t in 0..<taps { let k = (o * cpg + ci) * taps + t; s += delta(k, o) }
                shift[o] += s * mean
            }
        }
    case "Gemm":
        let k = w.count / layout.count
        guard means.count == k else { return nil }
        for idx in w.indices {
            let c = layout.channel(of: idx)
            let kk = layout.axis == 0 ? idx % k : idx / layout.count
            shift[c] += delta(idx, c) * means[kk]
        }
    default: return nil
    }
    return shift
}

extension QuantizedModel {
    /// The integer tensors as int8 weight file records.
    public var weightRecords: [Int8WeightFile.Record] {
        tensors.map {
            Int8WeightFile.Record(name: $0.name, dtype: $0.params.dtype, bits: $0.params.bits, axis: $0.params.axis, shape: $0.shape,
                                  scales: $0.params.scales, zeroPoints: $0.params.zeroPoints, values: $0.values)
        }
    }
}

/// What stops quantization, as a message naming the tensor or node.
public enum QuantizeError: Error, Equatable, CustomStringConvertible {
    case missingStatistics(tensor: String)
    case tableMismatch(String)

    public var description: String {
        switch self {
        case .missingStatistics(let t): "no calibration statistics for tensor '\(t)' (the calibration table does not match this model?)"
        case .tableMismatch(let w): "calibration table: \(w)"
        }
    }
}
