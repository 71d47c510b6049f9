// Shape rules for elementwise, layout and shape-computing operators.

func normalizeAxis(_ axis: Int, rank: Int, _ ctx: ShapeContext) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < max(rank, 1) else { throw ctx.fail("axis \(axis) is out of range for rank \(rank)") }
    return a
}

/// Numpy-style broadcast of two shapes.
func broadcast(_ a: [Dim], _ b: [Dim], _ ctx: ShapeContext) throws -> [Dim] {
    let n = max(a.count, b.count)
    return try (0..<n).map { i -> Dim in
        let x = i < n - a.count ? Dim.value(1) : a[i - (n - a.count)]
        let y = i < n - b.count ? Dim.value(1) : b[i - (n - b.count)]
        if x == y { return x }
        if x == .value(1) { return y }
        if y == .value(1) { return x }
        if let u = x.value, let v = y.value { throw ctx.fail("shapes \(a) and \(b) do not broadcast (\(u) vs \(v))") }
        if x.value != nil { return x }
        if y.value != nil { return y }
        return .unknown
    }
}

func sameShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    var f = ctx.input(0) ?? .unknown
    if ctx.node.opType != "Identity" { f.values = nil }
    return [f]
}

func castShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    var f = ctx.input(0) ?? .unknown
    f.dtype = ctx.node.int("to").flatMap { DType(rawValue: Int32(truncatingIfNeeded: $0)) }
    if let t = f.dtype, t.isFloatingPoint { f.values = nil }
    return [f]
}

func quantizeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let x = ctx.input(0) ?? .unknown
    let dtype = ctx.input(2)?.dtype ?? ctx.node.int("output_dtype").flatMap { DType(rawValue: Int32(truncatingIfNeeded: $0)) } ?? .uint8
    return [ValueFacts(dtype: dtype, shape: x.shape)]
}

func dequantizeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    [ValueFacts(dtype: ctx.input(1)?.dtype ?? .float, shape: (ctx.input(0) ?? .unknown).shape)]
}

/// Elementwise integer arithmetic on known values (shape computations), scalars broadcast.
private func combineValues(_ op: String, _ a: [Dim]?, _ b: [Dim]?) -> [Dim]? {
    guard let a, let b, a.count == b.count || a.count == 1 || b.count == 1 else { return nil }
    let n = max(a.count, b.count)
    return (0..<n).map { i in
        guard let x = a[a.count == 1 ? 0 : i].value, let y = b[b.count == 1 ? 0 : i].value else { return .unknown }
        switch op {
        case "Add": return .value(x + y)
        case "Sub": return .value(x - y)
        case "Mul": return .value(x * y)
        case "Div": return y == 0 ? .unknown : .value(Int((Double(x) / Double(y)).rounded(.down)))
        default: return .unknown
        }
    }
}

func broadcastShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let present = ctx.inputs.compactMap { $0 }
    guard let first = present.first else { throw ctx.fail("no inputs") }
    var shape = first.shape
    for f in present.dropFirst() {
        guard let s = shape, let t = f.shape else { shape = nil; break }
        shape = try broadcast(s, t, ctx)
    }
    var out = ValueFacts(dtype: first.dtype, shape: shape)
    if present.count == 2, !(first.dtype?.isFloatingPoint ?? true) {
        out.values = combineValues(ctx.node.opType, present[0].values, present[1].values)
    }
    return [out]
}

func compareShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    var f = try broadcastShape(ctx)
    f[0].dtype = .bool
    f[0].values = nil
    return f
}

func whereShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    var f = try broadcastShape(ctx)
    f[0].dtype = ctx.input(1)?.dtype
    f[0].values = nil
    return f
}

func concatShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let ins = ctx.inputs.compactMap { $0 }
    guard let first = ins.first, var out = first.shape else { throw ShapeUnknown() }
    guard let axisAttr = ctx.node.int("axis") else { throw ctx.fail("Concat needs an axis") }
    let axis = try normalizeAxis(Int(axisAttr), rank: out.count, ctx)
    var total: Int? = out[axis].value
    for f in ins.dropFirst() {
        guard let s = f.shape else { throw ShapeUnknown() }
        guard s.count == out.count else { throw ctx.fail("inputs have ranks \(out.count) and \(s.count)") }
        for i in 0..<s.count where i != axis {
            if let x = out[i].value, let y = s[i].value, x != y { throw ctx.fail("inputs differ on axis \(i): \(x) vs \(y)") }
            if out[i].value == nil, s[i].value != nil { out[i] = s[i] }
        }
        total = total.flatMap { t in s[axis].value.map { t + $0 } }
    }
    out[axis] = total.map { .value($0) } ?? .unknown
    var values: [Dim]? = nil
    if out.count == 1 {
        values = []
        for f in ins { if let v = f.values, values != nil { values! += v } else { values = nil } }
    }
    return [ValueFacts(dtype: first.dtype, shape: out, values: values)]
}

func splitShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    let axis = try normalizeAxis(Int(ctx.node.int("axis") ?? 0), rank: x.count, ctx)
    let parts = ctx.node.outputs.count
    var sizes: [Int]? = ctx.node.ints("split").map { $0.map(shapeInt) } ?? ctx.input(1)?.intValues
    // A split input whose values are not known leaves the parts unknown (not equal).
    if sizes == nil, ctx.input(1) == nil, let d = x[axis].value {
        let numOutputs = Int(ctx.node.int("num_outputs") ?? Int64(parts))
        let chunk = (d + numOutputs - 1) / max(numOutputs, 1)
        sizes = (0..<parts).map { i in max(0, min(chunk, d - i * chunk)) }
    }
    return (0..<parts).map { i in
        var s = x
        s[axis] = sizes.flatMap { i < $0.count ? .value($0[i]) : nil } ?? .unknown
        return ValueFacts(dtype: xf.dtype, shape: s)
    }
}

func sliceShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    let starts: [Int], ends: [Int], axes: [Int], steps: [Int]
    if ctx.opset < 10 || ctx.node.ints("starts") != nil {
        guard let s = ctx.node.ints("starts"), let e = ctx.node.ints("ends") else { throw ctx.fail("no starts or ends") }
        starts = s.map(shapeInt)
        ends = e.map(shapeInt)
        axes = ctx.node.ints("axes").map { $0.map(shapeInt) } ?? Array(0..<starts.count)
        steps = Array(repeating: 1, count: starts.count)
    } else {
        guard let s = ctx.input(1)?.intValues, let e = ctx.input(2)?.intValues else {
            return [ValueFacts(dtype: xf.dtype, shape: x.map { _ in .unknown })]
        }
        starts = s
        ends = e
        axes = ctx.input(3)?.intValues ?? Array(0..<s.count)
        steps = ctx.input(4)?.intValues ?? Array(repeating: 1, count: s.count)
    }
    guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else {
        throw ctx.fail("starts, ends, axes and steps differ in length")
    }
    var out = x
    var kept: [Int]? = nil
    for (j, a0) in axes.enumerated() {
        let a = try normalizeAxis(a0, rank: x.count, ctx)
        guard steps[j] != 0 else { throw ctx.fail("slice step is 0") }
        guard let d = x[a].value else { out[a] = .unknown; continue }
        let idx = sliceIndices(dim: d, start: starts[j], end: ends[j], step: steps[j])
        out[a] = .value(idx.count)
        if x.count == 1 { kept = idx }
    }
    var values: [Dim]? = nil
    if let v = xf.values, let k = kept { values = k.map { $0 < v.count ? v[$0] : .unknown } }
    else if x.count == 1 && axes.isEmpty { values = xf.values }
    return [ValueFacts(dtype: xf.dtype, shape: out, values: values)]
}

/// The indices a Slice keeps along one axis of size `dim` (ONNX clamping rules).
public func sliceIndices(dim: Int, start: Int, end: Int, step: Int) -> [Int] {
    var s = start < 0 ? start + dim : start
    var e = end < 0 ? end + dim : end
    if step > 0 {
        s = min(max(s, 0), dim)
        e = min(max(e, 0), dim)
        return s < e ? Array(stride(from: s, to: e, by: step)) : []
    } else {
        s = min(max(s, -1), dim - 1)
        e = min(max(e, -1), dim - 1)
        return s > e ? Array(stride(from: s, to: e, by: step)) : []
    }
}

/// Product of dims: a number, or nil when any is not known.
func product(_ dims: ArraySlice<Dim>) -> Int? {
    var p = 1
    for d in dims {
        guard let v = d.value else { return nil }
        let (q, overflow) = p.multipliedReportingOverflow(by: v)
        if overflow { return nil }
        p = q
    }
    return p
}

func flattenShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    var axis = Int(ctx.node.int("axis") ?? 1)
    if axis < 0 { axis += x.count }
    guard axis >= 0 && axis <= x.count else { throw ctx.fail("axis \(axis) is out of range for rank \(x.count)") }
    func merged(_ d: ArraySlice<Dim>) -> Dim {
        if let p = product(d) { return .value(p) }
        let unknown = d.filter { $0.value == nil }
        if unknown.count == 1, case .symbol = unknown[0], product(d.filter { $0.value != nil }[...]) == 1 { return unknown[0] }
        return .unknown
    }
    return [ValueFacts(dtype: xf.dtype, shape: [merged(x[0..<axis]), merged(x[axis...])], values: xf.values)]
}

func reshapeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    let target: [Dim]
    if let s = ctx.node.ints("shape") { target = s.map { .value(shapeInt($0)) } }
    else if let v = ctx.input(1)?.values { target = v }
    else {
        let rank = ctx.input(1)?.concreteShape?.first
        return [ValueFacts(dtype: xf.dtype, shape: rank.map { Array(repeating: .unknown, count: $0) })]
    }
    let allowZero = (ctx.node.int("allowzero") ?? 0) != 0
    var out: [Dim] = []
    var inferAt: Int? = nil
    for (i, d) in target.enumerated() {
        switch d {
        case .value(0) where !allowZero:
            guard i < x.count else { throw ctx.fail("shape has 0 at position \(i) beyond the input rank \(x.count)") }
            out.append(x[i])
        case .value(-1):
            guard inferAt == nil else { throw ctx.fail("shape has more than one -1") }
            inferAt = i
            out.append(.unknown)
        case .value(let v) where v < -1: throw ctx.fail("shape has negative size \(v)")
        default: out.append(d)
        }
    }
    if let k = inferAt {
        // Cancel equal symbols on both sides, then divide what is left.
        var inSyms = x.compactMap { if case .symbol(let s) = $0 { s } else { nil } }
        var outSyms: [String] = []
        var inProd = 1, outProd = 1, unknown = x.contains(.unknown)
        for d in x { if let v = d.value { inProd *= v } }
        for (i, d) in out.enumerated() where i != k {
            switch d {
            case .value(let v): outProd *= v
            case .symbol(let s): if let j = inSyms.firstIndex(of: s) { inSyms.remove(at: j) } else { outSyms.append(s) }
            case .unknown: unknown = true
            }
        }
        if !unknown && outSyms.isEmpty && outProd > 0 {
            if inSyms.isEmpty {
                guard inProd % outProd == 0 else { throw ctx.fail("cannot reshape \(inProd) elements into \(target)") }
                out[k] = .value(inProd / outProd)
            } else if inSyms.count == 1 && inProd == outProd {
                out[k] = .symbol(inSyms[0])
            }
        }
    } else if let a = product(x[...]), let b = product(out[...]), a != b {
        throw ctx.fail("cannot reshape \(x) (\(a) elements) into \(out) (\(b) elements)")
    }
    return [ValueFacts(dtype: xf.dtype, shape: out, values: xf.values)]
}

func transposeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    let perm = ctx.node.ints("perm").map { $0.map(shapeInt) } ?? Array((0..<x.count).reversed())
    guard perm.count == x.count, Set(perm) == Set(0..<x.count) else { throw ctx.fail("perm \(perm) is not a permutation of rank \(x.count)") }
    return [ValueFacts(dtype: xf.dtype, shape: perm.map { x[$0] })]
}

func axesOf(_ ctx: ShapeContext, input: Int) -> [Int]? {
    ctx.node.ints("axes").map { $0.map(shapeInt) } ?? ctx.input(input)?.intValues
}

func squeezeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    var out: [Dim] = []
    if ctx.node.ints("axes") == nil, ctx.input(1) != nil, ctx.input(1)?.intValues == nil {
        // Axes given as a tensor whose values are not known: even the rank is unknown.
        return [ValueFacts(dtype: xf.dtype, shape: nil)]
    } else if let axes = axesOf(ctx, input: 1) {
        let norm = Set(try axes.map { try normalizeAxis($0, rank: x.count, ctx) })
        for (i, d) in x.enumerated() where !norm.contains(i) { out.append(d) }
        for a in norm where x[a].value.map({ $0 != 1 }) ?? false { throw ctx.fail("cannot squeeze axis \(a) of size \(x[a])") }
    } else {
        guard x.allSatisfy({ $0.value != nil }) else { throw ShapeUnknown() }
        out = x.filter { $0 != .value(1) }
    }
    return [ValueFacts(dtype: xf.dtype, shape: out, values: xf.values)]
}

func unsqueezeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    guard let axes = axesOf(ctx, input: 1) else { throw ShapeUnknown() }
    let rank = x.count + axes.count
    let norm = Set(try axes.map { try normalizeAxis($0, rank: rank, ctx) })
    guard norm.count == axes.count else { throw ctx.fail("repeated axes \(axes)") }
    var rest = x.makeIterator()
    let out = (0..<rank).map { norm.contains($0) ? Dim.value(1) : rest.next() ?? .unknown }
    return [ValueFacts(dtype: xf.dtype, shape: out, values: xf.values)]
}

func gatherShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (df, d) = try ctx.ranked(0)
    let (idf, idx) = try ctx.ranked(1)
    let axis = try normalizeAxis(Int(ctx.node.int("axis") ?? 0), rank: d.count, ctx)
    let out = Array(d[..<axis]) + idx + Array(d[(axis + 1)...])
    var values: [Dim]? = nil
    if d.count == 1, let v = df.values, let ids = idf.intValues {
        values = ids.map { i in let j = i < 0 ? i + v.count : i; return j >= 0 && j < v.count ? v[j] : .unknown }
    }
    return [ValueFacts(dtype: df.dtype, shape: out, values: values)]
}

func shapeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (_, x) = try ctx.ranked(0)
    let r = x.count
    func clampIndex(_ v: Int) -> Int { min(max(v < 0 ? v + r : v, 0), r) }
    let start = clampIndex(Int(ctx.node.int("start") ?? 0))
    let end = clampIndex(Int(ctx.node.int("end") ?? Int64(r)))
    let dims = start < end ? Array(x[start..<end]) : []
    return [ValueFacts(dtype: .int64, shape: [.value(dims.count)], values: dims)]
}

func sizeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (_, x) = try ctx.ranked(0)
    return [ValueFacts(dtype: .int64, shape: [], values: [product(x[...]).map { .value($0) } ?? .unknown])]
}

func constantShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let n = ctx.node
    if let t = n.tensor("value") { return [ShapeInference.constantFacts(t)] }
    if let v = n.float("value_float") { return [ValueFacts(dtype: .float, shape: [], floats: [v])] }
    if let v = n.floats("value_floats") { return [ValueFacts(dtype: .float, shape: [.value(v.count)], floats: v.count <= 64 ? v : nil)] }
    if let v = n.int("value_int") { return [ValueFacts(dtype: .int64, shape: [], values: [.value(shapeInt(v))])] }
    if let v = n.ints("value_ints") { return [ValueFacts(dtype: .int64, shape: [.value(v.count)], values: v.map { .value(shapeInt($0)) })] }
    throw ctx.fail("Constant has no value attribute swiftq reads")
}

func constantOfShapeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let t = ctx.node.tensor("value")
    let dtype = t?.dtype ?? .float
    guard let dims = ctx.input(0)?.values else { return [ValueFacts(dtype: dtype, shape: nil)] }
    if let bad = dims.first(where: { ($0.value ?? 0) < 0 }) { throw ctx.fail("negative dimension \(bad)") }
    var f = ValueFacts(dtype: dtype, shape: dims)
    if let n = product(dims[...]), n <= 1024, let t, !dtype.isFloatingPoint, let fill = t.int64s().first {
        f.values = Array(repeating: .value(shapeInt(fill)), count: n)
    }
    return [f]
}

func padShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    guard let pads = ctx.node.ints("pads").map({ $0.map(shapeInt) }) ?? ctx.input(1)?.intValues else {
        return [ValueFacts(dtype: xf.dtype, shape: x.map { _ in .unknown })]
    }
    let axes = try (ctx.input(3)?.intValues ?? Array(0..<x.count)).map { try normalizeAxis($0, rank: x.count, ctx) }
    guard pads.count == 2 * axes.count else { throw ctx.fail("pads has \(pads.count) values for \(axes.count) axes") }
    var out = x
    for (j, a) in axes.enumerated() {
        out[a] = x[a].value.map { .value($0 + pads[j] + pads[j + axes.count]) } ?? .unknown
    }
    return [ValueFacts(dtype: xf.dtype, shape: out)]
}

func reduceShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    let keep = (ctx.node.int("keepdims") ?? 1) != 0
    var axes = axesOf(ctx, input: 1)
    if axes == nil, ctx.input(1) != nil { return [ValueFacts(dtype: xf.dtype, shape: nil)] }
    if axes?.isEmpty ?? true {
        if (ctx.node.int("noop_with_empty_axes") ?? 0) != 0 { return [xf] }
        axes = Array(0..<x.count)
    }
    let norm = Set(try axes!.map { try normalizeAxis($0, rank: x.count, ctx) })
    var out: [Dim] = []
    for (i, d) in x.enumerated() {
        if norm.contains(i) { if keep { out.append(.value(1)) } } else { out.append(d) }
    }
    return [ValueFacts(dtype: xf.dtype, shape: out)]
}

func expandShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    guard let s = ctx.input(1)?.values else { return [ValueFacts(dtype: xf.dtype, shape: nil)] }
    return [ValueFacts(dtype: xf.dtype, shape: try broadcast(x, s, ctx))]
}

func tileShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    guard let r = ctx.input(1)?.intValues, r.count == x.count else { return [ValueFacts(dtype: xf.dtype, shape: x.map { _ in .unknown })] }
    return [ValueFacts(dtype: xf.dtype, shape: zip(x, r).map { d, k in d.value.map { .value($0 * k) } ?? .unknown })]
}

func rangeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let dtype = ctx.input(0)?.dtype
    if let s = ctx.input(0)?.intValues?.first, let l = ctx.input(1)?.intValues?.first, let d = ctx.input(2)?.intValues?.first, d != 0 {
        let n = max(0, Int((Double(l - s) / Double(d)).rounded(.up)))
        return [ValueFacts(dtype: dtype, shape: [.value(n)], values: n <= 1024 ? (0..<n).map { .value(s + $0 * d) } : nil)]
    }
    return [ValueFacts(dtype: dtype, shape: [.unknown])]
}

/// Resize and Upsample: the output shape when the scales or sizes are constants (any rank, every form of
/// `ResizeSpec`); dimensions the scales leave alone keep their symbols.
func resizeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    let spec: ResizeSpec
    do { spec = try ResizeSpec(node: ctx.node, opset: ctx.opset) } catch let p as ResizeProblem { throw ctx.fail(p.what) }
    let (scales, sizes, _) = spec.operands(floats: { ctx.input($0)?.floats }, ints: { ctx.input($0)?.intValues })
    let unknown = [ValueFacts(dtype: xf.dtype, shape: x.map { _ in .unknown })]
    if (scales ?? []).isEmpty && (sizes ?? []).isEmpty { return unknown }
    // Dimensions not yet known enter as 1 and come out unknown unless their scale is 1.
    let known = x.map { $0.value ?? 1 }
    let out: (shape: [Int], scales: [Float], lengths: [Float])
    do { out = try spec.outputShape(input: known, scales: scales, sizes: sizes) } catch let p as ResizeProblem { throw ctx.fail(p.what) }
    let given = Set((spec.axes ?? Array(0..<x.count)).map { $0 < 0 ? $0 + x.count : $0 })
    let sizesGiven = !(sizes ?? []).isEmpty
    let shape = x.indices.map { d -> Dim in
        if x[d].value != nil { return .value(out.shape[d]) }
        return given.contains(d) && (sizesGiven || out.scales[d] != 1) ? (sizesGiven && spec.policy == "stretch" ? .value(out.shape[d]) : .unknown) : x[d]
    }
    return [ValueFacts(dtype: xf.dtype, shape: shape)]
}

func argExtremeShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (_, x) = try ctx.ranked(0)
    let a = try normalizeAxis(Int(ctx.node.int("axis") ?? 0), rank: x.count, ctx)
    var out = x
    if (ctx.node.int("keepdims") ?? 1) != 0 { out[a] = .value(1) } else { out.remove(at: a) }
    return [ValueFacts(dtype: .int64, shape: out)]
}

func topKShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    let a = try normalizeAxis(Int(ctx.node.int("axis") ?? -1), rank: x.count, ctx)
    var out = x
    let k = ctx.opset < 10 ? ctx.node.int("k").map { shapeInt($0) } : ctx.input(1)?.intValues?.first
    out[a] = k.map { .value($0) } ?? .unknown
    if let k, let d = x[a].value, k < 0 || k > d { throw ctx.fail("k \(k) is outside 0...\(d)") }
    return [ValueFacts(dtype: xf.dtype, shape: out), ValueFacts(dtype: .int64, shape: out)]
}

func depthSpaceShape(_ ctx: ShapeContext) throws -> [ValueFacts] {
    let (xf, x) = try ctx.ranked(0)
    guard x.count == 4 else { throw ctx.fail("needs a rank-4 NCHW input") }
    let b = shapeInt(ctx.node.int("blocksize") ?? 0)
    guard b > 0 && b <= 4096 else { throw ctx.fail("blocksize \(b) must be in 1...4096") }
    func scaled(_ d: Dim, _ f: (Int) -> Int?) throws -> Dim {
        guard let v = d.value else { return .unknown }
        guard let r = f(v) else { throw ctx.fail("dimension \(v) is not a multiple of blocksize \(b) (squared for channels)") }
        return .value(r)
    }
    if ctx.node.opType == "DepthToSpace" {
        return [ValueFacts(dtype: xf.dtype, shape: [x[0], try scaled(x[1]) { $0 % (b * b) == 0 ? $0 / (b * b) : nil },
                                                   try scaled(x[2]) { $0 * b }, try scaled(x[3]) { $0 * b }])]
    }
    return [ValueFacts(dtype: xf.dtype, shape: [x[0], try scaled(x[1]) { $0 * b * b },
                                               try scaled(x[2]) { $0 % b == 0 ? $0 / b : nil }, try scaled(x[3]) { $0 % b == 0 ? $0 / b : nil }])]
}
