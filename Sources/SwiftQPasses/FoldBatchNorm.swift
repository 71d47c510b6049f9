import SwiftQCore

/// BatchNormalization (inference form) right after a Conv, ConvTranspose or Gemm with a constant weight, when
/// the producer's output has no other reader: y = (x − mean) · scale / √(var + ε) + shift becomes part of the
/// producer's weight and bias (per output channel), and the BatchNormalization node disappears.
public struct FoldBatchNorm: Pass {
    public let name = "fold-batchnorm"
    public init() {}

    public func patches(_ model: Model) throws -> [Patch] {
        let g = model.graph
        let inits = g.initializerTable
        let consumers = g.consumers()
        let outputs = Set(g.outputs.map(\.name))
        func floats(_ name: String?) -> [Float]? { name.flatMap { inits[$0] }.map { $0.floats() } }
        var result: [Patch] = []
        var used = Set<Int>()
        for (i, node) in g.nodes.enumerated() where ["Conv", "ConvTranspose", "Gemm"].contains(node.opType) && node.isDefaultDomain {
            guard let out = node.outputs.first, !outputs.contains(out), let next = consumers[out], next.count == 1, !used.contains(next[0])
            else { continue }
            let bn = g.nodes[next[0]]
            guard bn.opType == "BatchNormalization", bn.isDefaultDomain, bn.input(0) == out,
                  bn.outputs.dropFirst().allSatisfy({ $0.isEmpty }), (bn.int("training_mode") ?? 0) == 0,
                  let wName = node.input(1), let w = inits[wName], w.dtype.isFloatingPoint,
                  let scale = floats(bn.input(1)), let shift = floats(bn.input(2)), let mean = floats(bn.input(3)),
                  let variance = floats(bn.input(4)) else { continue }
            let channels = scale.count
            guard shift.count == channels, mean.count == channels, variance.count == channels,
                  let layout = OutputChannels(node: node, weightShape: w.shape), layout.count == channels else { continue }
            let eps = bn.float("epsilon") ?? 1e-5
            let k = (0..<channels).map { scale[$0] / (variance[$0] + eps).squareRoot() }
            var weight = w.floats()
            var alpha: Float = 1, beta: Float = 1
            if node.opType == "Gemm" { alpha = node.float("alpha") ?? 1; beta = node.float("beta") ?? 1 }
            for idx in weight.indices { weight[idx] *= alpha * k[layout.channel(of: idx)] }
            var bias = [Float](repeating: 0, count: channels)
            if let b = floats(node.input(2)) {
                guard b.count == channels || b.count == 1 else { continue }
                for c in 0..<channels { bias[c] = beta * (b.count == 1 ? b[0] : b[c]) }
            }
            for c in 0..<channels { bias[c] = (bias[c] - mean[c]) * k[c] + shift[c] }
            var fused = node
            if node.opType == "Gemm" {
                fused.attributes.removeAll { $0.name == "alpha" || $0.name == "beta" }
            }
            used.insert(i)
            used.insert(next[0])
            result.append(.refold("BatchNormalization '\(bn.displayName)' folded into \(node.opType) '\(node.displayName)'", at: i, fused,
                                  input: node.inputs[0], output: bn.outputs[0], tag: "bnfolded", weight: Tensor(floats: weight, shape: w.shape), bias: bias,
                                  removing: [next[0]]))
        }
        return result
    }
}

extension Patch {
    /// Layer node `i` with a new weight and bias (initializers `<base>_<tag>_weight` and `_bias`), reading `input`
    /// and writing `output`, and the nodes it absorbed (`removing`) gone: what every fold into a layer returns.
    static func refold(_ summary: String, at i: Int, _ node: Node, input: String, output: String, tag: String,
                       weight: Tensor, bias: [Float], removing: [Int]) -> Patch {
        let base = node.name.isEmpty ? node.outputs[0] : node.name
        let wn = "\(base)_\(tag)_weight", bn = "\(base)_\(tag)_bias"
        var folded = node
        folded.inputs = [input, wn, bn]
        folded.outputs = [output]
        return Patch(summary, [
            .addInitializer(Initializer(name: wn, tensor: weight)),
            .addInitializer(Initializer(name: bn, tensor: Tensor(floats: bias, shape: [bias.count]))),
            .replace(node: i, with: folded),
        ] + removing.map { .remove(node: $0) })
    }
}

/// Which output channel each weight element belongs to, for the weighted ops quantization and folding treat
/// per channel: Conv [M, C/g, k…] (axis 0), ConvTranspose [C, M/g, k…] (axis 1, per group), Gemm B [K, N]
/// (axis 1) or Bᵀ [N, K] with transB (axis 0), MatMul B [K, N] (axis 1).
public struct OutputChannels: Sendable {
    public let count: Int
    /// The weight axis holding output channels, and the sizes around it.
    public let axis: Int
    let inner: Int, axisSize: Int, group: Int, inputChannels: Int

    public init?(node: Node, weightShape s: [Int]) {
        switch node.opType {
        case "Conv":
            guard s.count >= 3 else { return nil }
            axis = 0; group = 1
        case "ConvTranspose":
            guard s.count >= 3 else { return nil }
            axis = 1; group = Int(node.int("group") ?? 1)
        case "Gemm":
            guard s.count == 2 else { return nil }
            axis = (node.int("transB") ?? 0) != 0 ? 0 : 1; group = 1
        case "MatMul":
            guard s.count == 2 else { return nil }
            axis = 1; group = 1
        default: return nil
        }
        axisSize = s[axis]
        inner = s[(axis + 1)...].reduce(1, *)
        count = axisSize * group
        inputChannels = s[0]
    }

    /// The output channel of flat weight index `i`.
    public func channel(of i: Int) -> Int {
        let c = (i / inner) % axisSize
        if group == 1 { return c }
        // ConvTranspose: input channel ci belongs to group ci / (C/group), whose outputs start at group · M/group.
        let ci = i / (inner * axisSize)
        return ci / (inputChannels / group) * axisSize + c
    }
}
