import SwiftQCore

/// Exporters spell HardSigmoid and HardSwish out in elementwise ops (paddle2onnx, older PyTorch and Keras
/// exports): `Clip(x + 3, 0, 6) / 6` is HardSigmoid(x; 1/6, 0.5), and `x · Clip(x + 3, 0, 6) / 6` (in either
/// order of the Mul and the Div, the Div possibly a Mul by 1/6) and `x · HardSigmoid(x; 1/6, 0.5)` are HardSwish(x).
/// As one op each is one activation with one output range to quantize (and one lookup table in the integer
/// runtime) instead of four rounded intermediates. HardSwish needs opset 14: a model at 13 moves up (nothing
/// swiftq runs differs between 13 and 14); one below 13 keeps Mul(x, HardSigmoid(x)).
public struct FuseSpelledActivations: Pass {
    public let name = "fuse-spelled-activations"
    public init() {}

    public func patches(_ model: Model) throws -> [Patch] {
        let g = model.graph
        let inits = g.initializerTable
        let consumers = g.consumers()
        let producers = g.producers()
        let outputs = Set(g.outputs.map(\.name))
        func scalar(_ name: String?) -> Float? {
            guard let name, let t = inits[name], t.dtype.isFloatingPoint, t.elementCount == 1 else { return nil }
            return t.floats()[0]
        }
        /// The node producing `name` when `name` has exactly that one reader and is not a graph output.
        func soleProducer(_ name: String, _ op: String) -> (Int, Node)? {
            guard let p = producers[name], g.nodes[p].opType == op, g.nodes[p].isDefaultDomain, !outputs.contains(name),
                  consumers[name]?.count == 1 else { return nil }
            return (p, g.nodes[p])
        }
        /// The other operand of a binary node when one operand is the constant `value` (within float rounding).
        func other(_ n: Node, constant value: Float, commutes: Bool) -> String? {
            guard n.inputs.count == 2 else { return nil }
            if let v = scalar(n.inputs[1]), abs(v - value) <= 1e-6 * abs(value) { return n.inputs[0] }
            if commutes, let v = scalar(n.inputs[0]), abs(v - value) <= 1e-6 * abs(value) { return n.inputs[1] }
            return nil
        }
        /// `Clip(x + 3, 0, 6)`, private to its reader: x and the nodes.
        func relu6Shifted(_ name: String) -> (x: String, nodes: [Int])? {
            guard let (ci, clip) = soleProducer(name, "Clip"), let lo = scalar(clip.input(1)) ?? clip.float("min"), lo == 0,
                  let hi = scalar(clip.input(2)) ?? clip.float("max"), hi == 6,
                  let (ai, add) = soleProducer(clip.inputs[0], "Add"), let x = other(add, constant: 3, commutes: true) else { return nil }
            return (x, [ci, ai])
        }
        /// `v / 6` or `v · (1/6)`: v.
        func sixth(_ n: Node) -> String? {
            if n.opType == "Div" { return other(n, constant: 6, commutes: false) }
            if n.opType == "Mul" { return other(n, constant: 1 / 6, commutes: true) }
            return nil
        }
        let canSwish = model.opset >= 13
        var result: [Patch] = []
        var used = Set<Int>()
        func take(_ ids: [Int]) -> Bool {
            guard ids.allSatisfy({ !used.contains($0) }) else { return false }
            used.formUnion(ids)
            return true
        }
        for (i, n) in g.nodes.enumerated() where n.isDefaultDomain && !used.contains(i) {
            let y = n.outputs.first ?? ""
            // x · Clip(x + 3, 0, 6) / 6, the Div last.
            if canSwish, let v = sixth(n), let (mi, mul) = soleProducer(v, "Mul"), mul.inputs.count == 2 {
                for (xk, ck) in [(0, 1), (1, 0)] {
                    guard let r = relu6Shifted(mul.inputs[ck]), r.x == mul.inputs[xk], take([i, mi] + r.nodes) else { continue }
                    result.append(swish(r.x, y, name: n.name, removing: [mi] + r.nodes, at: i, opset: model.opset))
                    break
                }
                if used.contains(i) { continue }
            }
            // Clip(x + 3, 0, 6) / 6: HardSigmoid (the next round makes x · HardSigmoid(x) HardSwish).
            if let v = sixth(n), let r = relu6Shifted(v) {
                guard take([i] + r.nodes) else { continue }
                let hs = Node(name: n.name, opType: "HardSigmoid", inputs: [r.x], outputs: [y],
                              attributes: [Attribute(name: "alpha", value: .float(1 / 6)), Attribute(name: "beta", value: .float(0.5))])
                result.append(Patch("Clip(x + 3, 0, 6) / 6 at '\(n.displayName)' is HardSigmoid", r.nodes.map { .remove(node: $0) } + [.replace(node: i, with: hs)]))
                continue
            }
            // x · HardSigmoid(x; 1/6, 0.5) (PyTorch exports before opset 14).
            if canSwish, n.opType == "Mul", n.inputs.count == 2 {
                for k in 0..<2 {
                    guard let (hi, h) = soleProducer(n.inputs[k], "HardSigmoid"), h.inputs.first == n.inputs[1 - k],
                          abs((h.float("alpha") ?? 0.2) - 1 / 6) < 1e-6, (h.float("beta") ?? 0.5) == 0.5, take([i, hi]) else { continue }
                    result.append(swish(n.inputs[1 - k], y, name: n.name, removing: [hi], at: i, opset: model.opset))
                    break
                }
            }
        }
        return result
    }

    private func swish(_ x: String, _ y: String, name: String, removing: [Int], at i: Int, opset: Int64) -> Patch {
        let node = Node(name: name, opType: "HardSwish", inputs: [x], outputs: [y])
        return Patch("x · Clip(x + 3, 0, 6) / 6 at '\(name.isEmpty ? y : name)' is HardSwish",
                     removing.map { .remove(node: $0) } + [.replace(node: i, with: node)] + (opset < 14 ? [.setOpset(14)] : []))
    }
}

/// Div by a constant becomes Mul by its reciprocal, and Sub of a constant becomes Add of its negation: ONNX
/// Runtime runs Mul and Add on int8 (QLinearMul, QLinearAdd) but not Div and Sub. The reciprocal differs from
/// the division by at most one rounding of float32.
public struct ConstantDivToMul: Pass {
    public let name = "div-to-mul"
    public init() {}

    public func patches(_ model: Model) throws -> [Patch] {
        let g = model.graph
        let inits = g.initializerTable
        var names = FreshNames(g)
        var result: [Patch] = []
        for (i, n) in g.nodes.enumerated() where n.isDefaultDomain && (n.opType == "Div" || n.opType == "Sub") && n.inputs.count == 2 {
            guard let c = inits[n.inputs[1]], c.dtype == .float, inits[n.inputs[0]] == nil, c.elementCount <= 1 << 16 else { continue }
            let v = c.floats()
            if n.opType == "Div" && v.contains(where: { $0 == 0 || !$0.isFinite || !(1 / $0).isFinite }) { continue }
            let name = names.make("\(n.inputs[1])_\(n.opType == "Div" ? "reciprocal" : "negated")")
            var m = n
            m.opType = n.opType == "Div" ? "Mul" : "Add"
            m.inputs[1] = name
            let t = Tensor(floats: v.map { n.opType == "Div" ? 1 / $0 : -$0 }, shape: c.shape)
            result.append(Patch("\(n.opType) '\(n.displayName)' by a constant is \(m.opType) by its \(n.opType == "Div" ? "reciprocal" : "negation")",
                                [.addInitializer(Initializer(name: name, tensor: t)), .replace(node: i, with: m)]))
        }
        return result
    }
}
