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
            used.insert(i)
            used.insert(next[0])
            result.append(.refold("\(a.opType) '\(a.displayName)' by a constant folded into \(node.opType) '\(node.displayName)'", at: i, node,
                                  input: node.inputs[0], output: a.outputs[0], tag: "affine", weight: Tensor(floats: weight, shape: w.shape), bias: bias,
                                  removing: [next[0]]))
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

/// The other direction: a Mul by a constant (and an Add of one) per input channel right before a Conv,
/// read by nothing else, becomes part of that layer: W'[o, c, …] = W[o, c, …] · a[c] and
/// bias'[o] = bias[o] + Σ W[o, c, …] · b[c]. Exact when the Conv pads nothing (a padded border would see zeros,
/// not b) or there is no Add; PP-LCNet's learnable affine after each activation is this, and folded it costs no
/// int8 requantization of its own.
public struct FoldAffineIntoNext: Pass {
    public let name = "fold-affine-into-next"
    public init() {}

    public func patches(_ model: Model) throws -> [Patch] {
        let g = model.graph
        let inits = g.initializerTable
        let consumers = g.consumers(), producers = g.producers()
        let outputs = Set(g.outputs.map(\.name))
        var result: [Patch] = []
        var used = Set<Int>()
        func constantOperand(_ n: Node, of x: String) -> Tensor? {
            guard n.inputs.count == 2, n.isDefaultDomain else { return nil }
            let k = n.inputs[0] == x ? 1 : n.inputs[1] == x ? 0 : -1
            return k >= 0 && n.inputs[k] != x ? inits[n.inputs[k]] : nil
        }
        for (i, conv) in g.nodes.enumerated() where conv.opType == "Conv" && conv.isDefaultDomain && !used.contains(i) {
            guard let u = conv.input(0), let wName = conv.input(1), let w = inits[wName], w.dtype == .float, w.shape.count >= 3,
                  let pu = producers[u], !outputs.contains(u), consumers[u] == [i] else { continue }
            // Optional Add of b, then the Mul by a, each read only by the next.
            var addIndex: Int? = nil, b: [Float]? = nil, mulIndex = pu
            let c = w.shape[1] * Int(conv.int("group") ?? 1)
            if g.nodes[pu].opType == "Add", let x = g.nodes[pu].inputs.first(where: { inits[$0] == nil }), let t = constantOperand(g.nodes[pu], of: x),
               let v = FoldAffine.channelValues(t, channels: c, rank: w.shape.count) {
                guard let px = producers[x], !outputs.contains(x), consumers[x] == [pu] else { continue }
                addIndex = pu; b = v; mulIndex = px
            }
            let mul = g.nodes[mulIndex]
            guard mul.opType == "Mul", let x = mul.inputs.first(where: { inits[$0] == nil }), let at = constantOperand(mul, of: x),
                  let a = FoldAffine.channelValues(at, channels: c, rank: w.shape.count), !used.contains(mulIndex), addIndex.map({ !used.contains($0) }) ?? true else { continue }
            let pads = conv.ints("pads") ?? [], autoPad = conv.string("auto_pad") ?? "NOTSET"
            if b != nil && (pads.contains { $0 != 0 } || (autoPad != "NOTSET" && autoPad != "VALID")) { continue }
            let m = w.shape[0], group = Int(conv.int("group") ?? 1), cpg = w.shape[1], taps = w.shape[2...].reduce(1, *)
            guard group > 0, m % group == 0 else { continue }
            var weight = w.floats()
            var bias = conv.input(2).flatMap { inits[$0]?.floats() } ?? [Float](repeating: 0, count: m)
            guard bias.count == m else { continue }
            for o in 0..<m {
                let g0 = o / (m / group)
                for ci in 0..<cpg {
                    let ch = g0 * cpg + ci
                    for k in 0..<taps {
                        let idx = (o * cpg + ci) * taps + k
                        if let b { bias[o] += weight[idx] * b[ch] }
                        weight[idx] *= a[ch]
                    }
                }
            }
            used.formUnion([i, mulIndex] + (addIndex.map { [$0] } ?? []))
            result.append(.refold("Mul '\(mul.displayName)'\(addIndex.map { " and Add '\(g.nodes[$0].displayName)'" } ?? "") by constants folded into \(conv.opType) '\(conv.displayName)'",
                                  at: i, conv, input: x, output: conv.outputs[0], tag: "prefolded", weight: Tensor(floats: weight, shape: w.shape), bias: bias,
                                  removing: [mulIndex] + (addIndex.map { [$0] } ?? [])))
        }
        return result
    }
}
