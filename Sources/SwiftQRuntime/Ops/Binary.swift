import Foundation
import SwiftQCore
import SwiftQKernels

/// numpy-style broadcast of two shapes, or nil when they do not broadcast.
func broadcastShapes(_ a: [Int], _ b: [Int]) -> [Int]? {
    let r = max(a.count, b.count)
    let pa = [Int](repeating: 1, count: r - a.count) + a, pb = [Int](repeating: 1, count: r - b.count) + b
    var out: [Int] = []
    for (x, y) in zip(pa, pb) {
        if x == y || y == 1 { out.append(x) } else if x == 1 { out.append(y) } else { return nil }
    }
    return out
}

/// Strides of `shape` read as broadcast to `out` (0 along broadcast dimensions).
func broadcastStrides(_ shape: [Int], to out: [Int]) -> [Int] {
    let padded = [Int](repeating: 1, count: out.count - shape.count) + shape
    let s = strides(of: padded)
    return padded.indices.map { padded[$0] == 1 && out[$0] != 1 ? 0 : s[$0] }
}

/// Calls `body(outIndex, aIndex, bIndex, n, aStep, bStep)` for runs along the last dimension of `out`.
func forEachBroadcastRun(_ out: [Int], _ sa: [Int], _ sb: [Int], _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
    let r = out.count
    if r == 0 { body(0, 0, 0, 1, 0, 0); return }
    let inner = out[r - 1], outer = out.dropLast().reduce(1, *)
    var idx = [Int](repeating: 0, count: max(0, r - 1))
    var ia = 0, ib = 0
    for o in 0..<outer {
        body(o * inner, ia, ib, inner, sa[r - 1], sb[r - 1])
        var d = r - 2
        while d >= 0 {
            idx[d] += 1
            ia += sa[d]; ib += sb[d]
            if idx[d] < out[d] { break }
            ia -= sa[d] * out[d]; ib -= sb[d] * out[d]
            idx[d] = 0
            d -= 1
        }
    }
}

/// Raw values are the op codes of `Fast.binary` (sq_binary).
enum BinaryKind: Int { case add, sub, mul, div, prelu }

/// Merges neighbouring dimensions that both operands walk through contiguously (or both broadcast), so
/// the innermost runs are as long as possible: [1,200,2,96] with [1,200,1,1] becomes [200,192] with strides
/// [192,1] and [1,0].
func coalesce(_ out: [Int], _ sa: [Int], _ sb: [Int]) -> ([Int], [Int], [Int]) {
    var shape: [Int] = [], a: [Int] = [], b: [Int] = []
    for d in out.indices where out[d] != 1 {
        if let n = shape.last, a.last! == sa[d] * out[d], b.last! == sb[d] * out[d] {
            shape[shape.count - 1] = n * out[d]
            a[a.count - 1] = sa[d]
            b[b.count - 1] = sb[d]
        } else {
            shape.append(out[d]); a.append(sa[d]); b.append(sb[d])
        }
    }
    if shape.isEmpty { return ([1], [0], [0]) }
    return (shape, a, b)
}

/// Add, Sub, Mul, Div, PRelu with numpy broadcasting. Floats on a fast path; integer types through Double
/// with C semantics (wrap-around, division truncating toward zero).
struct BinaryOp: Operator {
    let fail: NodeFailure
    let kind: BinaryKind

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        switch s.node.opType {
        case "Add": kind = .add
        case "Sub": kind = .sub
        case "Mul": kind = .mul
        case "Div": kind = .div
        default: kind = .prelu
        }
        if s.opset < 7 && s.node.int("broadcast") == 1 && s.node.int("axis") != nil { throw s.unsupported("legacy broadcast with axis") }
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let a = try inputs.required(0, fail), b = try inputs.required(1, fail)
        return [try binary(a, b, ctx)]
    }

    func binary(_ a: RTensor, _ b: RTensor, _ ctx: ExecutionContext) throws -> RTensor {
        guard a.dtype == b.dtype else { throw fail.invalid("input types differ: \(a.dtype) and \(b.dtype)") }
        guard let out = broadcastShapes(a.shape, b.shape) else { throw fail.invalid("shapes \(a.shape) and \(b.shape) do not broadcast") }
        let sa = broadcastStrides(a.shape, to: out), sb = broadcastStrides(b.shape, to: out)
        if a.dtype == .float && !ctx.referenceOnly {
            let y = ctx.alloc(.float, out)
            let (shape, ca, cb) = coalesce(out, sa, sb)
            let op = kind.rawValue
            let pa = a.f, pb = b.f, py = y.f
            let total = y.count, inner = shape.last ?? 1
            if total == inner && total >= 1 << 18 && ctx.threads > 1 {
                let (da, db) = (ca.last ?? 0, cb.last ?? 0)
                let chunk = (total + ctx.threads - 1) / ctx.threads
                parallelFor(ctx.threads, threads: ctx.threads) { p in
                    let i0 = p * chunk, n = min(total, i0 + chunk) - i0
                    if n > 0 { Fast.binary(op, a: pa + i0 * da, sa: da, b: pb + i0 * db, sb: db, y: py + i0, n: n) }
                }
                return y
            }
            forEachBroadcastRun(shape, ca, cb) { o, ia, ib, n, da, db in
                Fast.binary(op, a: pa + ia, sa: da, b: pb + ib, sb: db, y: py + o, n: n)
            }
            return y
        }
        if a.dtype == .float {
            let y = ctx.alloc(.float, out)
            let pa = a.f, pb = b.f, py = y.f
            let k = kind
            forEachBroadcastRun(out, sa, sb) { o, ia, ib, n, da, db in
                switch k {
                case .add: for i in 0..<n { py[o + i] = pa[ia + i * da] + pb[ib + i * db] }
                case .sub: for i in 0..<n { py[o + i] = pa[ia + i * da] - pb[ib + i * db] }
                case .mul: for i in 0..<n { py[o + i] = pa[ia + i * da] * pb[ib + i * db] }
                case .div: for i in 0..<n { py[o + i] = pa[ia + i * da] / pb[ib + i * db] }
                case .prelu: for i in 0..<n { let x = pa[ia + i * da]; py[o + i] = x < 0 ? x * pb[ib + i * db] : x }
                }
            }
            return y
        }
        let va = a.doubles(), vb = b.doubles()
        var r = [Double](repeating: 0, count: out.reduce(1, *))
        let integer = !a.dtype.isFloatingPoint
        forEachBroadcastRun(out, sa, sb) { o, ia, ib, n, da, db in
            for i in 0..<n {
                let x = va[ia + i * da], y = vb[ib + i * db]
                switch kind {
                case .add: r[o + i] = x + y
                case .sub: r[o + i] = x - y
                case .mul: r[o + i] = x * y
                case .div: r[o + i] = integer ? (y == 0 ? 0 : (x / y).rounded(.towardZero)) : x / y
                case .prelu: r[o + i] = x < 0 ? x * y : x
                }
            }
        }
        return RTensor.from(doubles: r, dtype: a.dtype, shape: out)
    }
}
