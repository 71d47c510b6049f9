import Foundation
import SwiftQCore

/// Calls `body(inputIndex, outputIndex)` for every element of a tensor of `shape` reduced over `axes`
/// (the output index counts the kept elements in row-major order), walking the input once in order.
func forEachReduced(_ shape: [Int], axes: Set<Int>, _ body: (Int, Int) -> Void) {
    let kept = shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
    let sk = strides(of: kept)
    let step = shape.indices.map { axes.contains($0) ? 0 : sk[$0] }
    let n = shape.reduce(1, *)
    guard n > 0 else { return }
    var idx = [Int](repeating: 0, count: shape.count)
    var o = 0
    for i in 0..<n {
        body(i, o)
        var d = shape.count - 1
        while d >= 0 {
            idx[d] += 1
            o += step[d]
            if idx[d] < shape[d] { break }
            o -= step[d] * shape[d]
            idx[d] = 0
            d -= 1
        }
    }
}

/// ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceSumSquare, ReduceL1, ReduceL2, ReduceLogSum
/// and ReduceLogSumExp over `axes` (an attribute, or an input: ReduceSum from opset 13, the others from 18),
/// with keepdims and noop_with_empty_axes. Any numeric type; accumulates in Double.
struct ReduceOp: Operator {
    let fail: NodeFailure
    let opType: String
    let axesAttribute: [Int]?
    let keepDims: Bool
    let noopWithEmptyAxes: Bool

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        opType = s.node.opType
        axesAttribute = s.ints("axes")
        keepDims = s.int("keepdims", 1) != 0
        noopWithEmptyAxes = s.int("noop_with_empty_axes", 0) != 0
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        var axes = axesAttribute ?? (inputs.count > 1 ? inputs[1]?.int64s().map { Int(clamping: $0) } : nil) ?? []
        if axes.isEmpty {
            if noopWithEmptyAxes { return [x] }
            axes = Array(0..<x.rank)
        }
        let set = Set(try axes.map { try normalizedAxis($0, rank: x.rank, fail) })
        let kept = x.shape.enumerated().map { set.contains($0.offset) ? 1 : $0.element }
        let v = x.doubles()
        let m = kept.reduce(1, *)
        let start: Double = switch opType {
        case "ReduceMax": -.infinity
        case "ReduceMin": .infinity
        case "ReduceProd": 1
        default: 0
        }
        var acc = [Double](repeating: start, count: m)
        var peak = [Double](repeating: -.infinity, count: m)
        if opType == "ReduceLogSumExp" { forEachReduced(x.shape, axes: set) { i, o in peak[o] = max(peak[o], v[i]) } }
        switch opType {
        case "ReduceMax": forEachReduced(x.shape, axes: set) { i, o in acc[o] = max(acc[o], v[i]) }
        case "ReduceMin": forEachReduced(x.shape, axes: set) { i, o in acc[o] = min(acc[o], v[i]) }
        case "ReduceProd": forEachReduced(x.shape, axes: set) { i, o in acc[o] *= v[i] }
        case "ReduceSumSquare", "ReduceL2": forEachReduced(x.shape, axes: set) { i, o in acc[o] += v[i] * v[i] }
        case "ReduceL1": forEachReduced(x.shape, axes: set) { i, o in acc[o] += abs(v[i]) }
        case "ReduceLogSumExp": forEachReduced(x.shape, axes: set) { i, o in acc[o] += exp(v[i] - peak[o]) }
        default: forEachReduced(x.shape, axes: set) { i, o in acc[o] += v[i] }
        }
        let per = Double(max(1, x.count / max(1, m)))
        for o in 0..<m {
            switch opType {
            case "ReduceMean": acc[o] /= per
            case "ReduceL2": acc[o] = acc[o].squareRoot()
            case "ReduceLogSum": acc[o] = log(acc[o])
            case "ReduceLogSumExp": acc[o] = peak[o] + log(acc[o])
            default: break
            }
        }
        let shape = keepDims ? kept : x.shape.enumerated().filter { !set.contains($0.offset) }.map(\.element)
        return [RTensor.from(doubles: acc, dtype: x.dtype, shape: shape)]
    }
}

/// ArgMax and ArgMin along `axis` (keepdims, select_last_index): int64 indices.
struct ArgExtremeOp: Operator {
    let fail: NodeFailure
    let largest: Bool
    let axis: Int
    let keepDims: Bool
    let last: Bool

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        largest = s.node.opType == "ArgMax"
        axis = s.int("axis", 0)
        keepDims = s.int("keepdims", 1) != 0
        last = s.int("select_last_index", 0) != 0
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        let a = try normalizedAxis(axis, rank: x.rank, fail)
        let v = x.doubles()
        let outer = x.shape[..<a].reduce(1, *), len = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *)
        guard len > 0 else { throw fail.invalid("axis \(a) has no elements") }
        var r = [Int64](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                var best = v[o * len * inner + i], at = 0
                for j in 1..<max(1, len) {
                    let e = v[(o * len + j) * inner + i]
                    let better = largest ? (e > best || (last && e == best)) : (e < best || (last && e == best))
                    if better { best = e; at = j }
                }
                r[o * inner + i] = Int64(at)
            }
        }
        var shape = x.shape
        if keepDims { shape[a] = 1 } else { shape.remove(at: a) }
        return [RTensor.from(int64s: r, shape: shape)]
    }
}

/// TopK: the k largest (or smallest) values along `axis` and their int64 indices, sorted; equal values keep
/// the lower index first. k is an input from opset 10, an attribute before.
struct TopKOp: Operator {
    let fail: NodeFailure
    let axis: Int
    let largest: Bool
    let kAttribute: Int?

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        axis = s.int("axis", -1)
        largest = s.int("largest", 1) != 0
        kAttribute = s.opset < 10 ? s.node.int("k").map { Int(clamping: $0) } : nil
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        let a = try normalizedAxis(axis, rank: x.rank, fail)
        guard let k = try kAttribute ?? inputs.required(1, fail).int64s().first.map({ Int(clamping: $0) }) else {
            throw fail.invalid("TopK needs k")
        }
        let len = x.shape[a]
        guard k >= 0 && k <= len else { throw fail.invalid("k \(k) is outside 0...\(len)") }
        let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *)
        var shape = x.shape
        shape[a] = k
        let v = x.doubles()
        var values = [Double](repeating: 0, count: outer * k * inner), indices = [Int64](repeating: 0, count: values.count)
        for o in 0..<outer {
            for i in 0..<inner {
                let order = (0..<len).sorted { p, q in
                    let vp = v[(o * len + p) * inner + i], vq = v[(o * len + q) * inner + i]
                    return vp == vq ? p < q : (largest ? vp > vq : vp < vq)
                }
                for j in 0..<k {
                    values[(o * k + j) * inner + i] = v[(o * len + order[j]) * inner + i]
                    indices[(o * k + j) * inner + i] = Int64(order[j])
                }
            }
        }
        return [RTensor.from(doubles: values, dtype: x.dtype, shape: shape), RTensor.from(int64s: indices, shape: shape)]
    }
}
