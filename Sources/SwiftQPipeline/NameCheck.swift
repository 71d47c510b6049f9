import SwiftQCore
import SwiftQQuantize

extension PreparedModel {
    /// Refuses a name in `options.exclude` or `options.nodeWeightBits` that does not take effect on this model, with
    /// one line saying why: a name no node, output or op type has (with the closest node name, when one is close),
    /// a node swiftq's rewrites removed (with the nearest layer before it, the one to name instead), and for
    /// weight bits a node without weights or one kept float. An op type passes where no node has it when swiftq
    /// quantizes that op or the model had it before the rewrites (one exclude list serves many models).
    /// `QuantizationJob.calibrated` calls it before calibrating; callers of `prepare` and `quantize` call it
    /// themselves. `path` names the model.
    public func checkNames(_ options: QuantizeOptions, path: String) throws {
        let g = model.graph
        var byName: [String: Int] = [:]
        for (i, n) in g.nodes.enumerated() {
            byName[n.reportName] = byName[n.reportName] ?? i
            if !n.name.isEmpty { byName[n.name] = byName[n.name] ?? i }
            for o in n.outputs where !o.isEmpty { byName[o] = byName[o] ?? i }
        }
        let opTypes = Set((g.nodes + original.graph.nodes).map(\.opType))
        func unknown(_ flag: String, _ name: String) -> PipelineError {
            let what = "\(path): \(flag) '\(name)'"
            let og = original.graph
            if let k = og.nodes.firstIndex(where: { $0.name == name || $0.outputs.contains(name) }) {
                var line = "\(what): swiftq's rewrites remove that \(og.nodes[k].opType) node (folded into or merged with a neighbour)"
                if let before = nearestSurvivor(before: k) { line += "; the nearest layer before it is '\(before)'" }
                return PipelineError(line)
            }
            var line = "\(what) names no node, output or op type of the model"
            if let close = closest(to: name, among: g.nodes.map(\.reportName)) { line += " (did you mean '\(close)'?)" }
            return PipelineError(line)
        }
        for name in options.exclude.sorted() where byName[name] == nil && !opTypes.contains(name) && opQuantizers[name] == nil {
            throw unknown("--exclude", name)
        }
        for name in options.nodeWeightBits.keys.sorted() {
            guard let i = byName[name] else { throw unknown("--bits", name) }
            let n = g.nodes[i]
            guard opQuantizers[n.opType] == .weighted else {
                throw PipelineError("\(path): --bits '\(name)': node '\(n.reportName)' is a \(n.opType) node, which has no weights")
            }
            if let why = plan.float[i] {
                throw PipelineError("\(path): --bits '\(name)': node '\(n.reportName)' (\(n.opType)) stays float (\(why)), so it has no weight bits")
            }
        }
    }

    /// The nearest node before original node `k` (walking back through first inputs) that the rewritten model
    /// still has, by its report name.
    private func nearestSurvivor(before k: Int) -> String? {
        let og = original.graph
        var producer: [String: Int] = [:]
        for (i, n) in og.nodes.enumerated() { for o in n.outputs { producer[o] = i } }
        let kept = Set(model.graph.nodes.map(\.reportName))
        var at = k
        for _ in 0..<og.nodes.count {
            guard let input = og.nodes[at].inputs.first, let p = producer[input] else { return nil }
            if kept.contains(og.nodes[p].reportName) { return og.nodes[p].reportName }
            at = p
        }
        return nil
    }
}

/// The candidate closest to `name` by edit distance, when it is within a third of the name's length (a typo, not
/// another name).
func closest(to name: String, among candidates: [String]) -> String? {
    let a = Array(name.lowercased())
    func distance(_ s: String) -> Int {
        let b = Array(s.lowercased())
        var row = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var diagonal = row[0]
            row[0] = i + 1
            for (j, cb) in b.enumerated() {
                let up = row[j + 1]
                row[j + 1] = min(up + 1, row[j] + 1, diagonal + (ca == cb ? 0 : 1))
                diagonal = up
            }
        }
        return row[b.count]
    }
    var best: (name: String, distance: Int)?
    for c in Set(candidates) where !c.isEmpty {
        let d = distance(c)
        if best == nil || d < best!.distance || (d == best!.distance && c < best!.name) { best = (c, d) }
    }
    guard let best, best.distance > 0, best.distance <= max(1, a.count / 3) else { return nil }
    return best.name
}
