import SwiftQCore

/// Attribute names the runtime sets on a Conv it fused an activation into (never written to a file).
let fusedMinAttribute = "swiftq.fused_min"
let fusedMaxAttribute = "swiftq.fused_max"
/// The smooth activation fused into a Conv after its clamp, if any: "silu" or "hardswish" (`ConvActivation`).
let fusedActivationAttribute = "swiftq.fused_activation"

/// The graph the runtime executes: a zero-constant Pad of the spatial dimensions folded into the following
/// Conv's pads, BatchNormalization folded into a preceding Conv with a constant weight, and a following Relu
/// or constant-bound Clip folded into the Conv as a clamp; with `smoothActivations`, a following SiLU (`x · Sigmoid(x)`,
/// as PyTorch exports it) or HardSwish becomes the Conv's activation instead (the same bits as the separate ops).
/// Only values with a single consumer (SiLU: the Sigmoid and the Mul) that are not graph outputs disappear. The
/// model's semantics are unchanged (up to float rounding).
func fuseForExecution(_ g: Graph, opset: Int64, smoothActivations: Bool = true) -> Graph {
    var graph = foldPadsIntoConv(constantsAsInitializers(g), opset: opset)
    var inits = graph.initializerTable
    let graphOutputs = Set(graph.outputs.map(\.name))
    // Built once: the folds below change only Conv weights and outputs, never which node reads a value.
    var consumerTable: [String: [Int]] = [:]
    for (i, n) in graph.nodes.enumerated() {
        for x in Set(n.inputs) where !x.isEmpty { consumerTable[x, default: []].append(i) }
    }
    func consumers(_ name: String) -> [Int] { consumerTable[name] ?? [] }
    func constant(_ name: String?) -> [Float]? { name.flatMap { inits[$0] }.map { $0.floats() } }
    var removed = Set<Int>()
    var newInits: [Initializer] = []
    for i in graph.nodes.indices where graph.nodes[i].opType == "Conv" && graph.nodes[i].isDefaultDomain {
        var conv = graph.nodes[i]
        guard let wName = conv.input(1), let w = inits[wName], w.dtype.isFloatingPoint, w.shape.count >= 3 else { continue }
        var out = conv.outputs[0]
        var weight = w.floats()
        var bias = constant(conv.input(2)) ?? [Float](repeating: 0, count: w.shape[0])
        var changedWeights = false
        var next = consumers(out)
        if next.count == 1, !graphOutputs.contains(out), !removed.contains(next[0]) {
            let bn = graph.nodes[next[0]]
            if bn.opType == "BatchNormalization", bn.isDefaultDomain, bn.outputs.count == 1 || bn.outputs.dropFirst().allSatisfy(\.isEmpty),
               let scale = constant(bn.input(1)), let shift = constant(bn.input(2)), let mean = constant(bn.input(3)),
               let variance = constant(bn.input(4)), scale.count == w.shape[0], shift.count == scale.count,
               mean.count == scale.count, variance.count == scale.count {
                let eps = bn.float("epsilon") ?? 1e-5
                let per = weight.count / scale.count
                for c in 0..<scale.count {
                    let k = scale[c] / (variance[c] + eps).squareRoot()
                    for j in 0..<per { weight[c * per + j] *= k }
                    bias[c] = (bias[c] - mean[c]) * k + shift[c]
                }
                changedWeights = true
                removed.insert(next[0])
                out = bn.outputs[0]
                next = consumers(out)
            }
        }
        if next.count == 1, !graphOutputs.contains(out), !removed.contains(next[0]) {
            let act = graph.nodes[next[0]]
            var bounds: (Float, Float)? = nil
            if act.opType == "Relu", act.isDefaultDomain { bounds = (0, .infinity) }
            if act.opType == "Clip", act.isDefaultDomain {
                // Opset 11 and later give the bounds as inputs, earlier opsets as attributes.
                var lo: Float? = act.float("min") ?? -.infinity, hi: Float? = act.float("max") ?? .infinity
                if act.inputs.count > 1 {
                    lo = act.input(1).map { constant($0)?.first } ?? -.infinity
                    hi = act.input(2).map { constant($0)?.first } ?? .infinity
                }
                if let lo, let hi { bounds = (lo, hi) }
            }
            if let (lo, hi) = bounds {
                conv.attributes.append(Attribute(name: fusedMinAttribute, value: .float(lo)))
                conv.attributes.append(Attribute(name: fusedMaxAttribute, value: .float(hi)))
                removed.insert(next[0])
                out = act.outputs[0]
            } else if smoothActivations, act.opType == "HardSwish", act.isDefaultDomain, act.outputs.count == 1 {
                conv.attributes.append(Attribute(name: fusedActivationAttribute, value: .string(ConvActivation.hardSwish.rawValue)))
                removed.insert(next[0])
                out = act.outputs[0]
            }
        } else if smoothActivations, next.count == 2, !graphOutputs.contains(out), !next.contains(where: removed.contains) {
            // SiLU: out read by a Sigmoid and by a Mul of out with the Sigmoid's output, which nothing else reads.
            let (a, b) = (graph.nodes[next[0]], graph.nodes[next[1]])
            if let (sigmoid, mul) = a.opType == "Sigmoid" ? (a, b) : b.opType == "Sigmoid" ? (b, a) : nil,
               sigmoid.isDefaultDomain, mul.isDefaultDomain, mul.opType == "Mul", sigmoid.outputs.count == 1, mul.outputs.count == 1,
               let s = sigmoid.outputs.first, !graphOutputs.contains(s), consumers(s).count == 1,
               Set(mul.inputs) == [out, s], mul.inputs.count == 2 {
                conv.attributes.append(Attribute(name: fusedActivationAttribute, value: .string(ConvActivation.silu.rawValue)))
                removed.formUnion(next)
                out = mul.outputs[0]
            }
        }
        if changedWeights {
            let base = conv.name.isEmpty ? conv.outputs[0] : conv.name
            let wn = "\(base).swiftq_folded_weight", bn = "\(base).swiftq_folded_bias"
            newInits.append(Initializer(name: wn, tensor: Tensor(floats: weight, shape: w.shape)))
            newInits.append(Initializer(name: bn, tensor: Tensor(floats: bias, shape: [bias.count])))
            inits[wn] = newInits[newInits.count - 2].tensor
            inits[bn] = newInits[newInits.count - 1].tensor
            conv.inputs = [conv.inputs[0], wn, bn]
        }
        conv.outputs = [out]
        graph.nodes[i] = conv
    }
    graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    graph.initializers += newInits
    return graph
}

/// Pad (constant mode, value 0, spatial dimensions only, no negative amounts) whose only consumer is a Conv
/// with explicit pads: the amounts move into the Conv's `pads` and the Pad disappears (exporters of TF-"same"
/// models write such pairs; the Conv then reads the unpadded input directly).
func foldPadsIntoConv(_ g: Graph, opset: Int64) -> Graph {
    var graph = g
    let folds = padFolds(g, opset: opset)
    for f in folds { graph.nodes[f.conv] = f.folded }
    let removed = Set(folds.map(\.pad))
    graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    return graph
}

/// The Pad → Conv pairs `foldPadsIntoConv` merges: the Pad's index, the Conv's index and the Conv with the
/// padding folded in (reading the Pad's input).
public func padFolds(_ g: Graph, opset: Int64) -> [(pad: Int, conv: Int, folded: Node)] {
    let inits = g.initializerTable
    let graphOutputs = Set(g.outputs.map(\.name))
    var producer: [String: Int] = [:]
    var uses: [String: Int] = [:]
    for (i, n) in g.nodes.enumerated() {
        for o in n.outputs where !o.isEmpty { producer[o] = i }
        for x in n.inputs where !x.isEmpty { uses[x, default: 0] += 1 }
    }
    var folds: [(pad: Int, conv: Int, folded: Node)] = []
    var taken = Set<Int>()
    for i in g.nodes.indices where g.nodes[i].opType == "Conv" && g.nodes[i].isDefaultDomain {
        var conv = g.nodes[i]
        guard let x = conv.input(0), let pi = producer[x], !taken.contains(pi), uses[x] == 1, !graphOutputs.contains(x) else { continue }
        let pad = g.nodes[pi]
        guard pad.opType == "Pad", pad.isDefaultDomain, (pad.string("mode") ?? "constant") == "constant", pad.inputs.count <= 3,
              let padInput = pad.input(0) else { continue }
        var amounts: [Int64]
        if opset >= 11 {
            guard let p = pad.input(1), let t = inits[p] else { continue }
            amounts = t.int64s()
            if let v = pad.input(2) {
                guard let t = inits[v], t.floats() == [0] else { continue }
            }
        } else {
            guard let p = pad.ints("pads"), (pad.float("value") ?? 0) == 0 else { continue }
            amounts = p
        }
        let rank = amounts.count / 2
        guard rank == 3 || rank == 4, amounts.count == 2 * rank, amounts.allSatisfy({ $0 >= 0 }),
              amounts[0] == 0, amounts[1] == 0, amounts[rank] == 0, amounts[rank + 1] == 0 else { continue }
        let autoPad = conv.string("auto_pad") ?? "NOTSET"
        guard autoPad == "NOTSET" || autoPad.isEmpty else { continue }
        let spatial = rank - 2
        var pads = conv.ints("pads") ?? Array(repeating: 0, count: 2 * spatial)
        guard pads.count == 2 * spatial else { continue }
        for d in 0..<spatial {
            pads[d] += amounts[2 + d]
            pads[spatial + d] += amounts[rank + 2 + d]
        }
        conv.attributes.removeAll { $0.name == "pads" || $0.name == "auto_pad" }
        conv.attributes.append(Attribute(name: "pads", value: .ints(pads)))
        conv.inputs[0] = padInput
        taken.insert(pi)
        folds.append((pi, i, conv))
    }
    return folds
}

/// Constant nodes (exporters write weights and BatchNormalization statistics that way) turned into
/// initializers, so the folds below see them.
func constantsAsInitializers(_ g: Graph) -> Graph {
    var graph = g
    var keep: [Node] = []
    for n in graph.nodes {
        if n.opType == "Constant", n.isDefaultDomain, n.outputs.count == 1, let t = try? constantValue(n) {
            graph.initializers.append(Initializer(name: n.outputs[0], tensor: t))
        } else {
            keep.append(n)
        }
    }
    graph.nodes = keep
    return graph
}
