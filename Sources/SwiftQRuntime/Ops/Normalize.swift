import Foundation
import SwiftQCore

/// Softmax: along `axis` (opset 13+, default −1), or over the 2-D coercion at `axis` (before 13, default 1).
struct SoftmaxOp: Operator {
    let fail: NodeFailure
    let axis: Int
    let coerce2D: Bool

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        coerce2D = s.opset < 13
        axis = s.int("axis", coerce2D ? 1 : -1)
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        guard x.dtype == .float else { throw fail.invalid("Softmax runs on float tensors") }
        let ax = axis < 0 ? axis + x.rank : axis
        guard ax >= 0 && ax < max(1, x.rank) else { throw fail.invalid("axis \(axis) out of range for rank \(x.rank)") }
        let outer = x.shape[..<ax].reduce(1, *)
        let len = coerce2D ? x.shape[ax...].reduce(1, *) : x.shape[ax]
        let inner = coerce2D ? 1 : x.shape[(ax + 1)...].reduce(1, *)
        let y = ctx.alloc(.float, x.shape)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * len * inner + i
                var mx = -Float.infinity
                for j in 0..<len { mx = max(mx, x.f[base + j * inner]) }
                var s: Float = 0
                for j in 0..<len { let e = exp(x.f[base + j * inner] - mx); y.f[base + j * inner] = e; s += e }
                for j in 0..<len { y.f[base + j * inner] /= s }
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

/// ReduceMean over `axes` (attribute before opset 18, input from 18), keepdims, noop_with_empty_axes.
struct ReduceMeanOp: Operator {
    let fail: NodeFailure
    let axesAttribute: [Int]?
    let keepDims: Bool
    let noopWithEmptyAxes: Bool

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        axesAttribute = s.ints("axes")
        keepDims = s.int("keepdims", 1) != 0
        noopWithEmptyAxes = s.int("noop_with_empty_axes", 0) != 0
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        var axes = axesAttribute ?? (inputs.count > 1 ? inputs[1]?.int64s().map { Int($0) } : nil) ?? []
        if axes.isEmpty {
            if noopWithEmptyAxes { return [x] }
            axes = Array(0..<x.rank)
        }
        let set = Set(axes.map { $0 < 0 ? $0 + x.rank : $0 })
        guard set.allSatisfy({ $0 >= 0 && $0 < x.rank }) else { throw fail.invalid("axes \(axes) out of range for rank \(x.rank)") }
        let kept = x.shape.enumerated().map { set.contains($0.offset) ? 1 : $0.element }
        let v = x.doubles()
        var sums = [Double](repeating: 0, count: kept.reduce(1, *))
        let sx = strides(of: x.shape), sk = strides(of: kept)
        for i in 0..<v.count {
            var rem = i, o = 0
            for d in 0..<x.rank { let c = rem / sx[d]; rem %= sx[d]; if !set.contains(d) { o += c * sk[d] } }
            sums[o] += v[i]
        }
        let per = Double(max(1, x.count / max(1, sums.count)))
        let shape = keepDims ? kept : x.shape.enumerated().filter { !set.contains($0.offset) }.map(\.element)
        return [RTensor.from(doubles: sums.map { $0 / per }, dtype: x.dtype, shape: shape)]
    }
}
