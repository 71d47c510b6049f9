import SwiftQCore

/// Expand (numpy broadcast to a shape given as an input) and Tile (repeats per axis), any element type.
struct ExpandTileOp: Operator {
    let fail: NodeFailure
    let tile: Bool

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        tile = s.node.opType == "Tile"
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        let given = try inputs.required(1, fail).int64s().map { Int(clamping: $0) }
        if tile {
            guard given.count == x.rank, given.allSatisfy({ $0 >= 0 }) else {
                throw fail.invalid("repeats \(given) must be \(x.rank) non-negative values")
            }
            let out = try checkedShape(zip(x.shape, given).map { d, r in d.multipliedReportingOverflow(by: r).overflow ? -1 : d * r }, fail)
            let y = ctx.alloc(x.dtype, out)
            let sx = strides(of: x.shape)
            copyElements(from: x, to: y) { d, c in (c % x.shape[d]) * sx[d] }
            return [y]
        }
        guard let out = broadcastShapes(x.shape, given) else { throw fail.invalid("shape \(x.shape) does not broadcast to \(given)") }
        let y = ctx.alloc(x.dtype, try checkedShape(out, fail))
        let sx = broadcastStrides(x.shape, to: out)
        copyElements(from: x, to: y) { d, c in c * sx[d] }
        return [y]
    }
}

/// Range(start, limit, delta): ⌈(limit − start) / delta⌉ values start, start + delta, …, in the inputs' type.
struct RangeOp: Operator {
    let fail: NodeFailure

    init(_ s: OperatorSetup) throws { fail = NodeFailure(s) }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let t = try (0..<3).map { try inputs.required($0, fail) }
        guard t.allSatisfy({ $0.count == 1 && $0.dtype == t[0].dtype }) else { throw fail.invalid("start, limit and delta must be scalars of one type") }
        let (start, limit, delta) = (t[0].doubles()[0], t[1].doubles()[0], t[2].doubles()[0])
        guard delta != 0, (limit - start) / delta < Double(Model.defaultMaxTensorElements) else {
            throw fail.invalid("Range(\(start), \(limit), \(delta)) has no end or more than \(Model.defaultMaxTensorElements) values")
        }
        let n = max(0, Int(((limit - start) / delta).rounded(.up)))
        if t[0].dtype == .float {
            let s = Float(start), d = Float(delta)
            return [RTensor(floats: (0..<n).map { s + Float($0) * d }, shape: [n])]
        }
        return [RTensor.from(doubles: (0..<n).map { start + Double($0) * delta }, dtype: t[0].dtype, shape: [n])]
    }
}

/// DepthToSpace (DCR and CRD modes) and SpaceToDepth on NCHW tensors, any element type.
struct DepthSpaceOp: Operator {
    let fail: NodeFailure
    let toSpace: Bool
    let block: Int
    let crd: Bool

    init(_ s: OperatorSetup) throws {
        fail = NodeFailure(s)
        toSpace = s.node.opType == "DepthToSpace"
        block = s.int("blocksize", 0)
        crd = s.node.string("mode") == "CRD"
        guard block > 0 && block <= 4096 else { throw s.invalid("blocksize \(block) must be in 1...4096") }
    }

    func run(_ inputs: [RTensor?], _ ctx: ExecutionContext) throws -> [RTensor] {
        let x = try inputs.required(0, fail)
        guard x.rank == 4 else { throw fail.invalid("needs a rank-4 NCHW input, got \(x.shape)") }
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), b = block
        let sx = strides(of: x.shape)
        if toSpace {
            guard c % (b * b) == 0 else { throw fail.invalid("\(c) channels are not a multiple of blocksize² = \(b * b)") }
            let oc = c / (b * b)
            let y = ctx.alloc(x.dtype, try checkedShape([n, oc, h * b, w * b], fail))
            copyElements(from: x, to: y) { d, k in
                switch d {
                case 0: k * sx[0]
                case 1: (crd ? k * b * b : k) * sx[1]
                case 2: k / b * sx[2] + (k % b) * (crd ? b : b * oc) * sx[1]
                default: k / b * sx[3] + (k % b) * (crd ? 1 : oc) * sx[1]
                }
            }
            return [y]
        }
        guard h % b == 0, w % b == 0 else { throw fail.invalid("height \(h) and width \(w) must be multiples of blocksize \(b)") }
        let y = ctx.alloc(x.dtype, [n, c * b * b, h / b, w / b])
        copyElements(from: x, to: y) { d, k in
            switch d {
            case 0: k * sx[0]
            case 1: (k % c) * sx[1] + (k / c / b) * sx[2] + (k / c % b) * sx[3]
            case 2: k * b * sx[2]
            default: k * b * sx[3]
            }
        }
        return [y]
    }
}
