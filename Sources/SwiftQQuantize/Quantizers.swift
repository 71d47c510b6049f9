import SwiftQCore
import SwiftQPasses

/// How each op takes part in quantization; a literal table, no dispatch on strings elsewhere.
public enum OpQuantizer: Sendable {
    /// Constant weight quantized per channel (or per tensor), int32 bias, activation in and out.
    case weighted
    /// Runs on quantized inputs with its own output scale (Add, average pooling, activations).
    case requantize
    /// Moves or picks values: the output keeps the input's scale, so runtimes drop the Q/DQ around it.
    case passthrough
    /// Concat: every input shares the output's scale.
    case concat
}

/// Chosen by what ONNX Runtime 1.32 fuses (scripts/ort_fusions.py prints it): QLinearConv, QLinearConvTranspose
/// (per-channel weights on axis 1), QGemm, QLinearAdd, QLinearMul (also of a feature map by a per-channel gate,
/// and by a constant, which then gets its own int8 tensor), QLinearSigmoid, QLinearLeakyRelu,
/// QLinearAveragePool, QLinearGlobalAveragePool, QLinearSoftmax, QLinearConcat; MaxPool, nearest Resize, Split,
/// Slice, Transpose and the reshapes run on the int8 bytes when input and output share one scale. HardSigmoid,
/// HardSwish and Tanh have no int8 kernel in ONNX Runtime; quantized, ONNX Runtime runs them in float between
/// their DequantizeLinear and QuantizeLinear (cheap), swiftq's integer runtime as a 256-entry table, and the
/// layers around them stay int8.
public let opQuantizers: [String: OpQuantizer] = [
    "Conv": .weighted, "ConvTranspose": .weighted, "Gemm": .weighted, "MatMul": .weighted,
    "Add": .requantize, "Mul": .requantize, "GlobalAveragePool": .requantize, "AveragePool": .requantize,
    "Relu": .requantize, "Clip": .requantize, "Sigmoid": .requantize, "HardSigmoid": .requantize, "HardSwish": .requantize,
    "LeakyRelu": .requantize, "Tanh": .requantize, "Softmax": .requantize,
    "MaxPool": .passthrough, "Reshape": .passthrough, "Flatten": .passthrough, "Transpose": .passthrough,
    "Squeeze": .passthrough, "Unsqueeze": .passthrough, "Resize": .passthrough, "Split": .passthrough, "Slice": .passthrough,
    "Concat": .concat,
]

/// Add and Mul read a constant operand as an int8 tensor of its own (what QLinearAdd and QLinearMul take).
let constantOperandOps: Set<String> = ["Add", "Mul"]

/// Which nodes are quantized, which stay float and why, and which tensors get a Q/DQ pair.
public struct QuantizationPlan: Sendable {
    public var quantized: Set<Int> = []
    /// Node index → why it stays float.
    public var float: [Int: String] = [:]
    /// Producer → fused activation (no Q/DQ between them).
    public var fused: [Int: Int] = [:]
    /// Tensors that get a Q/DQ pair, in graph order.
    public var tensors: [String] = []
    /// Marked tensors whose range comes from others (a passthrough op's output, a Concat's output): no
    /// statistics are collected for them.
    public var derived: Set<String> = []
    /// Tensors calibration observes.
    public var measured: [String] { tensors.filter { !derived.contains($0) } }
    /// Inputs of quantized weighted nodes: calibration keeps their per-channel means (bias correction).
    public var weightedInputs: Set<String> = []

    /// Plans `g`: a node is quantized when its op is in `opQuantizers`, it is not excluded, its data inputs are
    /// float, and (weighted ops) its weight is a constant float tensor of a shape the layout allows.
    public init(_ g: Graph, exclude: Set<String>, floatTypes: (String) -> Bool) {
        let inits = g.initializerTable
        for (i, n) in g.nodes.enumerated() {
            guard n.isDefaultDomain, let q = opQuantizers[n.opType] else { float[i] = "no int8 form (\(n.opType))"; continue }
            if exclude.contains(n.name) || exclude.contains(n.opType) || n.outputs.contains(where: exclude.contains) {
                float[i] = "excluded"; continue
            }
            let data = q == .weighted ? [n.inputs[0]] : n.inputs.enumerated().filter { k, x in
                !x.isEmpty && !(inits[x] != nil && k > 0) }.map(\.element)
            if !data.allSatisfy(floatTypes) { float[i] = "non-float input"; continue }
            if q == .weighted {
                guard let w = n.input(1), let t = inits[w], t.dtype == .float, OutputChannels(node: n, weightShape: t.shape) != nil else {
                    float[i] = "weight is not a constant float tensor"; continue
                }
                if n.opType == "Gemm", (n.int("transA") ?? 0) != 0 { float[i] = "Gemm with transA"; continue }
                if n.opType == "MatMul", n.inputs[0] == w || inits[n.inputs[0]] != nil { float[i] = "MatMul of constants"; continue }
            }
            if n.opType == "Clip", clipLowerBound(n, inits) == nil { float[i] = "Clip bounds are not constant"; continue }
            if n.opType == "Resize", (n.string("mode") ?? "nearest") != "nearest" {
                float[i] = "linear and cubic Resize have no int8 form in ONNX Runtime"; continue
            }
            if n.opType == "MaxPool", n.outputs.count > 1, !n.outputs[1].isEmpty { float[i] = "MaxPool with indices"; continue }
            if q == .requantize, !constantOperandOps.contains(n.opType), n.inputs.dropFirst().contains(where: { !$0.isEmpty && inits[$0] == nil && n.opType != "Clip" }) {
                float[i] = "more than one varying input"; continue
            }
            quantized.insert(i)
        }
        // An op without weights whose every reader stays float (Softmax on pooled logits) runs in float too:
        // quantizing its output would only coarsen what float code reads next.
        let consumers = g.consumers()
        let graphOutputs0 = Set(g.outputs.map(\.name))
        let activationsOfWeighted = Set(fusedActivations(g, quantized: quantized).values)
        var changed = true
        while changed {
            changed = false
            for i in quantized.sorted(by: >) where opQuantizers[g.nodes[i].opType] != .weighted && !activationsOfWeighted.contains(i) {
                let readers = g.nodes[i].outputs.flatMap { consumers[$0] ?? [] }
                let toOutput = g.nodes[i].outputs.contains(where: graphOutputs0.contains)
                if toOutput || !readers.contains(where: quantized.contains) {
                    quantized.remove(i)
                    float[i] = "only float ops read its output"
                    changed = true
                }
            }
        }
        fused = fusedActivations(g, quantized: quantized)
        let fusedOutputs = Set(fused.keys.map { g.nodes[$0].outputs[0] })
        let graphOutputs = Set(g.outputs.map(\.name))
        var marked: [String] = []
        var seen = Set<String>()
        func mark(_ t: String) {
            if !t.isEmpty, inits[t] == nil, !graphOutputs.contains(t), !fusedOutputs.contains(t), seen.insert(t).inserted { marked.append(t) }
        }
        for (i, n) in g.nodes.enumerated() where quantized.contains(i) {
            let q = opQuantizers[n.opType]!
            if q == .weighted { mark(n.inputs[0]) } else if q == .passthrough { mark(n.inputs[0]) } else { n.inputs.forEach(mark) }
            if q == .passthrough { n.outputs.forEach(mark) } else if let o = n.outputs.first { mark(o) }
        }
        tensors = marked
        for (i, n) in g.nodes.enumerated() where quantized.contains(i) {
            guard let o = n.outputs.first, seen.contains(o) else { continue }
            switch opQuantizers[n.opType] {
            case .passthrough?: if let x = n.input(0), seen.contains(x) { derived.formUnion(n.outputs.filter(seen.contains)) }
            case .concat?: if n.inputs.allSatisfy(seen.contains) { derived.insert(o) }
            default: break
            }
        }
        weightedInputs = Set(quantized.filter { opQuantizers[g.nodes[$0].opType] == .weighted }.map { g.nodes[$0].inputs[0] })
    }
}

extension QuantizationPlan {
    /// Refuses a weight or bias holding NaN or infinity in a node that is to be quantized: its int8 scale and
    /// int32 bias would be meaningless (NaN rounds to 0, infinity to scale 1 and a saturated bias). The message
    /// names the file, node and tensor (as the file has them, when `original` is the graph before the
    /// rewrites: a folded BatchNormalization renames the bias); excluding the node keeps it float.
    public func checkFiniteWeights(_ g: Graph, original: Graph? = nil, path: String) throws {
        let inits = g.initializerTable
        let originalInits = original?.initializerTable ?? [:]
        let originalNodes = Dictionary((original?.nodes ?? []).filter { !$0.name.isEmpty }.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for i in quantized.sorted() where opQuantizers[g.nodes[i].opType] == .weighted {
            let n = g.nodes[i]
            for (k, role) in [(1, "weight"), (2, "bias")] {
                var candidates: [(String, Tensor)] = []
                if let before = originalNodes[n.name], let name = before.input(k), let t = originalInits[name] { candidates.append((name, t)) }
                if let name = n.input(k), let t = inits[name] { candidates.append((name, t)) }
                for (name, t) in candidates where t.dtype.isFloatingPoint {
                    let values = t.floats()
                    if let bad = values.firstIndex(where: { !$0.isFinite }) {
                        throw ModelError.invalid(path: path, what: "node '\(n.displayName)' (\(n.opType)): \(role) '\(name)' holds \(values[bad]) at element \(bad); it cannot be quantized (fix the model, or keep the node float with --exclude \(n.name.isEmpty ? n.opType : n.name))")
                    }
                }
            }
        }
    }
}
