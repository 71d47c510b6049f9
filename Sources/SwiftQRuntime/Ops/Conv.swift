import SwiftQCore
import SwiftQKernels

/// Conv (opsets 1–22): 1-D and 2-D, groups, depthwise, strides, dilations, pads and auto_pad. With a constant
/// weight the weights are packed once for the fast kernel; a fused Relu/Clip becomes the output clamp.
struct ConvOp: Operator {
    let fail: NodeFailure
    let setup: OperatorSetup
    let group: Int
    let lo: Float, hi: Float
    let weight: RTensor?
    let bias: RTensor?
    let packed: [PackedMatrix]
    let direct: Direct3x3Weights?
    let scratch = Scratch()

    init(_ s: OperatorSetup) throws {
        setup = s
        fail = NodeFailure(s)
        group = s.int("group", 1)
        lo = s.node.float(fusedMinAttribute) ?? -.infinity
        hi = s.node.float(fusedMaxAttribute) ?? .infinity
        weight = s.constant(1).map(RTensor.init)
        bias = s.constant(2).map(RTensor.init)
        var packs: [PackedMatrix] = []
        var direct3x3: Direct3x3Weights?
        if let w = weight, w.dtype == .float, w.rank >= 3, group > 0, w.shape[0] % group == 0 {
            let mpg = w.shape[0] / group, k = w.count / w.shape[0]
            let depthwise = w.shape[1] == 1 && group == w.shape[0] && group > 1
            if !depthwise {
                for g in 0..<group { packs.append(PackedMatrix(rows: mpg, cols: k, data: w.f + g * mpg * k, ld: k)) }
            }
            if group == 1 && w.rank == 4 && w.shape[2] == 3 && w.shape[3] == 3 {
                direct3x3 = Direct3x3Weights(outChannels: w.shape[0], channels: w.shape[1], data: w.f)
            }
        }
        packed = packs
        direct = direct3x3
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        let w = try weight ?? inputs.required(1, fail)
        let b = bias ?? (inputs.count > 2 ? inputs[2] : nil)
        guard x.dtype == .float, w.dtype == .float else { throw fail.invalid("Conv runs on float tensors, got \(x.dtype) and \(w.dtype)") }
        let g = try convGeometry(x: x.shape, w: w.shape, setup: setup, group: group, fail: fail)
        if let b, b.count != g.outChannels { throw fail.invalid("bias has \(b.count) values for \(g.outChannels) output channels") }
        var outShape = [g.batch, g.outChannels, g.outHeight, g.outWidth]
        if x.rank == 3 { outShape = [g.batch, g.outChannels, g.outWidth] }
        let y = ctx.alloc(.float, outShape)
        let fastOK = !ctx.referenceOnly && (g.isDepthwise || packed.count == group)
        if fastOK {
            Fast.conv(x: x.f, packed: packed, direct: direct, depthwise: g.isDepthwise ? w.f : nil, bias: b.map { UnsafePointer($0.f) }, y: y.f, g,
                      lo: lo, hi: hi, scratch: scratch, threads: ctx.threads)
        } else {
            Reference.conv(x: x.f, w: w.f, bias: b.map { UnsafePointer($0.f) }, y: y.f, g, lo: lo, hi: hi)
        }
        return [y]
    }
}

/// Resolves a Conv or pooling node's window for input shape `x` (N×C×W or N×C×H×W) and weight shape `w`
/// (nil for pooling: the kernel comes from `kernel_shape`).
public func convGeometry(x: [Int], w: [Int]?, setup: OperatorSetup, group: Int, fail: NodeFailure) throws -> ConvGeometry {
    guard x.count == 3 || x.count == 4 else {
        throw RuntimeError.unsupported(node: fail.node, opType: fail.opType, what: "only 1-D and 2-D windows (input rank \(x.count))")
    }
    let spatial = Array(x.dropFirst(2))
    let kernelFromWeight = w.map { Array($0.dropFirst(2)) }
    if let w {
        guard w.count == x.count else { throw fail.invalid("weight rank \(w.count) does not match input rank \(x.count)") }
        guard group > 0, x[1] == w[1] * group, w[0] % group == 0 else {
            throw fail.invalid("input has \(x[1]) channels; weight \(w) with group \(group) does not fit")
        }
    }
    let a: WindowAttributes
    do { a = try WindowAttributes(node: setup.node, spatialRank: spatial.count, kernel: kernelFromWeight) } catch let e as ModelError {
        // The shape error names the node already; keep only what is wrong, so the node is named once.
        if case .shape(_, _, let what) = e { throw fail.invalid(what) }
        throw fail.invalid(e.description)
    }
    let pads = a.resolvedPads(input: spatial)
    let out = spatial.indices.map { a.outputSize(input: spatial[$0], axis: $0) }
    if out.contains(where: { $0 <= 0 }) { throw fail.invalid("input \(x) is smaller than the window") }
    let r = spatial.count
    if r == 1 {
        return ConvGeometry(batch: x[0], channels: x[1], height: 1, width: x[2], outChannels: w?[0] ?? x[1], group: group,
                            kernelH: 1, kernelW: a.kernel[0], strideH: 1, strideW: a.strides[0], dilationH: 1, dilationW: a.dilations[0],
                            padTop: 0, padLeft: pads[0], padBottom: 0, padRight: pads[1], outHeight: 1, outWidth: out[0])
    }
    return ConvGeometry(batch: x[0], channels: x[1], height: x[2], width: x[3], outChannels: w?[0] ?? x[1], group: group,
                        kernelH: a.kernel[0], kernelW: a.kernel[1], strideH: a.strides[0], strideW: a.strides[1],
                        dilationH: a.dilations[0], dilationW: a.dilations[1], padTop: pads[0], padLeft: pads[1],
                        padBottom: pads[2], padRight: pads[3], outHeight: out[0], outWidth: out[1])
}
