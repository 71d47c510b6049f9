import SwiftQCore
import SwiftQKernels

/// ConvInteger, MatMulInteger, QLinearConv and QLinearMatMul (opsets 10–21) on the integer reference
/// kernels: int32 accumulation of (x − x_zero_point)(w − w_zero_point), then for the QLinear forms the
/// requantization round_half_even(acc · s_x·s_w/s_y) + y_zero_point, saturated to the output type.
struct IntegerOp: Operator {
    let fail: NodeFailure
    let setup: OperatorSetup
    let opType: String

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        setup = s
        opType = s.node.opType
    }

    func ints(_ t: RTensor?) -> [Int32]? { t.map { $0.int64s().map { Int32(truncatingIfNeeded: $0) } } }

    func checkInteger(_ t: RTensor) throws {
        guard [.uint8, .int8].contains(t.dtype) else { throw fail.unsupported("\(t.dtype) inputs (uint8 and int8 only)") }
    }

    /// The saturation bounds of a quantized output type.
    func bounds(_ t: DType) throws -> (Int32, Int32) {
        guard t == .uint8 || t == .int8, let r = t.integerRange else { throw fail.unsupported("\(t) outputs") }
        return r
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        switch opType {
        case "ConvInteger":
            let x = try inputs.required(0, fail), w = try inputs.required(1, fail)
            try checkInteger(x); try checkInteger(w)
            let acc = try conv(x: x, w: w, xZero: ints(inputs.count > 2 ? inputs[2] : nil)?.first ?? 0,
                               wZero: ints(inputs.count > 3 ? inputs[3] : nil) ?? [0], bias: nil)
            return [RTensor.from(int64s: acc.values.map { Int64($0) }, shape: acc.shape).retyped(.int32)]
        case "QLinearConv":
            let x = try inputs.required(0, fail), w = try inputs.required(3, fail)
            try checkInteger(x); try checkInteger(w)
            let xs = try inputs.required(1, fail).floatArray(), ws = try inputs.required(4, fail).floatArray(), ys = try inputs.required(6, fail).floatArray()
            let yz = try inputs.required(7, fail)
            let acc = try conv(x: x, w: w, xZero: ints(inputs[2])?.first ?? 0, wZero: ints(inputs[5]) ?? [0],
                               bias: ints(inputs.count > 8 ? inputs[8] : nil))
            let (lo, hi) = try bounds(yz.dtype)
            let m = acc.shape[1], inner = acc.shape[2...].reduce(1, *), zero = ints(yz)!.first ?? 0
            let multipliers = (0..<m).map { xs[0] * ws[ws.count == 1 ? 0 : $0] / ys[0] }
            let q = acc.values.indices.map { i in
                Int64(IntegerReference.requantize(acc.values[i], multiplier: multipliers[(i / inner) % m], zero: zero, lo: lo, hi: hi))
            }
            return [RTensor.from(int64s: q, shape: acc.shape).retyped(yz.dtype)]
        case "MatMulInteger":
            let a = try inputs.required(0, fail), b = try inputs.required(1, fail)
            try checkInteger(a); try checkInteger(b)
            let (c, shape) = try matmul(a, b, aZero: ints(inputs.count > 2 ? inputs[2] : nil) ?? [0], bZero: ints(inputs.count > 3 ? inputs[3] : nil) ?? [0])
            return [RTensor.from(int64s: c.map { Int64($0) }, shape: shape).retyped(.int32)]
        default: // QLinearMatMul
            let a = try inputs.required(0, fail), b = try inputs.required(3, fail)
            try checkInteger(a); try checkInteger(b)
            let sa = try inputs.required(1, fail).floatArray(), sb = try inputs.required(4, fail).floatArray(), sy = try inputs.required(6, fail).floatArray()
            guard sa.count == 1, sb.count == 1, sy.count == 1 else { throw fail.unsupported("per-row or per-column scales") }
            let yz = try inputs.required(7, fail)
            let (c, shape) = try matmul(a, b, aZero: ints(inputs[2]) ?? [0], bZero: ints(inputs[5]) ?? [0])
            let (lo, hi) = try bounds(yz.dtype)
            let multiplier = sa[0] * sb[0] / sy[0], zero = ints(yz)!.first ?? 0
            let q = c.map { Int64(IntegerReference.requantize($0, multiplier: multiplier, zero: zero, lo: lo, hi: hi)) }
            return [RTensor.from(int64s: q, shape: shape).retyped(yz.dtype)]
        }
    }

    func conv(x: RTensor, w: RTensor, xZero: Int32, wZero: [Int32], bias: [Int32]?) throws -> (values: [Int32], shape: [Int]) {
        let group = setup.int("group", 1)
        let g = try convGeometry(x: x.shape, w: w.shape, setup: setup, group: group, fail: fail)
        guard wZero.count == 1 || wZero.count == g.outChannels else { throw fail.invalid("w_zero_point has \(wZero.count) values for \(g.outChannels) output channels") }
        if let bias, bias.count != g.outChannels { throw fail.invalid("bias has \(bias.count) values for \(g.outChannels) output channels") }
        let y = IntegerReference.conv(x: ints(x)!, xZero: xZero, w: ints(w)!, wZero: wZero, bias: bias, g)
        return (y, x.rank == 3 ? [g.batch, g.outChannels, g.outWidth] : [g.batch, g.outChannels, g.outHeight, g.outWidth])
    }

    /// Batched A·B with numpy broadcasting of the leading dimensions (A and B of rank 2 or more).
    func matmul(_ a: RTensor, _ b: RTensor, aZero: [Int32], bZero: [Int32]) throws -> ([Int32], [Int]) {
        guard a.rank >= 2, b.rank >= 2, a.shape[a.rank - 1] == b.shape[b.rank - 2] else { throw fail.invalid("shapes \(a.shape) and \(b.shape) do not multiply") }
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1], n = b.shape[b.rank - 1]
        guard aZero.count == 1 || aZero.count == m, bZero.count == 1 || bZero.count == n else { throw fail.unsupported("zero points other than per tensor, per row of A or per column of B") }
        let ab = Array(a.shape.dropLast(2)), bb = Array(b.shape.dropLast(2))
        let rank = max(ab.count, bb.count)
        let pa = Array(repeating: 1, count: rank - ab.count) + ab, pb = Array(repeating: 1, count: rank - bb.count) + bb
        var batch: [Int] = []
        for (x, y) in zip(pa, pb) {
            guard x == y || x == 1 || y == 1 else { throw fail.invalid("batch dimensions \(ab) and \(bb) do not broadcast") }
            batch.append(max(x, y))
        }
        let av = ints(a)!, bv = ints(b)!
        var out: [Int32] = []
        let count = batch.reduce(1, *)
        for flat in 0..<count {
            var rest = flat, ia = 0, ib = 0, sa = 1, sb = 1
            for d in stride(from: rank - 1, through: 0, by: -1) {
                let i = rest % batch[d]
                rest /= batch[d]
                ia += (pa[d] == 1 ? 0 : i) * sa; ib += (pb[d] == 1 ? 0 : i) * sb
                sa *= pa[d]; sb *= pb[d]
            }
            out += IntegerReference.matmul(a: av[(ia * m * k)..<((ia + 1) * m * k)], aZero: aZero, b: bv[(ib * k * n)..<((ib + 1) * k * n)], bZero: bZero, m: m, n: n, k: k)
        }
        return (out, batch + [m, n])
    }
}

extension RTensor {
    /// The same values stored as `dtype` (from the int64 tensor `from(int64s:)` makes).
    func retyped(_ dtype: DType) -> RTensor {
        dtype == self.dtype ? self : RTensor.from(doubles: int64s().map { Double($0) }, dtype: dtype, shape: shape)
    }
}
