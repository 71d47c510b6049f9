// Shape rules for the network operators: convolution, pooling, matrix products, normalization.

/// Spatial attributes shared by Conv, ConvTranspose and the pools, defaults filled in.
public struct WindowAttributes: Sendable, Equatable {
    public var kernel: [Int]
    public var strides: [Int]
    public var dilations: [Int]
    /// ONNX order: all begins, then all ends.
    public var pads: [Int]
    public var autoPad: String
    public var ceilMode: Bool

    /// Reads the attributes of `node` for `spatialRank` dimensions; `kernel` is the kernel from the weight
    /// shape when the node has no `kernel_shape`.
    public init(node: Node, spatialRank: Int, kernel: [Int]?) throws {
        let fail = { (w: String) in ModelError.shape(node: node.displayName, opType: node.opType, what: w) }
        guard let k = node.ints("kernel_shape").map({ $0.map(shapeInt) }) ?? kernel else { throw fail("no kernel_shape") }
        guard k.count == spatialRank else { throw fail("kernel_shape has \(k.count) dimensions, input has \(spatialRank) spatial") }
        self.kernel = k
        strides = node.ints("strides").map { $0.map(shapeInt) } ?? Array(repeating: 1, count: spatialRank)
        dilations = node.ints("dilations").map { $0.map(shapeInt) } ?? Array(repeating: 1, count: spatialRank)
        pads = node.ints("pads").map { $0.map(shapeInt) } ?? Array(repeating: 0, count: 2 * spatialRank)
        autoPad = node.string("auto_pad") ?? "NOTSET"
        ceilMode = (node.int("ceil_mode") ?? 0) != 0
        guard strides.count == spatialRank, dilations.count == spatialRank, pads.count == 2 * spatialRank else {
            throw fail("strides, dilations or pads do not match \(spatialRank) spatial dimensions")
        }
        guard strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }), k.allSatisfy({ $0 >= 0 }) else {
            throw fail("strides and dilations must be positive, kernel sizes not negative")
        }
    }

    /// Pads actually applied for input sizes `input` (resolves `auto_pad`).
    public func resolvedPads(input: [Int]) -> [Int] {
        let r = kernel.count
        switch autoPad {
        case "SAME_UPPER", "SAME_LOWER":
            var p = [Int](repeating: 0, count: 2 * r)
            for i in 0..<r {
                let out = (input[i] + strides[i] - 1) / strides[i]
                let total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - input[i])
                let small = total / 2, big = total - small
                p[i] = autoPad == "SAME_UPPER" ? small : big
                p[i + r] = autoPad == "SAME_UPPER" ? big : small
            }
            return p
        case "VALID": return [Int](repeating: 0, count: 2 * r)
        default: return pads
        }
    }

    /// Output size of a sliding window along spatial axis `i`.
    public func outputSize(input: Int, axis i: Int) -> Int {
        if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" { return (input + strides[i] - 1) / strides[i] }
        let p = autoPad == "VALID" ? (0, 0) : (pads[i], pads[i + kernel.count])
        let span = input + p.0 + p.1 - ((kernel[i] - 1) * dilations[i] + 1)
        if span < 0 { return 0 }
        if ceilMode {
            var out = (span + strides[i] - 1) / strides[i] + 1
            // The last window must start inside the input or its left padding.
            if (out - 1) * strides[i] >= input + p.0 { out -= 1 }
            return out
        }
        return span / strides[i] + 1
    }
}

func spatialOutput(_ ctx: ShapeContext, _ x: [Dim], attributes: WindowAttributes) -> [Dim] {
    x.dropFirst(2).enumerated().map { i, d in
        guard let v = d.value else { return .unknown }
        return .value(attributes.outputSize(input: v, axis: i))
    }
}

func convShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    guard let wShape = ctx.input(1)?.shape else { throw ShapeUnknown() }
    guard x.count >= 3, wShape.count == x.count else { throw ctx.fail("input rank \(x.count) and weight rank \(wShape.count) do not fit a convolution") }
    let group = Int(ctx.node.int("group") ?? 1)
    if let c = x[1].value, let wc = wShape[1].value, c != wc * group {
        throw ctx.fail("input has \(c) channels, weight expects \(wc) × group \(group)")
    }
    let a = try WindowAttributes(node: ctx.node, spatialRank: x.count - 2, kernel: wShape.dropFirst(2).map { $0.value ?? 0 })
    let dtype: DType? = ctx.node.opType == "ConvInteger" ? .int32 : xf.dtype
    return [ValueFacts(dtype: dtype, shape: [x[0], wShape[0]] + spatialOutput(ctx, x, attributes: a))]
}

func qlinearConvShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (_, x) = try ctx.ranked(0)
    guard let wShape = ctx.input(3)?.shape else { throw ShapeUnknown() }
    guard x.count >= 3, wShape.count == x.count else { throw ctx.fail("input and weight ranks do not fit a convolution") }
    let a = try WindowAttributes(node: ctx.node, spatialRank: x.count - 2, kernel: wShape.dropFirst(2).map { $0.value ?? 0 })
    return [ValueFacts(dtype: ctx.input(7)?.dtype ?? ctx.input(0)?.dtype, shape: [x[0], wShape[0]] + spatialOutput(ctx, x, attributes: a))]
}

func convTransposeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    guard let wShape = ctx.input(1)?.shape else { throw ShapeUnknown() }
    guard x.count >= 3, wShape.count == x.count else { throw ctx.fail("input and weight ranks do not fit a transposed convolution") }
    let group = Int(ctx.node.int("group") ?? 1)
    let r = x.count - 2
    let a = try WindowAttributes(node: ctx.node, spatialRank: r, kernel: wShape.dropFirst(2).map { $0.value ?? 0 })
    let outPad = ctx.node.ints("output_padding").map { $0.map(shapeInt) } ?? Array(repeating: 0, count: r)
    let channels: Dim = wShape[1].value.map { .value($0 * group) } ?? .unknown
    if let os = ctx.node.ints("output_shape") {
        let sp = os.suffix(r).map { Dim.value(shapeInt($0)) }
        return [ValueFacts(dtype: xf.dtype, shape: [x[0], channels] + sp)]
    }
    var spatial: [Dim] = []
    for i in 0..<r {
        guard let v = x[i + 2].value, outPad.count == r else { spatial.append(.unknown); continue }
        if a.autoPad == "SAME_UPPER" || a.autoPad == "SAME_LOWER" {
            spatial.append(.value(v * a.strides[i]))
        } else {
            let p = a.autoPad == "VALID" ? 0 : a.pads[i] + a.pads[i + r]
            spatial.append(.value(a.strides[i] * (v - 1) + outPad[i] + (a.kernel[i] - 1) * a.dilations[i] + 1 - p))
        }
    }
    return [ValueFacts(dtype: xf.dtype, shape: [x[0], channels] + spatial)]
}

func poolShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    guard x.count >= 3 else { throw ctx.fail("pooling needs an input of rank 3 or more, got \(x.count)") }
    let a = try WindowAttributes(node: ctx.node, spatialRank: x.count - 2, kernel: nil)
    let y = ValueFacts(dtype: xf.dtype, shape: [x[0], x[1]] + spatialOutput(ctx, x, attributes: a))
    return ctx.node.outputs.count > 1 ? [y, ValueFacts(dtype: .int64, shape: y.shape)] : [y]
}

func globalPoolShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    guard x.count >= 3 else { throw ctx.fail("global pooling needs an input of rank 3 or more, got \(x.count)") }
    return [ValueFacts(dtype: xf.dtype, shape: [x[0], x[1]] + Array(repeating: .value(1), count: x.count - 2))]
}

func gemmShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (af, a) = try ctx.ranked(0)
    let (_, b) = try ctx.ranked(1)
    guard a.count == 2, b.count == 2 else { throw ctx.fail("Gemm needs 2-D A and B, got ranks \(a.count) and \(b.count)") }
    let ta = (ctx.node.int("transA") ?? 0) != 0, tb = (ctx.node.int("transB") ?? 0) != 0
    let m = ta ? a[1] : a[0], ka = ta ? a[0] : a[1]
    let kb = tb ? b[1] : b[0], n = tb ? b[0] : b[1]
    if let x = ka.value, let y = kb.value, x != y { throw ctx.fail("inner dimensions differ: A gives \(x), B gives \(y)") }
    return [ValueFacts(dtype: af.dtype, shape: [m, n])]
}

func matMulShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (af, a0) = try ctx.ranked(0)
    let (_, b0) = try ctx.ranked(1)
    guard !a0.isEmpty, !b0.isEmpty else { throw ctx.fail("MatMul inputs must not be scalars") }
    let a = a0.count == 1 ? [.value(1)] + a0 : a0
    let b = b0.count == 1 ? b0 + [.value(1)] : b0
    if let x = a[a.count - 1].value, let y = b[b.count - 2].value, x != y {
        throw ctx.fail("inner dimensions differ: \(x) and \(y)")
    }
    var out = try broadcast(Array(a.dropLast(2)), Array(b.dropLast(2)), ctx)
    if a0.count > 1 { out.append(a[a.count - 2]) }
    if b0.count > 1 { out.append(b[b.count - 1]) }
    let dtype: DType? = ctx.node.opType == "MatMulInteger" ? .int32 : af.dtype
    return [ValueFacts(dtype: dtype, shape: out)]
}

func qlinearMatMulShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let sub = ShapeContext(node: ctx.node, inputs: [ctx.input(0), ctx.input(3)], opset: ctx.opset)
    var f = try matMulShape(sub)
    f[0].dtype = ctx.input(7)?.dtype ?? ctx.input(0)?.dtype
    return f
}

func batchNormShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    if x.count >= 2, let c = x[1].value, let s = ctx.input(1)?.concreteShape, s != [c] {
        throw ctx.fail("scale has shape \(s), input has \(c) channels")
    }
    var out = [ValueFacts(dtype: xf.dtype, shape: x)]
    for _ in 1..<max(1, ctx.node.outputs.count) { out.append(ValueFacts(dtype: xf.dtype, shape: x.count >= 2 ? [x[1]] : nil)) }
    return out
}

func dropoutShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let x = ctx.input(0) ?? .unknown
    return [x, ValueFacts(dtype: .bool, shape: x.shape)]
}
