import SwiftQCore

/// Identity and inference-time Dropout (its mask output unread) pass their input through: readers of the output
/// read the input instead and the node disappears.
public struct DropIdentity: Pass {
    public let name = "drop-identity"
    public init() {}

    public func patches(_ model: Model) throws -> [Patch] {
        let g = model.graph
        let outputs = Set(g.outputs.map(\.name))
        let inputs = Set(g.inputs.map(\.name)).union(g.initializers.map(\.name))
        let consumers = g.consumers()
        var result: [Patch] = []
        for (i, n) in g.nodes.enumerated() where (n.opType == "Identity" || n.opType == "Dropout") && n.isDefaultDomain {
            // Dropout's mask output must be unread.
            let maskUnread = n.outputs.dropFirst().allSatisfy { $0.isEmpty || (consumers[$0] == nil && !outputs.contains($0)) }
            guard let x = n.input(0), let y = n.outputs.first, !y.isEmpty, maskUnread else { continue }
            // A graph input passed straight to a graph output needs the node.
            if outputs.contains(y) && inputs.contains(x) { continue }
            result.append(Patch("\(n.opType) '\(n.displayName)' removed", [.remove(node: i), .rewire(from: y, to: x)]))
        }
        return result
    }
}
