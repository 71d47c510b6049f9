import SwiftQCore

/// A Mul, Div, Add or Sub by a constant that is the same along every axis but the output channels, right after a
/// Conv, ConvTranspose or Gemm (alpha = beta = 1) with constant weights whose output has no other reader, becomes
/// part of that layer: Mul and Div scale its weight and bias per channel, Add and Sub shift its bias. Exporters
/// leave these behind (a bias added as its own node after ConvTranspose, PP-LCNet's learnable affine blocks
/// after each Conv); folded, they cost no time and no second rounding of the layer's output when quantized.
public struct FoldAffine: Pass {
    public let name = "fold-affine"
    public init() {}

    public func patches(_ model: Model) throws -> [Patch] {
        let g = model.graph
        let inits = g.initializerTable
        let consumers = g.consumers()
        let outputs = Set(g.outputs.map(\.name))
        var result: [Patch] = []
        var used = Set<Int>()
        for (i, node) in g.nodes.enumerated() where ["Conv", "ConvTranspose", "Gemm"].contains(node.opType) && node.isDefaultDomain && !used.contains(i) {
            guard let out = node.outputs.first, !outputs.contains(out), let next = consumers[out], next.count == 1, !used.contains(next[0]),
                  let wName = node.input(1), let w = inits[wName], w.dtype.isFloatingPoint,
                  let layout = OutputChannels(node: node, weightShape: w.shape) else { continue }
            if node.opType == "Gemm", (node.float("alpha") ?? 1) != 1 || (node.float("beta") ?? 1) != 1 { continue }
            let a = g.nodes[next[0]]
            guard a.isDefaultDomain, ["Mul", "Div", "Add", "Sub"].contains(a.opType), a.inputs.count == 2 else { continue }
            // The layer's output must be the first operand of Div and Sub (x / c, x − c).
            let k = a.inputs[0] == out ? 1 : 0
            guard a.inputs[1 - k] == out, a.inputs[k] != out, k == 1 || ["Mul", "Add"].contains(a.opType),
                  let c = inits[a.inputs[k]], c.dtype.isFloatingPoint else { continue }
            let m = layout.count
            let rank = node.opType == "Gemm" ? 2 : w.shape.count
            guard let perChannel = Self.channelValues(c, channels: m, rank: rank) else { continue }
            if a.opType == "Div", perChannel.contains(0) { continue }
            var bias = [Float](repeating: 0, count: m)
            if let b = node.input(2) {
                guard let t = inits[b], t.dtype.isFloatingPoint, t.elementCount == m || t.elementCount == 1 else { continue }
                let v = t.floats()
                bias = (0..<m).map { v.count == 1 ? v[0] : v[$0] }
            }
            var weight = w.floats()
            for ch in 0..<m {
                let v = perChannel[ch]
                switch a.opType {
                case "Mul": bias[ch] *= v
                case "Div": bias[ch] /= v
                case "Add": bias[ch] += v
                default: bias[ch] -= v
                }
            }
            if a.opType == "Mul" || a.opType == "Div" {
                for idx in weight.indices {
                    let v = perChannel[layout.channel(of: idx)]
                    weight[idx] = a.opType == "Mul" ? weight[idx] * v : weight[idx] / v
                }
            }
            let base = node.name.isEmpty ? out : node.name
            let wn = "\(base)_affine_weight", bn = "\(base)_affine_bias"
            var folded = node
            folded.inputs = [node.inputs[0], wn, bn]
            folded.outputs = [a.outputs[0]]
            used.insert(i)
            used.insert(next[0])
            result.append(Patch("\(a.opType) '\(a.displayName)' by a constant folded into \(node.opType) '\(node.displayName)'", [
                .addInitializer(Initializer(name: wn, tensor: Tensor(floats: weight, shape: w.shape))),
                .addInitializer(Initializer(name: bn, tensor: Tensor(floats: bias, shape: [m]))),
                .replace(node: i, with: folded),
                .remove(node: next[0]),
            ]))
        }
        return result
    }

    /// The value per output channel of a constant that broadcasts against a [N, M, …] output of `rank` only
    /// along the channel axis (a scalar, [M], [M, 1, 1], [1, M, 1, 1]…); nil for any other shape.
    static func channelValues(_ c: Tensor, channels m: Int, rank: Int) -> [Float]? {
        guard c.shape.count <= rank else { return nil }
        let padded = [Int](repeating: 1, count: rank - c.shape.count) + c.shape
        for (d, s) in padded.enumerated() where s != 1 && !(d == 1 && s == m) { return nil }
        let v = c.floats()
        guard v.allSatisfy(\.isFinite) else { return nil }
        return v.count == 1 ? Array(repeating: v[0], count: m) : v
    }
}
