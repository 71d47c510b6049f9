import SwiftQCore

/// Normalizes a possibly negative axis for `rank`, or throws naming the node.
func normalizedAxis(_ a: Int, rank: Int, _ fail: NodeFailure) throws -> Int {
    let r = a < 0 ? a + rank : a
    guard r >= 0 && r < max(rank, 1) else { throw fail.invalid("axis \(a) out of range for rank \(rank)") }
    return r
}

/// Fills `y` in row-major order: its element at output coordinates (c₀, c₁, …) is x's element at
/// Σ `source(d, c_d)` (an element index into x). Any element type.
func copyElements(from x: RTensor, to y: RTensor, source: (Int, Int) -> Int) {
    let so = strides(of: y.shape), es = x.dtype.byteSize!
    for i in 0..<y.count {
        var rem = i, off = 0
        for d in 0..<y.rank { let c = rem / so[d]; rem %= so[d]; off += source(d, c) }
        y.storage.raw.advanced(by: i * es).copyMemory(from: x.storage.raw.advanced(by: off * es), byteCount: es)
    }
}

/// Reshape, Flatten, Squeeze, Unsqueeze, Identity and Dropout (inference): same data, new shape, no copy.
struct ViewOp: Operator {
    let fail: NodeFailure
    let opType: String
    let opset: Int64
    let axis: Int
    let axesAttribute: [Int]?
    let allowZero: Bool
    let wantsMask: Bool

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        opType = s.node.opType
        opset = s.opset
        axis = s.int("axis", 1)
        axesAttribute = s.ints("axes")
        allowZero = s.int("allowzero", 0) != 0
        wantsMask = opType == "Dropout" && s.node.outputs.count > 1 && !s.node.outputs[1].isEmpty
        if opType == "Reshape" && s.opset < 5 { throw s.unsupported("Reshape before opset 5 (shape as attribute)") }
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        switch opType {
        case "Identity": return [x]
        case "Dropout":
            guard wantsMask else { return [x] }
            let mask = ctx.alloc(.bool, x.shape)
            mask.storage.raw.initializeMemory(as: UInt8.self, repeating: 1, count: x.count)
            return [x, mask]
        case "Flatten":
            let a = axis < 0 ? axis + x.rank : axis
            guard a >= 0 && a <= x.rank else { throw fail.invalid("axis \(axis) out of range for rank \(x.rank)") }
            return [x.reshaped([x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)])]
        case "Reshape":
            let target = try inputs.required(1, fail).int64s().map { Int($0) }
            var out: [Int] = []
            var infer = -1
            for (i, d) in target.enumerated() {
                if d == 0 && !allowZero {
                    guard i < x.rank else { throw fail.invalid("shape \(target) copies dimension \(i), input has rank \(x.rank)") }
                    out.append(x.shape[i])
                } else if d == -1 {
                    guard infer < 0 else { throw fail.invalid("shape \(target) has more than one -1") }
                    infer = i
                    out.append(1)
                } else {
                    guard d >= 0 else { throw fail.invalid("shape \(target) has a negative dimension") }
                    out.append(d)
                }
            }
            if infer >= 0 {
                guard let known = Tensor.elementCount(out), known > 0, x.count % known == 0 else { throw fail.invalid("cannot reshape \(x.shape) to \(target)") }
                out[infer] = x.count / known
            }
            guard Tensor.elementCount(out) == x.count else { throw fail.invalid("cannot reshape \(x.shape) (\(x.count) values) to \(target)") }
            return [x.reshaped(out)]
        case "Squeeze":
            let given = axesAttribute ?? (inputs.count > 1 ? inputs[1]?.int64s().map { Int($0) } : nil)
            let axes = try Set((given ?? x.shape.indices.filter { x.shape[$0] == 1 }).map { try normalizedAxis($0, rank: x.rank, fail) })
            for a in axes where x.shape[a] != 1 { throw fail.invalid("cannot squeeze axis \(a) of size \(x.shape[a])") }
            return [x.reshaped(x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element))]
        default: // Unsqueeze
            guard let given = axesAttribute ?? (inputs.count > 1 ? inputs[1]?.int64s().map({ Int($0) }) : nil) else {
                throw fail.invalid("Unsqueeze needs axes")
            }
            let rank = x.rank + given.count
            let axes = try Set(given.map { try normalizedAxis($0, rank: rank, fail) })
            guard axes.count == given.count else { throw fail.invalid("axes \(given) repeat an axis") }
            var out: [Int] = []
            var it = x.shape.makeIterator()
            for d in 0..<rank { out.append(axes.contains(d) ? 1 : it.next()!) }
            return [x.reshaped(out)]
        }
    }
}

/// Transpose with `perm` (default: reverse the axes), any element type.
struct TransposeOp: Operator {
    let fail: NodeFailure
    let perm: [Int]?

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        perm = s.ints("perm")
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        let p = perm ?? Array((0..<x.rank).reversed())
        guard p.sorted() == Array(0..<x.rank) else { throw fail.invalid("perm \(p) is not a permutation of \(x.rank) axes") }
        let out = p.map { x.shape[$0] }
        let y = ctx.alloc(x.dtype, out)
        let sx = strides(of: x.shape)
        copyElements(from: x, to: y) { d, c in c * sx[p[d]] }
        return [y]
    }
}

/// Concat along `axis`, any element type.
struct ConcatOp: Operator {
    let fail: NodeFailure
    let axis: Int

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        guard let a = s.node.int("axis") ?? (s.opset < 4 ? 1 : nil) else { throw s.invalid("Concat needs the axis attribute") }
        axis = Int(a)
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let xs = inputs.compactMap { $0 }
        guard let first = xs.first else { throw fail.invalid("Concat needs inputs") }
        let a = try normalizedAxis(axis, rank: first.rank, fail)
        var out = first.shape
        out[a] = 0
        for x in xs {
            guard x.rank == first.rank, x.dtype == first.dtype,
                  x.shape.enumerated().allSatisfy({ $0.offset == a || $0.element == first.shape[$0.offset] }) else {
                throw fail.invalid("inputs \(xs.map(\.shape)) do not fit along axis \(a)")
            }
            out[a] += x.shape[a]
        }
        let y = ctx.alloc(first.dtype, out)
        let outer = out[..<a].reduce(1, *), es = first.dtype.byteSize!
        let rowOut = out[a...].reduce(1, *) * es
        var offset = 0
        for x in xs {
            let row = x.shape[a...].reduce(1, *) * es
            for o in 0..<outer {
                y.storage.raw.advanced(by: o * rowOut + offset).copyMemory(from: x.storage.raw.advanced(by: o * row), byteCount: row)
            }
            offset += row
        }
        return [y]
    }
}

/// Split along `axis` into parts given by `split` (attribute before 13, input after) or equal parts
/// (`num_outputs` from opset 18: the last part may be smaller).
struct SplitOp: Operator {
    let fail: NodeFailure
    let axis: Int
    let splitAttribute: [Int]?
    let outputs: Int

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        axis = s.int("axis", 0)
        splitAttribute = s.ints("split")
        outputs = s.node.outputs.count
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        let a = try normalizedAxis(axis, rank: x.rank, fail)
        let dim = x.shape[a]
        var parts = splitAttribute ?? (inputs.count > 1 ? inputs[1]?.int64s().map { Int($0) } : nil) ?? []
        if parts.isEmpty {
            let each = (dim + outputs - 1) / outputs
            parts = (0..<outputs).map { min(each, max(0, dim - $0 * each)) }
        }
        guard parts.count == outputs, parts.reduce(0, +) == dim, parts.allSatisfy({ $0 >= 0 }) else {
            throw fail.invalid("split \(parts) does not divide dimension \(dim) into \(outputs) outputs")
        }
        let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *), es = x.dtype.byteSize!
        var start = 0
        return parts.map { p in
            var shape = x.shape
            shape[a] = p
            let y = ctx.alloc(x.dtype, shape)
            for o in 0..<outer {
                y.storage.raw.advanced(by: o * p * inner * es)
                    .copyMemory(from: x.storage.raw.advanced(by: (o * dim + start) * inner * es), byteCount: p * inner * es)
            }
            start += p
            return y
        }
    }
}

/// Slice: starts/ends/axes as attributes (before opset 10) or inputs with steps (10+), any element type.
struct SliceOp: Operator {
    let fail: NodeFailure
    let attributes: (starts: [Int], ends: [Int], axes: [Int]?)?

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        if s.opset < 10, let st = s.ints("starts"), let en = s.ints("ends") { attributes = (st, en, s.ints("axes")) } else { attributes = nil }
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        func ints(_ i: Int) -> [Int]? { i < inputs.count ? inputs[i]?.int64s().map { Int(clamping: $0) } : nil }
        let starts = try attributes?.starts ?? ints(1) ?? { throw fail.invalid("Slice needs starts") }()
        let ends = try attributes?.ends ?? ints(2) ?? { throw fail.invalid("Slice needs ends") }()
        let axes = attributes.map { $0.axes } ?? ints(3)
        let steps = attributes == nil ? ints(4) : nil
        let ax = try (axes ?? Array(0..<starts.count)).map { try normalizedAxis($0, rank: x.rank, fail) }
        guard starts.count == ends.count, ax.count == starts.count, steps == nil || steps!.count == starts.count else {
            throw fail.invalid("starts, ends, axes and steps differ in length")
        }
        var picks = x.shape.map { Array(0..<$0) }
        for (k, a) in ax.enumerated() { picks[a] = sliceIndices(dim: x.shape[a], start: starts[k], end: ends[k], step: steps?[k] ?? 1) }
        let out = picks.map(\.count)
        let y = ctx.alloc(x.dtype, out)
        let sx = strides(of: x.shape)
        copyElements(from: x, to: y) { d, c in picks[d][c] * sx[d] }
        return [y]
    }
}

/// Gather along `axis` with int32/int64 indices (negative ones count from the end), any element type.
struct GatherOp: Operator {
    let fail: NodeFailure
    let axis: Int

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        axis = s.int("axis", 0)
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail), idx = try inputs.required(1, fail)
        let a = try normalizedAxis(axis, rank: x.rank, fail)
        let dim = x.shape[a]
        let indices = try idx.int64s().map { v -> Int in
            let i = Int(v) < 0 ? Int(v) + dim : Int(v)
            guard i >= 0 && i < dim else { throw fail.invalid("index \(v) out of range for dimension \(dim)") }
            return i
        }
        let out = Array(x.shape[..<a]) + idx.shape + Array(x.shape[(a + 1)...])
        let y = ctx.alloc(x.dtype, out)
        let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *) * x.dtype.byteSize!
        for o in 0..<outer {
            for (k, i) in indices.enumerated() {
                y.storage.raw.advanced(by: (o * indices.count + k) * inner).copyMemory(from: x.storage.raw.advanced(by: (o * dim + i) * inner), byteCount: inner)
            }
        }
        return [y]
    }
}

/// Shape (with start/end from opset 15) and ConstantOfShape.
struct ShapeOp: Operator {
    let fail: NodeFailure
    let opType: String
    let start: Int, end: Int?
    let fill: Tensor

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        opType = s.node.opType
        start = s.int("start", 0)
        end = s.node.int("end").map { Int($0) }
        fill = s.node.tensor("value") ?? Tensor(floats: [0], shape: [1])
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        if opType == "Shape" {
            let r = x.rank
            let s = min(max(start < 0 ? start + r : start, 0), r), e = min(max((end ?? r) < 0 ? (end ?? r) + r : (end ?? r), 0), r)
            let dims = s < e ? x.shape[s..<e].map { Int64($0) } : []
            return [RTensor.from(int64s: dims, shape: [dims.count])]
        }
        let shape = x.int64s().map { Int($0) }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw fail.invalid("negative dimension in \(shape)") }
        let v = RTensor(fill)
        let y = RTensor(dtype: v.dtype, shape: shape)
        let es = v.dtype.byteSize!
        for i in 0..<y.count { y.storage.raw.advanced(by: i * es).copyMemory(from: v.storage.raw, byteCount: es) }
        return [y]
    }
}

/// Pad: constant, edge, reflect and wrap modes; pads as attribute (before opset 11) or input, optional axes (18).
struct PadOp: Operator {
    let fail: NodeFailure
    let mode: String
    let padsAttribute: [Int]?
    let valueAttribute: Float

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        mode = s.node.string("mode") ?? "constant"
        padsAttribute = s.ints(s.opset < 2 ? "paddings" : "pads")
        valueAttribute = s.float("value", 0)
        guard ["constant", "edge", "reflect", "wrap"].contains(mode) else { throw s.unsupported("mode '\(mode)'") }
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        let r = x.rank
        var pads = [Int](repeating: 0, count: 2 * r)
        let given = padsAttribute ?? (inputs.count > 1 ? inputs[1]?.int64s().map { Int($0) } : nil) ?? []
        let axes = try (inputs.count > 3 ? inputs[3]?.int64s().map { try normalizedAxis(Int($0), rank: r, fail) } : nil) ?? Array(0..<r)
        guard given.count == 2 * axes.count else { throw fail.invalid("pads \(given) do not match \(axes.count) axes") }
        for (k, a) in axes.enumerated() { pads[a] = given[k]; pads[a + r] = given[k + axes.count] }
        let value = padsAttribute == nil ? (inputs.count > 2 ? inputs[2]?.doubles().first : nil) ?? 0 : Double(valueAttribute)
        let out = (0..<r).map { x.shape[$0] + pads[$0] + pads[$0 + r] }
        guard out.allSatisfy({ $0 >= 0 }) else { throw fail.invalid("pads \(given) make a negative dimension") }
        if mode == "constant" && x.dtype == .float && r > 0 && pads.allSatisfy({ $0 >= 0 }) {
            return [padConstantFloat(x, pads: pads, out: out, value: Float(value), ctx)]
        }
        let v = x.doubles()
        let sx = strides(of: x.shape), so = strides(of: out)
        var res = [Double](repeating: value, count: out.reduce(1, *))
        for i in 0..<res.count {
            var rem = i, off = 0, inside = true
            for d in 0..<r {
                let c = rem / so[d]; rem %= so[d]
                var j = c - pads[d]
                let n = x.shape[d]
                if j < 0 || j >= n {
                    switch mode {
                    case "edge": j = min(max(j, 0), n - 1)
                    case "reflect":
                        if n == 1 { j = 0 } else {
                            let period = 2 * (n - 1)
                            j = ((j % period) + period) % period
                            if j >= n { j = period - j }
                        }
                    case "wrap": j = ((j % n) + n) % n
                    default: inside = false
                    }
                }
                off += j * sx[d]
            }
            if inside && x.count > 0 { res[i] = v[off] }
        }
        return [RTensor.from(doubles: res, dtype: x.dtype, shape: out)]
    }
}

/// Constant padding of a float tensor with non-negative pads: fill, then copy each innermost row.
func padConstantFloat(_ x: RTensor, pads: [Int], out: [Int], value: Float, _ ctx: ExecutionContext) -> RTensor {
    let r = x.rank
    let y = ctx.alloc(.float, out)
    y.f.initialize(repeating: value, count: y.count)
    let inner = x.shape[r - 1]
    let rows = x.count / max(1, inner)
    let so = strides(of: out), sx = strides(of: x.shape)
    for row in 0..<rows {
        var rem = row * inner, off = pads[r - 1]
        for d in 0..<(r - 1) { let c = rem / sx[d]; rem %= sx[d]; off += (c + pads[d]) * so[d] }
        (y.f + off).update(from: x.f + row * inner, count: inner)
    }
    return y
}

/// Cast between numeric types (exporters put it in shape arithmetic). Floats become integers by truncation
/// toward zero, anything nonzero becomes true.
struct CastOp: Operator {
    let fail: NodeFailure
    let to: DType

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        guard let code = s.node.int("to"), let t = DType(rawValue: Int32(code)), t.byteSize != nil, t != .complex64, t != .complex128 else {
            throw s.unsupported("'to' must be a numeric type")
        }
        to = t
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        if x.dtype == to { return [x] }
        guard x.dtype.byteSize != nil, x.dtype != .string else { throw fail.unsupported("casting from \(x.dtype)") }
        return [RTensor.from(doubles: x.doubles(), dtype: to, shape: x.shape)]
    }
}
