import CKernels
import Foundation
import SwiftQCore
import SwiftQKernels

/// Elementwise activations and math on floats: Relu, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, the
/// ops of `unaryFunction` (Exp, Log, Erf, Gelu, Elu…; Abs, Neg and Sign also on integers), and Clip (bounds as
/// attributes before opset 11, as optional inputs after; any numeric type).
struct UnaryOp: Operator {
    let fail: NodeFailure
    let opType: String
    let alpha: Float
    let beta: Float
    let function: ((Float) -> Float)?
    /// The op's code for the vectorized loop (`fastCodes`), nil when it has none.
    let fastCode: Int32?

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        opType = s.node.opType
        switch opType {
        case "LeakyRelu": alpha = s.float("alpha", 0.01); beta = 0
        case "HardSigmoid": alpha = s.float("alpha", 0.2); beta = s.float("beta", 0.5)
        case "Clip": alpha = s.float("min", -.infinity); beta = s.float("max", .infinity)
        default: alpha = 0; beta = 0
        }
        function = try unaryFunction(s)
        fastCode = UnaryOp.fastCodes[opType]
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        if opType == "Clip" { return [try clip(x, inputs, ctx)] }
        if x.dtype != .float, let f = integerUnaryOps[opType] {
            return [try mapElements(x, ctx, fail, float: { $0 }, double: f)]
        }
        guard x.dtype == .float else { throw fail.invalid("\(opType) runs on float tensors, got \(x.dtype)") }
        let y = ctx.alloc(.float, x.shape)
        let n = x.count, px = x.f, py = y.f
        if !ctx.referenceOnly, let code = fastCode {
            UnaryOp.fast(code, px, py, n, alpha, beta, threads: ctx.threads)
            return [y]
        }
        switch opType {
        case "Relu": for i in 0..<n { py[i] = max(px[i], 0) }
        case "LeakyRelu": for i in 0..<n { let v = px[i]; py[i] = v < 0 ? v * alpha : v }
        case "Sigmoid": for i in 0..<n { py[i] = 1 / (1 + exp(-px[i])) }
        case "HardSigmoid": for i in 0..<n { py[i] = max(0, min(1, alpha * px[i] + beta)) }
        case "HardSwish": for i in 0..<n { let v = px[i]; py[i] = v * max(0, min(1, v / 6 + 0.5)) }
        case "Tanh": for i in 0..<n { py[i] = tanh(px[i]) }
        default:
            guard let f = function else { throw fail.invalid("no kernel") }
            for i in 0..<n { py[i] = f(px[i]) }
        }
        return [y]
    }

    /// sq_unary's op codes (Clip, 1, is run by `clip`).
    static let fastCodes: [String: Int32] = ["Relu": 0, "HardSigmoid": 2, "HardSwish": 3, "LeakyRelu": 4, "Sigmoid": 5]

    /// The vectorized activation `code` over n floats, in contiguous ranges on `threads` threads.
    static func fast(_ code: Int32, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ a: Float, _ b: Float, threads: Int) {
        parallelRanges(n, minimum: 1 << 15, threads: threads) { r in
            sq_unary(code, x + r.lowerBound, y + r.lowerBound, Int32(r.count), a, b)
        }
    }

    private func clip(_ x: RTensor, _ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> RTensor {
        let lo = inputs.count > 1 ? inputs[1]?.doubles().first : nil
        let hi = inputs.count > 2 ? inputs[2]?.doubles().first : nil
        if x.dtype == .float {
            let l = lo.map { Float($0) } ?? alpha, h = hi.map { Float($0) } ?? beta
            let y = ctx.alloc(.float, x.shape)
            if ctx.referenceOnly {
                for i in 0..<x.count { y.f[i] = min(max(x.f[i], l), h) }
            } else {
                UnaryOp.fast(1, x.f, y.f, x.count, l, h, threads: ctx.threads)
            }
            return y
        }
        let l = lo ?? -.infinity, h = hi ?? .infinity
        return RTensor.from(doubles: x.doubles().map { min(max($0, l), h) }, dtype: x.dtype, shape: x.shape)
    }
}

/// BatchNormalization in inference mode: y = scale · (x − mean) / sqrt(var + epsilon) + bias, per channel.
struct BatchNormOp: Operator {
    let fail: NodeFailure
    let epsilon: Float

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        epsilon = s.float("epsilon", 1e-5)
        if s.int("training_mode", 0) != 0 { throw s.unsupported("training_mode 1") }
        if s.node.outputs.dropFirst().contains(where: { !$0.isEmpty }) { throw s.unsupported("the training outputs (running mean and variance)") }
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        let p = try (1...4).map { try inputs.required($0, fail).floatArray() }
        guard x.dtype == .float, x.rank >= 2 else { throw fail.invalid("needs a float input of rank 2 or more") }
        let c = x.shape[1], inner = x.shape.dropFirst(2).reduce(1, *)
        guard p.allSatisfy({ $0.count == c }) else { throw fail.invalid("scale, bias, mean and variance must have \(c) values") }
        let y = ctx.alloc(.float, x.shape)
        for n in 0..<x.shape[0] {
            for ch in 0..<c {
                let k = p[0][ch] / (p[3][ch] + epsilon).squareRoot(), b = p[1][ch] - p[2][ch] * k
                let base = (n * c + ch) * inner
                for i in 0..<inner { y.f[base + i] = x.f[base + i] * k + b }
            }
        }
        return [y]
    }
}
