import Foundation
import SwiftQCore

/// Softmax, LogSoftmax and Hardmax: along `axis` (opset 13+, default −1), or over the 2-D coercion at `axis`
/// (before 13, default 1). Hardmax marks the first largest value of each row.
struct SoftmaxOp: Operator {
    let fail: NodeFailure
    let opType: String
    let axis: Int
    let coerce2D: Bool

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        opType = s.node.opType
        coerce2D = s.opset < 13
        axis = s.int("axis", coerce2D ? 1 : -1)
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        guard x.dtype == .float else { throw fail.invalid("\(opType) runs on float tensors") }
        let ax = axis < 0 ? axis + x.rank : axis
        guard ax >= 0 && ax < max(1, x.rank) else { throw fail.invalid("axis \(axis) out of range for rank \(x.rank)") }
        let outer = x.shape[..<ax].reduce(1, *)
        let len = coerce2D ? x.shape[ax...].reduce(1, *) : x.shape[ax]
        let inner = coerce2D ? 1 : x.shape[(ax + 1)...].reduce(1, *)
        let y = ctx.alloc(.float, x.shape)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * len * inner + i
                var mx = -Float.infinity, at = 0
                for j in 0..<len where x.f[base + j * inner] > mx { mx = x.f[base + j * inner]; at = j }
                if opType == "Hardmax" {
                    for j in 0..<len { y.f[base + j * inner] = j == at ? 1 : 0 }
                    continue
                }
                var s: Float = 0
                for j in 0..<len { let e = exp(x.f[base + j * inner] - mx); y.f[base + j * inner] = e; s += e }
                if opType == "LogSoftmax" {
                    let l = log(s)
                    for j in 0..<len { y.f[base + j * inner] = x.f[base + j * inner] - mx - l }
                } else {
                    for j in 0..<len { y.f[base + j * inner] /= s }
                }
            }
        }
        return [y]
    }
}

/// LRN across channels: y = x / (bias + alpha/size · Σ x²)^beta over a window of `size` channels.
struct LRNOp: Operator {
    let fail: NodeFailure
    let size: Int
    let alpha: Float, beta: Float, bias: Float

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        guard let n = s.node.int("size") else { throw s.invalid("LRN needs the size attribute") }
        size = Int(n)
        alpha = s.float("alpha", 1e-4)
        beta = s.float("beta", 0.75)
        bias = s.float("bias", 1)
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        guard x.dtype == .float, x.rank >= 2 else { throw fail.invalid("LRN needs a float input of rank ≥ 2") }
        let c = x.shape[1], inner = x.shape.dropFirst(2).reduce(1, *)
        let before = (size - 1) / 2, after = size - 1 - before
        let y = ctx.alloc(.float, x.shape)
        for n in 0..<x.shape[0] {
            for ch in 0..<c {
                for i in 0..<inner {
                    var s: Float = 0
                    for j in max(0, ch - before)...min(c - 1, ch + after) { let v = x.f[(n * c + j) * inner + i]; s += v * v }
                    let idx = (n * c + ch) * inner + i
                    y.f[idx] = x.f[idx] / pow(bias + alpha / Float(size) * s, beta)
                }
            }
        }
        return [y]
    }
}

/// Each of `rows` consecutive runs of `length` values of `x` normalized to mean 0 and variance 1 (statistics in
/// Double), then `affine(row, position, value)` applied. Returns the means and the reciprocal deviations.
func normalizeRows(_ x: RTensor, into y: RTensor, rows: Int, length: Int, epsilon: Float,
                   affine: (Int, Int, Float) -> Float) -> (mean: [Float], invStd: [Float]) {
    var means = [Float](repeating: 0, count: rows), inv = means
    let px = x.f, py = y.f
    for r in 0..<rows {
        let base = r * length
        var s = 0.0
        for i in 0..<length { s += Double(px[base + i]) }
        let mean = s / Double(max(1, length))
        var q = 0.0
        for i in 0..<length { let d = Double(px[base + i]) - mean; q += d * d }
        let k = 1 / (q / Double(max(1, length)) + Double(epsilon)).squareRoot()
        for i in 0..<length { py[base + i] = affine(r, i, Float((Double(px[base + i]) - mean) * k)) }
        means[r] = Float(mean)
        inv[r] = Float(k)
    }
    return (means, inv)
}

/// LayerNormalization (over the axes from `axis` on, scale and bias broadcast over them, optional Mean and
/// InvStdDev outputs), InstanceNormalization (per sample and channel, scale and bias per channel) and
/// GroupNormalization (per sample and group of channels; scale and bias per group as in opset 18 or per
/// channel as in 21, told apart by their length).
struct NormalizationOp: Operator {
    let fail: NodeFailure
    let opType: String
    let axis: Int
    let epsilon: Float
    let groups: Int

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        opType = s.node.opType
        axis = s.int("axis", -1)
        epsilon = s.float("epsilon", 1e-5)
        groups = s.int("num_groups", 1)
        if opType == "GroupNormalization" && groups <= 0 { throw s.invalid("num_groups must be positive") }
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        guard x.dtype == .float else { throw fail.invalid("\(opType) runs on float tensors") }
        let scale = try inputs.required(1, fail).floatArray()
        let bias = inputs.count > 2 ? inputs[2]?.floatArray() : nil
        let y = ctx.alloc(.float, x.shape)
        switch opType {
        case "LayerNormalization":
            let a = try normalizedAxis(axis, rank: x.rank, fail)
            let normalized = Array(x.shape[a...]), length = normalized.reduce(1, *), rows = x.shape[..<a].reduce(1, *)
            // Where in scale and bias each position of a normalized row reads (unidirectional broadcast).
            func positions(_ t: RTensor?) throws -> [Int]? {
                guard let t else { return nil }
                guard t.rank <= normalized.count, broadcastShapes(normalized, t.shape) == normalized else {
                    throw fail.invalid("scale and bias of shape \(t.shape) do not broadcast to the normalized shape \(normalized)")
                }
                let st = broadcastStrides(t.shape, to: normalized), sn = strides(of: normalized)
                return (0..<length).map { i in normalized.indices.reduce(0) { $0 + (i / sn[$1] % normalized[$1]) * st[$1] } }
            }
            let si = try positions(inputs[1])!, bi = try positions(inputs.count > 2 ? inputs[2] : nil)
            let (mean, inv) = normalizeRows(x, into: y, rows: rows, length: length, epsilon: epsilon) { _, i, v in
                v * scale[si[i]] + (bi.map { bias![$0[i]] } ?? 0)
            }
            let statShape = Array(x.shape[..<a]) + [Int](repeating: 1, count: x.rank - a)
            return [y, RTensor(floats: mean, shape: statShape), RTensor(floats: inv, shape: statShape)]
        default:
            guard x.rank >= 2 else { throw fail.invalid("needs an input of rank 2 or more") }
            let c = x.shape[1], inner = x.shape.dropFirst(2).reduce(1, *)
            let g = opType == "InstanceNormalization" ? c : groups
            guard c % g == 0 else { throw fail.invalid("num_groups \(g) does not divide the \(c) channels") }
            let b = bias ?? []
            guard (scale.count == c || scale.count == g) && b.count == scale.count else {
                throw fail.invalid("scale and bias need \(c) values (or \(g), one per group)")
            }
            let perGroup = c / g, length = perGroup * inner
            _ = normalizeRows(x, into: y, rows: x.shape[0] * g, length: length, epsilon: epsilon) { r, i, v in
                let k = scale.count == c ? (r % g) * perGroup + i / max(1, inner) : r % g
                return v * scale[k] + b[k]
            }
            return [y]
        }
    }
}
