import Foundation
import SwiftQCore

/// QuantizeLinear and DequantizeLinear (opsets 10–21, per tensor or per axis; no block quantization), so the
/// float runtime runs Q/DQ models as fake quantization: q = saturate(round_half_even(x / scale) + zero_point),
/// x = (q − zero_point) · scale. The zero point's type (uint8 by default, int8, int32 for Dequantize) is the
/// quantized type.
struct QuantizeLinearOp: Operator {
    let fail: NodeFailure
    let quantize: Bool
    let axis: Int

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        quantize = s.node.opType == "QuantizeLinear"
        axis = s.int("axis", 1)
        if s.int("block_size", 0) != 0 { throw s.unsupported("block_size (blocked quantization)") }
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail), scale = try inputs.required(1, fail)
        let zp = inputs.count > 2 ? inputs[2] : nil
        let scales = scale.doubles()
        let zps = zp?.doubles() ?? [0]
        guard !scales.isEmpty, zps.count == scales.count || (zp == nil && zps.count == 1) else { throw fail.invalid("scale and zero point sizes differ") }
        var channel: (Int) -> Int = { _ in 0 }
        if scales.count > 1 {
            let a = axis < 0 ? axis + x.rank : axis
            guard a >= 0, a < x.rank, x.shape[a] == scales.count else { throw fail.invalid("\(scales.count) scales for axis \(axis) of shape \(x.shape)") }
            let inner = x.shape[(a + 1)...].reduce(1, *), n = scales.count
            channel = { ($0 / inner) % n }
        }
        if quantize {
            guard x.dtype == .float else { throw fail.unsupported("quantizing \(x.dtype)") }
            let to = zp?.dtype ?? .uint8
            guard to != .int32, let range = to.integerRange else { throw fail.unsupported("quantizing to \(to)") }
            let (lo, hi) = (Double(range.lo), Double(range.hi))
            let xs = x.doubles()
            let q = xs.indices.map { i -> Double in
                let c = channel(i)
                let v = (Double(Float(xs[i]) / Float(scales[c]))).rounded(.toNearestOrEven) + zps[zp == nil ? 0 : c]
                return v.isNaN ? 0 : min(max(v, lo), hi)
            }
            return [RTensor.from(doubles: q, dtype: to, shape: x.shape)]
        }
        guard [.uint8, .int8, .int32, .uint16, .int16, .uint4, .int4].contains(x.dtype) else { throw fail.unsupported("dequantizing \(x.dtype)") }
        let qs = x.doubles()
        let y = RTensor(dtype: .float, shape: x.shape)
        for i in qs.indices {
            let c = channel(i)
            y.f[i] = Float(qs[i] - zps[zp == nil ? 0 : c]) * Float(scales[c])
        }
        return [y]
    }
}
