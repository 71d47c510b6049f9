import SwiftQCore
import SwiftQKernels

/// Gemm: Y = alpha · A' · B' + beta · C, with C broadcast to M×N. A constant B is transposed and scaled once;
/// one row of A (batch 1) takes the GEMV kernel.
struct GemmOp: OwnsOneScratch, StreamsWeights {
    let fail: NodeFailure
    let transA: Bool, transB: Bool
    let alpha: Float, beta: Float
    /// The constant B as N×K rows, already multiplied by alpha.
    let weightRows: RTensor?
    var scratch = Scratch()

    var streamedWeights: UnsafeRawBufferPointer? {
        weightRows.map { UnsafeRawBufferPointer(start: $0.f, count: $0.count * MemoryLayout<Float>.size) }
    }

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        transA = s.int("transA", 0) != 0
        transB = s.int("transB", 0) != 0
        alpha = s.float("alpha", 1)
        beta = s.float("beta", 1)
        if let b = s.constant(1), b.dtype == .float, b.shape.count == 2 {
            let v = b.floats()
            let (r, c) = (b.shape[0], b.shape[1])
            var rows = [Float](repeating: 0, count: v.count)
            if transB { for i in 0..<v.count { rows[i] = v[i] * alpha } } else {
                for i in 0..<r { for j in 0..<c { rows[j * r + i] = v[i * c + j] * alpha } }
            }
            weightRows = RTensor(floats: rows, shape: transB ? [r, c] : [c, r])
        } else {
            weightRows = nil
        }
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let a = try inputs.required(0, fail)
        guard a.dtype == .float, a.rank == 2 else { throw fail.invalid("A must be a 2-D float tensor, got \(a.dtype) \(a.shape)") }
        let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
        let w: RTensor
        if let weightRows { w = weightRows } else {
            let b = try inputs.required(1, fail)
            guard b.dtype == .float, b.rank == 2 else { throw fail.invalid("B must be a 2-D float tensor") }
            let (r, c) = (b.shape[0], b.shape[1])
            w = RTensor(dtype: .float, shape: transB ? [r, c] : [c, r])
            for i in 0..<r { for j in 0..<c { w.f[transB ? i * c + j : j * r + i] = b.f[i * c + j] * alpha } }
        }
        let n = w.shape[0]
        guard w.shape[1] == k else { throw fail.invalid("inner dimensions differ: A gives \(k), B gives \(w.shape[1])") }
        let y = ctx.alloc(.float, [m, n])
        let at: RTensor
        if transA {
            at = RTensor(dtype: .float, shape: [m, k])
            for i in 0..<k { for j in 0..<m { at.f[j * k + i] = a.f[i * m + j] } }
        } else { at = a }
        if m == 1 && !ctx.referenceOnly {
            Fast.gemv(rows: n, k: k, w: w.f, x: at.f, y: y.f, bias: nil, threads: ctx.threads)
        } else {
            // Y[m×n] = A[m×k] · Wᵀ: with W stored N×K, Wᵀ is read with swapped strides by the reference loop.
            for i in 0..<m { for j in 0..<n {
                var s: Float = 0
                for p in 0..<k { s += at.f[i * k + p] * w.f[j * k + p] }
                y.f[i * n + j] = s
            } }
        }
        if inputs.count > 2, let c = inputs[2], beta != 0 {
            guard let bs = broadcastShapes(c.shape, [m, n]), bs == [m, n] else { throw fail.invalid("C of shape \(c.shape) does not broadcast to \([m, n])") }
            let cv = c.floatArray(), sc = broadcastStrides(c.shape, to: [m, n])
            for i in 0..<m { for j in 0..<n { y.f[i * n + j] += beta * cv[i * sc[0] + j * sc[1]] } }
        }
        return [y]
    }
}

/// MatMul with numpy semantics (1-D promotion, broadcast batch dimensions), float.
struct MatMulOp: OwnsOneScratch {
    let fail: NodeFailure
    var scratch = Scratch()

    init(_ s: OperatorSetup) throws { fail = NodeFailure(s) }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let a = try inputs.required(0, fail), b = try inputs.required(1, fail)
        guard a.dtype == .float, b.dtype == .float, a.rank >= 1, b.rank >= 1 else { throw fail.invalid("MatMul runs on float tensors of rank ≥ 1") }
        let sa = a.rank == 1 ? [1] + a.shape : a.shape, sb = b.rank == 1 ? b.shape + [1] : b.shape
        let m = sa[sa.count - 2], k = sa[sa.count - 1], n = sb[sb.count - 1]
        guard sb[sb.count - 2] == k else { throw fail.invalid("inner dimensions differ: \(a.shape) × \(b.shape)") }
        let ba = Array(sa.dropLast(2)), bb = Array(sb.dropLast(2))
        guard let batch = broadcastShapes(ba, bb) else { throw fail.invalid("batch dimensions \(ba) and \(bb) do not broadcast") }
        var outShape = batch
        if a.rank > 1 { outShape.append(m) }
        if b.rank > 1 { outShape.append(n) }
        let y = ctx.alloc(.float, outShape)
        let count = batch.reduce(1, *)
        let stA = broadcastStrides(ba, to: batch), stB = broadcastStrides(bb, to: batch), stO = strides(of: batch)
        for t in 0..<count {
            var oa = 0, ob = 0, rem = t
            for d in batch.indices { let i = rem / stO[d]; rem %= stO[d]; oa += i * stA[d]; ob += i * stB[d] }
            let pa = a.f + oa * m * k, pb = b.f + ob * k * n, py = y.f + t * m * n
            if ctx.referenceOnly || m * n * k < 4096 {
                Reference.gemm(m: m, n: n, k: k, a: pa, lda: k, b: pb, ldb: n, c: py, ldc: n)
            } else {
                Fast.matmul(m: m, n: n, k: k, a: pa, lda: k, b: pb, ldb: n, c: py, ldc: n, scratch: scratch, threads: ctx.threads)
            }
        }
        return [y]
    }
}
