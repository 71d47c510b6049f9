import Foundation
import SwiftQCore

/// A shape a kernel is about to allocate from values only known at run time (Expand's shape, Tile's repeats,
/// Range's count, Resize's sizes): every dimension non-negative and at most `Model.defaultMaxTensorElements`
/// values in all, or an error naming the node, never an allocation that kills the process.
func checkedShape(_ shape: [Int], _ fail: NodeFailure) throws -> [Int] {
    var n = 1
    for d in shape {
        guard d >= 0 else { throw fail.invalid("negative dimension in \(shape)") }
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        guard !overflow, p <= Model.defaultMaxTensorElements else {
            throw fail.invalid("output shape \(shape) would hold more than \(Model.defaultMaxTensorElements) values")
        }
        n = p
    }
    return shape
}

/// The float function of an elementwise activation or math op, with its attributes bound; nil for an op
/// that is not one of them.
func unaryFunction(_ s: OperatorSetup) throws -> ((Float) -> Float)? {
    switch s.node.opType {
    case "Exp": return { exp($0) }
    case "Log": return { log($0) }
    case "Sqrt": return { $0.squareRoot() }
    case "Reciprocal": return { 1 / $0 }
    case "Neg": return { -$0 }
    case "Abs": return { abs($0) }
    case "Floor": return { $0.rounded(.down) }
    case "Ceil": return { $0.rounded(.up) }
    case "Round": return { $0.rounded(.toNearestOrEven) }
    case "Sign": return { $0 > 0 ? 1 : $0 < 0 ? -1 : $0 }
    case "Erf": return { erf($0) }
    case "Softsign": return { $0 / (1 + abs($0)) }
    case "Softplus": return softplus
    case "Mish": return { $0 * tanh(softplus($0)) }
    case "Gelu":
        switch s.node.string("approximate") ?? "none" {
        case "none": return { 0.5 * $0 * (1 + erf($0 * 0.70710678118654752)) }
        case "tanh": return { 0.5 * $0 * (1 + tanh(0.79788456080286536 * ($0 + 0.044715 * $0 * $0 * $0))) }
        case let a: throw s.unsupported("approximate '\(a)'")
        }
    case "Elu":
        let a = s.float("alpha", 1)
        return { $0 < 0 ? a * (exp($0) - 1) : $0 }
    case "Selu":
        let a = s.float("alpha", 1.67326319217681884765625), g = s.float("gamma", 1.05070102214813232421875)
        return { $0 > 0 ? g * $0 : g * (a * exp($0) - a) }
    case "Celu":
        let a = s.float("alpha", 1)
        return { max(0, $0) + min(0, a * (exp($0 / a) - 1)) }
    case "ThresholdedRelu":
        let a = s.float("alpha", 1)
        return { $0 > a ? $0 : 0 }
    default: return nil
    }
}

/// log(1 + eˣ) without overflow for large x.
@Sendable func softplus(_ x: Float) -> Float { x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)) }

/// Ops defined on any numeric type (the others run on floats only).
let integerUnaryOps: [String: @Sendable (Double) -> Double] = [
    "Abs": { abs($0) }, "Neg": { -$0 }, "Sign": { $0 > 0 ? 1 : $0 < 0 ? -1 : 0 },
]

/// Max, Min, Mean and Sum of any number of inputs with broadcasting.
struct VariadicOp: Operator {
    let fail: NodeFailure
    let opType: String

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        opType = s.node.opType
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let xs = inputs.compactMap { $0 }
        guard var acc = xs.first else { throw fail.invalid("\(opType) needs at least one input") }
        let combine: (Double, Double) -> Double
        let combineFloat: (Float, Float) -> Float
        switch opType {
        case "Max": combine = { $0.isNaN || $1.isNaN ? .nan : max($0, $1) }; combineFloat = { $0.isNaN || $1.isNaN ? .nan : max($0, $1) }
        case "Min": combine = { $0.isNaN || $1.isNaN ? .nan : min($0, $1) }; combineFloat = { $0.isNaN || $1.isNaN ? .nan : min($0, $1) }
        default: combine = { $0 + $1 }; combineFloat = { $0 + $1 }
        }
        if xs.count == 1 { acc = try mapElements(acc, ctx, fail, float: { $0 }, double: { $0 }) }
        for x in xs.dropFirst() {
            acc = try broadcastElements(acc, x, ctx, fail, float: combineFloat, double: combine)
        }
        if opType == "Mean" {
            let n = Double(xs.count)
            acc = try mapElements(acc, ctx, fail, float: { $0 / Float(n) }, double: { $0 / n })
        }
        return [acc]
    }
}

/// `f` applied to every element (float tensors on a float path, other numeric types through Double).
func mapElements(_ x: RTensor, _ ctx: ExecutionContext, _ fail: NodeFailure,
                 float: (Float) -> Float, double: (Double) -> Double) throws -> RTensor {
    if x.dtype == .float {
        let y = ctx.alloc(.float, x.shape)
        let px = x.f, py = y.f
        for i in 0..<x.count { py[i] = float(px[i]) }
        return y
    }
    guard x.dtype.byteSize != nil, x.dtype != .string else { throw fail.invalid("\(x.dtype) is not numeric") }
    return RTensor.from(doubles: x.doubles().map(double), dtype: x.dtype, shape: x.shape)
}

/// `f(a, b)` with numpy broadcasting into a tensor of `a`'s type (or `result` when given).
func broadcastElements(_ a: RTensor, _ b: RTensor, _ ctx: ExecutionContext, _ fail: NodeFailure, result: DType? = nil,
                       float: ((Float, Float) -> Float)? = nil, double: (Double, Double) -> Double) throws -> RTensor {
    guard let out = broadcastShapes(a.shape, b.shape) else { throw fail.invalid("shapes \(a.shape) and \(b.shape) do not broadcast") }
    let sa = broadcastStrides(a.shape, to: out), sb = broadcastStrides(b.shape, to: out)
    if let float, a.dtype == .float, b.dtype == .float, (result ?? .float) == .float {
        let y = ctx.alloc(.float, out)
        let pa = a.f, pb = b.f, py = y.f
        forEachBroadcastRun(out, sa, sb) { o, ia, ib, n, da, db in
            for i in 0..<n { py[o + i] = float(pa[ia + i * da], pb[ib + i * db]) }
        }
        return y
    }
    let va = a.doubles(), vb = b.doubles()
    var r = [Double](repeating: 0, count: out.reduce(1, *))
    forEachBroadcastRun(out, sa, sb) { o, ia, ib, n, da, db in
        for i in 0..<n { r[o + i] = double(va[ia + i * da], vb[ib + i * db]) }
    }
    return RTensor.from(doubles: r, dtype: result ?? a.dtype, shape: out)
}

/// Comparisons (Equal, Less, Greater, LessOrEqual, GreaterOrEqual), logic (And, Or, Xor, Not) and Pow, with
/// broadcasting. Comparisons and logic give bool tensors; Pow keeps the base's type.
struct CompareOp: Operator {
    let fail: NodeFailure
    let opType: String

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        opType = s.node.opType
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let a = try inputs.required(0, fail)
        if opType == "Not" {
            guard a.dtype == .bool else { throw fail.invalid("Not needs a bool tensor, got \(a.dtype)") }
            return [RTensor.from(doubles: a.doubles().map { $0 == 0 ? 1 : 0 }, dtype: .bool, shape: a.shape)]
        }
        let b = try inputs.required(1, fail)
        if opType == "Pow" {
            return [try broadcastElements(a, b, ctx, fail, float: { pow($0, $1) }, double: { pow($0, $1) })]
        }
        if ["And", "Or", "Xor"].contains(opType) {
            guard a.dtype == .bool, b.dtype == .bool else { throw fail.invalid("\(opType) needs bool tensors, got \(a.dtype) and \(b.dtype)") }
        } else {
            guard a.dtype == b.dtype else { throw fail.invalid("input types differ: \(a.dtype) and \(b.dtype)") }
        }
        let f: (Double, Double) -> Bool
        switch opType {
        case "Equal": f = { $0 == $1 }
        case "Less": f = { $0 < $1 }
        case "Greater": f = { $0 > $1 }
        case "LessOrEqual": f = { $0 <= $1 }
        case "GreaterOrEqual": f = { $0 >= $1 }
        case "And": f = { $0 != 0 && $1 != 0 }
        case "Or": f = { $0 != 0 || $1 != 0 }
        default: f = { ($0 != 0) != ($1 != 0) }
        }
        return [try broadcastElements(a, b, ctx, fail, result: .bool) { f($0, $1) ? 1 : 0 }]
    }
}

/// Where(condition, x, y) with broadcasting of all three, any element type of x and y.
struct WhereOp: Operator {
    let fail: NodeFailure

    init(_ s: OperatorSetup) throws { fail = NodeFailure(s) }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let c = try inputs.required(0, fail), x = try inputs.required(1, fail), y = try inputs.required(2, fail)
        guard x.dtype == y.dtype else { throw fail.invalid("x and y types differ: \(x.dtype) and \(y.dtype)") }
        guard let xy = broadcastShapes(x.shape, y.shape), let out = broadcastShapes(c.shape, xy) else {
            throw fail.invalid("shapes \(c.shape), \(x.shape) and \(y.shape) do not broadcast")
        }
        let z = ctx.alloc(x.dtype, out)
        let sc = broadcastStrides(c.shape, to: out), sx = broadcastStrides(x.shape, to: out), sy = broadcastStrides(y.shape, to: out)
        let so = strides(of: out), es = x.dtype.byteSize!
        let cond = c.doubles()
        for i in 0..<z.count {
            var rem = i, ic = 0, ix = 0, iy = 0
            for d in 0..<out.count { let k = rem / so[d]; rem %= so[d]; ic += k * sc[d]; ix += k * sx[d]; iy += k * sy[d] }
            let src = cond[ic] != 0 ? x.storage.raw.advanced(by: ix * es) : y.storage.raw.advanced(by: iy * es)
            z.storage.raw.advanced(by: i * es).copyMemory(from: src, byteCount: es)
        }
        return [z]
    }
}
