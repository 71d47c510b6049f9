import SwiftQCore
import SwiftQKernels

/// MaxPool and AveragePool (opsets 1–22): 1-D and 2-D, pads, auto_pad, strides, dilations, ceil_mode,
/// count_include_pad. Float, and integer types through float (exact for 8- and 16-bit values).
struct PoolOp: Operator {
    let fail: NodeFailure
    let setup: OperatorSetup
    let isMax: Bool
    let countIncludePad: Bool

    init(_ s: OperatorSetup) throws {
        setup = s
        fail = NodeFailure(s)
        isMax = s.node.opType == "MaxPool"
        countIncludePad = s.int("count_include_pad", 0) != 0
        if isMax && s.node.outputs.count > 1 && !s.node.outputs[1].isEmpty { throw s.unsupported("the Indices output of MaxPool") }
        if s.int("storage_order", 0) != 0 { throw s.unsupported("storage_order 1") }
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x0 = try inputs.required(0, fail)
        let x = x0.dtype == .float ? x0 : RTensor(floats: x0.floatArray(), shape: x0.shape)
        let g = try convGeometry(x: x.shape, w: nil, setup: setup, group: 1, fail: fail)
        let shape = x.rank == 3 ? [g.batch, g.channels, g.outWidth] : [g.batch, g.channels, g.outHeight, g.outWidth]
        let y = ctx.alloc(.float, shape)
        let planes = g.batch * g.channels
        let parts = min(ctx.threads, planes)
        let chunk = (planes + parts - 1) / parts
        let fast = !ctx.referenceOnly && g.dilationH == 1 && g.dilationW == 1
        parallelFor(parts, threads: ctx.threads) { p in
            let p0 = p * chunk, p1 = min(planes, (p + 1) * chunk)
            if fast { return Fast.pool(x: x.f, y: y.f, g, isMax: isMax, countIncludePad: countIncludePad, planes: p0..<p1) }
            for plane in p0..<max(p0, p1) {
                Reference.pool(x: x.f + plane * g.height * g.width, y: y.f + plane * g.outHeight * g.outWidth, g, isMax: isMax,
                               countIncludePad: countIncludePad)
            }
        }
        if x0.dtype == .float { return [y] }
        return [RTensor.from(doubles: y.floatArray().map { Double($0) }, dtype: x0.dtype, shape: shape)]
    }
}

/// GlobalAveragePool and GlobalMaxPool over all spatial dimensions.
struct GlobalPoolOp: Operator {
    let fail: NodeFailure
    let isMax: Bool

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        isMax = s.node.opType == "GlobalMaxPool"
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        guard x.dtype == .float, x.rank >= 3 else { throw fail.invalid("needs a float input of rank 3 or more") }
        let planes = x.shape[0] * x.shape[1], size = x.count / max(1, planes)
        let y = ctx.alloc(.float, [x.shape[0], x.shape[1]] + Array(repeating: 1, count: x.rank - 2))
        if !ctx.referenceOnly {
            let parts = planes * size >= 1 << 15 ? min(ctx.threads, planes) : 1
            let chunk = (planes + parts - 1) / max(parts, 1)
            parallelFor(parts, threads: ctx.threads) { p in
                Fast.globalPool(x: x.f, size: size, isMax: isMax, y: y.f, planes: (p * chunk)..<min(planes, (p + 1) * chunk))
            }
            return [y]
        }
        for p in 0..<planes {
            let src = x.f + p * size
            if isMax {
                var m = -Float.infinity
                for i in 0..<size { m = max(m, src[i]) }
                y.f[p] = m
            } else {
                var s: Float = 0
                for i in 0..<size { s += src[i] }
                y.f[p] = s / Float(size)
            }
        }
        return [y]
    }
}
