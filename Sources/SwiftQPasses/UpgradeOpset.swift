import SwiftQCore

/// Models below opset 13 are rewritten to opset 13, where DequantizeLinear takes a per-channel `axis`: the
/// attributes that became inputs (Squeeze/Unsqueeze axes, Split sizes, Clip bounds, Pad amounts, Slice
/// ranges, Reshape shape, Dropout ratio) move into initializers, and Softmax-family nodes are checked to mean
/// the same under the opset-13 definition. Any other node is the same in both opsets for the forms swiftq runs.
///
/// With a later `target` (21: DequantizeLinear of INT4 weights) the changes up to it are made too: from opset 18
/// the Reduce ops take `axes` as an input and a Split without sizes names its `num_outputs`; from 20 GridSample
/// spells its modes linear and cubic.
public struct UpgradeOpset: Pass {
    public let name = "upgrade-opset"
    public let target: Int64
    public init(target: Int64 = 13) { self.target = target }

    static let reduceOps: Set<String> = ["ReduceMax", "ReduceMin", "ReduceMean", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
                                         "ReduceLogSumExp", "ReduceSumSquare"]

    public func patches(_ model: Model) throws -> [Patch] {
        let from = model.opset
        let target = self.target
        guard from > 0, from < target else { return [] }
        let g = model.graph
        var edits: [Edit] = [.setOpset(target)]
        var names = FreshNames(g)
        func constant(_ base: String, _ t: Tensor) -> String {
            let name = names.make(base)
            edits.append(.addInitializer(Initializer(name: name, tensor: t)))
            return name
        }
        func ints(_ v: [Int64]) -> Tensor { Tensor(int64s: v, shape: [v.count]) }
        let facts = ShapeInference.run(model).facts
        for (i, n0) in g.nodes.enumerated() where n0.isDefaultDomain {
            var n = n0
            let base = n.name.isEmpty ? (n.outputs.first ?? "node") : n.name
            func move(_ attr: String, to position: Int, _ make: (AttributeValue) -> Tensor?) {
                guard let a = n.attribute(attr), let t = make(a) else { return }
                n.attributes.removeAll { $0.name == attr }
                while n.inputs.count < position { n.inputs.append("") }
                n.inputs.insert(constant("\(base)_\(attr)", t), at: position)
            }
            switch n.opType {
            case "Squeeze", "Unsqueeze":
                move("axes", to: 1) { if case .ints(let v) = $0 { ints(v) } else { nil } }
            case "Split":
                move("split", to: 1) { if case .ints(let v) = $0 { ints(v) } else { nil } }
            case "Clip" where from < 11:
                let lo = n.float("min"), hi = n.float("max")
                n.attributes.removeAll { $0.name == "min" || $0.name == "max" }
                n.inputs = [n.inputs[0], lo.map { constant("\(base)_min", Tensor(floats: [$0], shape: [])) } ?? "",
                            hi.map { constant("\(base)_max", Tensor(floats: [$0], shape: [])) } ?? ""]
                while n.inputs.last == "" { n.inputs.removeLast() }
            case "Pad" where from < 11:
                let value = n.float("value") ?? 0
                move("pads", to: 1) { if case .ints(let v) = $0 { ints(v) } else { nil } }
                n.attributes.removeAll { $0.name == "value" }
                if value != 0 { n.inputs.insert(constant("\(base)_value", Tensor(floats: [value], shape: [])), at: 2) }
            case "Slice" where from < 10:
                let starts = n.ints("starts") ?? [], ends = n.ints("ends") ?? [], axes = n.ints("axes")
                n.attributes.removeAll { ["starts", "ends", "axes"].contains($0.name) }
                n.inputs = [n.inputs[0], constant("\(base)_starts", ints(starts)), constant("\(base)_ends", ints(ends))]
                    + (axes.map { [constant("\(base)_axes", ints($0))] } ?? [])
            case "Reshape" where from < 5:
                move("shape", to: 1) { if case .ints(let v) = $0 { ints(v) } else { nil } }
            case "Dropout" where from < 12:
                let ratio = n.float("ratio")
                n.attributes.removeAll { $0.name == "ratio" || $0.name == "is_test" }
                if let ratio { n.inputs = [n.inputs[0], constant("\(base)_ratio", Tensor(floats: [ratio], shape: []))] }
            case "BatchNormalization" where from < 13:
                n.attributes.removeAll { $0.name == "spatial" || $0.name == "is_test" || $0.name == "momentum" && from < 7 }
            case "Softmax", "LogSoftmax", "Hardmax":
                // (A `where` after a list of patterns binds to the last one only: the opset test is inside.)
                guard from < 13 else { break }
                // Before 13 the input is seen as 2-D [d0·…·d(axis−1), rest]; from 13 on, one axis. Both agree when
                // every dimension after the axis is 1, or the axis is the last one.
                let axis = Int(n.int("axis") ?? 1)
                guard let shape = n.input(0).flatMap({ facts[$0]?.shape }) else {
                    throw PassError.cannotUpgrade(node: n.displayName, opType: n.opType, opset: target, why: "the input's rank is unknown")
                }
                let a = axis < 0 ? axis + shape.count : axis
                guard a >= 0, a < shape.count, shape[(a + 1)...].allSatisfy({ $0 == .value(1) }) else {
                    throw PassError.cannotUpgrade(node: n.displayName, opType: n.opType, opset: target, why: "axis \(axis) of a rank-\(shape.count) input has other dimensions after it")
                }
                n.attributes.removeAll { $0.name == "axis" }
                n.attributes.append(Attribute(name: "axis", value: .int(Int64(a))))
            default:
                break
            }
            if from < 18 && target >= 18 {
                if UpgradeOpset.reduceOps.contains(n.opType) {
                    move("axes", to: 1) { if case .ints(let v) = $0 { ints(v) } else { nil } }
                } else if n.opType == "Split" && n.input(1) == nil && n.attribute("num_outputs") == nil {
                    n.attributes.append(Attribute(name: "num_outputs", value: .int(Int64(n.outputs.count))))
                }
            }
            if from < 20 && target >= 20 && n.opType == "GridSample", case .string(let mode)? = n.attribute("mode") {
                let renamed = ["bilinear": "linear", "bicubic": "cubic"][mode] ?? mode
                n.attributes.removeAll { $0.name == "mode" }
                n.attributes.append(Attribute(name: "mode", value: .string(renamed)))
            }
            if n != n0 { edits.append(.replace(node: i, with: n)) }
        }
        let why = target >= 21 ? "INT4 weights need 21" : "per-channel DequantizeLinear needs 13"
        return [Patch("opset \(from) → \(target) (\(why))", edits)]
    }
}

/// Why a pass could not do its job on a model.
public enum PassError: Error, Equatable, CustomStringConvertible {
    case cannotUpgrade(node: String, opType: String, opset: Int64, why: String)

    public var description: String {
        switch self {
        case .cannotUpgrade(let n, let op, let opset, let why): "node '\(n)' (\(op)): cannot move to opset \(opset): \(why)"
        }
    }
}
