import Foundation
import SwiftQCore
import SwiftQKernels

/// A smooth activation the runtime fused into a Conv (`fuseForExecution`), applied to its output after the clamp.
enum ConvActivation: String {
    case none = "", silu, hardSwish = "hardswish"

    /// Its sq_unary code (nil: none).
    var fastCode: Int32? {
        switch self {
        case .none: nil
        case .silu: 6
        case .hardSwish: 3
        }
    }

    /// Applies it in place to n floats, in ranges on `threads` threads: the fast loops (sq_unary) or, with
    /// `reference`, the reference expressions, each the same bits as the separate Sigmoid and Mul (HardSwish) would
    /// give on that path.
    func apply(_ y: UnsafeMutablePointer<Float>, _ n: Int, reference: Bool, threads: Int) {
        switch self {
        case .none: return
        case .silu where reference: for i in 0..<n { let v = y[i]; y[i] = v * (1 / (1 + Foundation.exp(-v))) }
        case .hardSwish where reference: for i in 0..<n { let v = y[i]; y[i] = v * max(0, min(1, v / 6 + 0.5)) }
        case .silu, .hardSwish: UnaryOp.fast(fastCode!, y, y, n, 0, 0, threads: threads)
        }
    }
}

/// Conv (opsets 1–22): 1-D and 2-D, groups, depthwise, strides, dilations, pads and auto_pad. With a constant
/// weight the weights are packed once for the fast kernel; a fused Relu/Clip becomes the output clamp, a fused SiLU
/// or HardSwish its `activation`.
struct ConvOp: OwnsOneScratch {
    let fail: NodeFailure
    let setup: OperatorSetup
    let group: Int
    let lo: Float, hi: Float
    let activation: ConvActivation
    let weight: RTensor?
    let bias: RTensor?
    let packed: [PackedMatrix]
    let direct: Direct3x3Weights?
    var scratch = Scratch()

    init(_ s: OperatorSetup) throws {
        setup = s
        fail = NodeFailure(s)
        group = s.int("group", 1)
        lo = s.node.float(fusedMinAttribute) ?? -.infinity
        hi = s.node.float(fusedMaxAttribute) ?? .infinity
        activation = s.node.string(fusedActivationAttribute).flatMap(ConvActivation.init(rawValue:)) ?? .none
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
                let unit = { (name: String) in (s.ints(name) ?? [1, 1]).allSatisfy { $0 == 1 } }
                direct3x3 = Direct3x3Weights(outChannels: w.shape[0], channels: w.shape[1], data: w.f,
                                             winograd: unit("strides") && unit("dilations"))
            }
        }
        packed = packs
        direct = direct3x3
    }

    /// Whether the bias, if the node has one, is a constant (the fused steps take only constant biases).
    var hasConstantBias: Bool { setup.node.input(2) == nil || bias != nil }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let p = try prepare(inputs)
        var outShape = [p.g.batch, p.g.outChannels, p.g.outHeight, p.g.outWidth]
        if p.x.rank == 3 { outShape = [p.g.batch, p.g.outChannels, p.g.outWidth] }
        let y = ctx.alloc(.float, outShape)
        compute(p, into: y.f, ctx)
        return [y]
    }

    /// The checked operands and geometry of a run on `inputs`.
    func prepare(_ inputs: [RTensor?]) throws -> (x: RTensor, w: RTensor, b: RTensor?, g: ConvGeometry) {
        let x = try inputs.required(0, fail)
        let w = try weight ?? inputs.required(1, fail)
        let b = bias ?? (inputs.count > 2 ? inputs[2] : nil)
        guard x.dtype == .float, w.dtype == .float else { throw fail.invalid("Conv runs on float tensors, got \(x.dtype) and \(w.dtype)") }
        let g = try convGeometry(x: x.shape, w: w.shape, setup: setup, group: group, fail: fail)
        if let b, b.count != g.outChannels { throw fail.invalid("bias has \(b.count) values for \(g.outChannels) output channels") }
        return (x, w, b, g)
    }

    /// Writes the output (batch × channels × the output map, densely) at `y`.
    func compute(_ p: (x: RTensor, w: RTensor, b: RTensor?, g: ConvGeometry), into y: UnsafeMutablePointer<Float>, _ ctx: ExecutionContext) {
        let fastOK = !ctx.referenceOnly && (p.g.isDepthwise || packed.count == group)
        if fastOK {
            Fast.conv(x: p.x.f, packed: packed, direct: direct, depthwise: p.g.isDepthwise ? p.w.f : nil, bias: p.b.map { UnsafePointer($0.f) }, y: y,
                      p.g, lo: lo, hi: hi, winograd: ctx.winograd, scratch: scratch, threads: ctx.threads)
        } else {
            Reference.conv(x: p.x.f, w: p.w.f, bias: p.b.map { UnsafePointer($0.f) }, y: y, p.g, lo: lo, hi: hi)
        }
        activation.apply(y, p.g.batch * p.g.outChannels * p.g.outHeight * p.g.outWidth, reference: ctx.referenceOnly, threads: ctx.threads)
    }
}

/// A 1x1 Conv (with its fused activation) whose only consumer is a depthwise Conv, run as one step: the
/// expanded tensor between them (MobileNet's and EfficientNet's inverted residuals: 96 x 112 x 112 floats, 4.8 MB)
/// is never written out whole (`Fast.expandDepthwise`). Where the fused kernel does not apply (shapes, CPU,
/// reference mode), and whenever the caller observes values, the two convolutions run one after the other.
struct ExpandDepthwiseOp: FusedPair, OwnsScratch {
    private(set) var expand: ConvOp
    private(set) var depthwise: ConvOp
    /// The name of the value between them (reported to observers).
    let intermediate: String
    private(set) var scratch: [Scratch]
    /// Below this size of the expanded tensor the two convolutions run one after the other.
    static let minimumExpandedBytes = 3 << 20

    /// The pair, when `a` is a group-1 1x1 Conv and `b` a depthwise Conv, both with constant weights.
    init?(_ a: Operator, _ b: Operator, intermediate: String, threads: Int) {
        guard let a = a as? ConvOp, let b = b as? ConvOp, let wa = a.weight, let wb = b.weight, wa.rank == 4, wb.rank == 4,
              a.group == 1, a.packed.count == 1, wa.shape[2] == 1, wa.shape[3] == 1,
              wb.shape[1] == 1, b.group == wb.shape[0], b.group == wa.shape[0], b.group > 1, wb.shape[2] == wb.shape[3],
              a.hasConstantBias, b.hasConstantBias else { return nil }
        expand = a
        depthwise = b
        self.intermediate = intermediate
        scratch = Scratch.perThread(threads)
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, expand.fail)
        guard !ctx.referenceOnly, x.dtype == .float, x.rank == 4, let we = expand.weight, let wd = depthwise.weight else {
            return try unfused(inputs, ctx, observe: nil)
        }
        let ge = try convGeometry(x: x.shape, w: we.shape, setup: expand.setup, group: 1, fail: expand.fail)
        let gd = try convGeometry(x: [ge.batch, ge.outChannels, ge.outHeight, ge.outWidth], w: wd.shape, setup: depthwise.setup,
                                  group: depthwise.group, fail: depthwise.fail)
        // Measured (MobileNetV2, EfficientNet-Lite0; 1 and 2 threads): fused, a 4.8 MB expanded tensor ran 1.5-2.4x
        // faster; at 1.8 MB (it stays in cache anyway) 0.82-1.01x, the narrower GEMMs costing more than they save.
        let expandedBytes = ge.batch * ge.outChannels * ge.outHeight * ge.outWidth * MemoryLayout<Float>.size
        guard expandedBytes >= ExpandDepthwiseOp.minimumExpandedBytes, Fast.canExpandDepthwise(ge, gd),
              expand.bias.map({ $0.count == ge.outChannels }) ?? true,
              depthwise.bias.map({ $0.count == gd.outChannels }) ?? true else { return try unfused(inputs, ctx, observe: nil) }
        let y = ctx.alloc(.float, [gd.batch, gd.outChannels, gd.outHeight, gd.outWidth])
        Fast.expandDepthwise(x: x.f, expand: expand.packed[0], expandBias: expand.bias.map { UnsafePointer($0.f) }, expandLo: expand.lo,
                             expandHi: expand.hi, expandActivation: expand.activation.fastCode, dw: wd.f,
                             dwBias: depthwise.bias.map { UnsafePointer($0.f) }, lo: depthwise.lo, hi: depthwise.hi,
                             activation: depthwise.activation.fastCode, y: y.f, ge, gd, scratch: scratch, threads: ctx.threads)
        return [y]
    }

    var first: Operator { expand }
    var second: Operator { depthwise }

    func withOwnScratch(threads: Int) -> Operator {
        var op = self
        op.expand = expand.freshScratch()
        op.depthwise = depthwise.freshScratch()
        op.scratch = Scratch.perThread(threads)
        return op
    }

    /// Multiply-accumulates of one run on input `x` giving `y` (both convolutions).
    func multiplyAccumulates(input x: RTensor, output y: RTensor) -> Int {
        guard let we = expand.weight, let wd = depthwise.weight, x.rank == 4 else { return 0 }
        return x.count / x.shape[1] * we.shape[0] * we.shape[1] + y.count * wd.shape[2] * wd.shape[3]
    }
}

/// A 1x1 Conv (group 1, its activation fused) whose only reader is an Add of a tensor of its output's shape (the
/// residual connections of MobileNetV2, EfficientNet, ResNet), run as one step: the product adds the residual as it
/// stores its output (`Fast.conv`'s `residual`: on AVX-512 in the tiles' last stores, else each thread over the part
/// it has just computed), so the output is not read back by a separate pass (at 2 threads from the other core's
/// cache). Bit-identical to the two steps. The step's inputs are the Conv's input and the residual.
struct ConvAddOp: FusedPair, OwnsScratch {
    private(set) var conv: ConvOp
    let add: BinaryOp
    /// Whether the Conv's output is the Add's first input (else its second).
    let convFirst: Bool
    let intermediate: String

    init?(_ a: Operator, _ b: Operator, convFirst: Bool, intermediate: String) {
        guard let a = a as? ConvOp, a.activation == .none, let b = b as? BinaryOp, b.kind == .add, a.group == 1, a.packed.count == 1, let w = a.weight, w.rank == 4,
              w.shape[2] == 1, w.shape[3] == 1, a.hasConstantBias else { return nil }
        conv = a
        add = b
        self.convFirst = convFirst
        self.intermediate = intermediate
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, conv.fail), r = try inputs.required(1, add.fail)
        guard !ctx.referenceOnly, x.dtype == .float, x.rank == 4, r.dtype == .float else { return try unfused(inputs, ctx, observe: nil) }
        let p = try conv.prepare([x])
        let shape = [p.g.batch, p.g.outChannels, p.g.outHeight, p.g.outWidth]
        guard r.shape == shape, Fast.canAddResidual(p.g) else { return try unfused(inputs, ctx, observe: nil) }
        let y = ctx.alloc(.float, shape)
        Fast.conv(x: x.f, packed: conv.packed, depthwise: nil, bias: p.b.map { UnsafePointer($0.f) }, y: y.f, p.g, lo: conv.lo, hi: conv.hi,
                  residual: r.f, scratch: conv.scratch, threads: ctx.threads)
        return [y]
    }

    /// The Add reads the Conv's output and the residual, in the graph's order.
    func secondInputs(_ mid: RTensor, _ inputs: [RTensor?]) -> [RTensor?] {
        let r = inputs.count > 1 ? inputs[1] : nil
        return convFirst ? [mid, r] : [r, mid]
    }

    var first: Operator { conv }
    var second: Operator { add }

    func withOwnScratch(threads: Int) -> Operator {
        var op = self
        op.conv = conv.freshScratch()
        return op
    }

    func multiplyAccumulates(input x: RTensor, output y: RTensor) -> Int {
        guard let w = conv.weight, w.shape[0] > 0 else { return 0 }
        return y.count * (w.count / w.shape[0])
    }
}

/// Two operators the interpreter runs as one step (`fusePairs`): `unfused` runs them one after the other, for a run
/// with an observer, which sees the value between them.
protocol FusedPair: Operator {
    /// The two operators, and the name of the value between them.
    var first: Operator { get }
    var second: Operator { get }
    var intermediate: String { get }
    /// Multiply-accumulates of one run on input `x` giving `y`.
    func multiplyAccumulates(input x: RTensor, output y: RTensor) -> Int
    /// The second operator's inputs, given the first's output `mid` and the step's inputs.
    func secondInputs(_ mid: RTensor, _ inputs: [RTensor?]) -> [RTensor?]
}

extension FusedPair {
    /// By default the second operator reads only the first's output.
    func secondInputs(_ mid: RTensor, _ inputs: [RTensor?]) -> [RTensor?] { [mid] }

    /// The two operators one after the other; `observe` sees the value between them.
    func unfused(_ inputs: [RTensor?], _ ctx: ExecutionContext, observe: ((String, RTensor) -> Void)?) throws -> [RTensor] {
        var mid = try first.run([inputs.first ?? nil], ctx)[0]
        observe?(intermediate, mid)
        let out = try second.run(secondInputs(mid, inputs), ctx)
        if isKnownUniquelyReferenced(&mid.storage) { ctx.pool.give(mid.storage) }
        return out
    }
}

/// A direct 3x3 Conv (its activation fused) whose only reader is a MaxPool, run as one pass (`Fast.convMaxPool`)
/// when the convolution's output is large: network stems (SqueezeNet's 3x3 stride 2 to 64 channels at 111x111,
/// 3.2 MB) otherwise write it out of cache and read it back. Bit-identical to the two steps.
struct ConvMaxPoolOp: FusedPair, OwnsScratch {
    private(set) var conv: ConvOp
    let pool: PoolOp
    let intermediate: String
    private(set) var scratch: [Scratch]
    /// Below this size of the convolution's output the two run one after the other (it stays in cache).
    static let minimumIntermediateBytes = 1 << 20

    init?(_ a: Operator, _ b: Operator, intermediate: String, threads: Int) {
        guard let a = a as? ConvOp, a.activation == .none, let b = b as? PoolOp, b.isMax, a.direct != nil, let w = a.weight, w.rank == 4,
              a.hasConstantBias else { return nil }
        conv = a
        pool = b
        self.intermediate = intermediate
        scratch = Scratch.perThread(threads)
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, conv.fail)
        guard !ctx.referenceOnly, x.dtype == .float, x.rank == 4, let w = conv.weight, let d = conv.direct else {
            return try unfused(inputs, ctx, observe: nil)
        }
        let gc = try convGeometry(x: x.shape, w: w.shape, setup: conv.setup, group: 1, fail: conv.fail)
        let gp = try convGeometry(x: [gc.batch, gc.outChannels, gc.outHeight, gc.outWidth], w: nil, setup: pool.setup, group: 1, fail: pool.fail)
        let bytes = gc.batch * gc.outChannels * gc.outHeight * gc.outWidth * MemoryLayout<Float>.size
        guard bytes >= ConvMaxPoolOp.minimumIntermediateBytes, Fast.canConvMaxPool(gc, gp, direct: d),
              conv.bias.map({ $0.count == gc.outChannels }) ?? true else { return try unfused(inputs, ctx, observe: nil) }
        let y = ctx.alloc(.float, [gp.batch, gp.channels, gp.outHeight, gp.outWidth])
        Fast.convMaxPool(x: x.f, direct: d, bias: conv.bias.map { UnsafePointer($0.f) }, lo: conv.lo, hi: conv.hi, y: y.f, gc, gp,
                         scratch: scratch, threads: ctx.threads)
        return [y]
    }

    var first: Operator { conv }
    var second: Operator { pool }

    func withOwnScratch(threads: Int) -> Operator {
        var op = self
        op.conv = conv.freshScratch()
        op.scratch = Scratch.perThread(threads)
        return op
    }

    func multiplyAccumulates(input x: RTensor, output y: RTensor) -> Int {
        guard let w = conv.weight, x.rank == 4, let g = try? convGeometry(x: x.shape, w: w.shape, setup: conv.setup, group: 1, fail: conv.fail) else { return 0 }
        return g.batch * g.outChannels * g.outHeight * g.outWidth * w.count / w.shape[0]
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
    if let p = setup.window, p.spatialRank == spatial.count, p.kernel == kernelFromWeight {
        a = p.attributes
    } else {
        do { a = try WindowAttributes(node: setup.node, spatialRank: spatial.count, kernel: kernelFromWeight) } catch let e as ModelError {
            // The shape error names the node already; keep only what is wrong, so the node is named once.
            if case .shape(_, _, let what) = e { throw fail.invalid(what) }
            throw fail.invalid(e.description)
        }
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
