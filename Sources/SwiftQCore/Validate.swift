extension Graph {
    /// Node indices in an order where every node comes after the producers of its inputs; ties keep file order.
    /// Throws `ModelError.invalid` naming a node on a cycle or with an input nothing produces.
    public func topologicalOrder(path: String = "model") throws -> [Int] {
        var producer: [String: Int] = [:]
        for (i, n) in nodes.enumerated() {
            for o in n.outputs where !o.isEmpty {
                if producer[o] != nil {
                    throw ModelError.invalid(path: path, what: "value '\(o)' is produced twice (second time by node '\(n.displayName)')")
                }
                producer[o] = i
            }
        }
        let available = Set(inputs.map(\.name)).union(initializers.map(\.name))
        var pending = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            for input in n.inputs where !input.isEmpty {
                if let p = producer[input] {
                    pending[i] += 1
                    consumers[p].append(i)
                } else if !available.contains(input) {
                    throw ModelError.invalid(path: path, what: "node '\(n.displayName)' (\(n.opType)): input '\(input)' is not produced by any node, initializer or graph input")
                }
            }
        }
        // Kahn's algorithm over a min-heap of indices keeps the original order wherever it is already valid.
        var ready = Heap(nodes.indices.filter { pending[$0] == 0 })
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let i = ready.pop() {
            order.append(i)
            for c in consumers[i] {
                pending[c] -= 1
                if pending[c] == 0 { ready.push(c) }
            }
        }
        if order.count < nodes.count, let stuck = nodes.indices.first(where: { pending[$0] > 0 }) {
            throw ModelError.invalid(path: path, what: "the graph has a cycle through node '\(nodes[stuck].displayName)' (\(nodes[stuck].opType))")
        }
        return order
    }
}

extension Model {
    /// Checks what every later stage relies on: a non-empty graph, known operators in the default domain,
    /// every input produced, graph outputs defined, and no cycles.
    public func validate(path: String) throws {
        if graph.nodes.isEmpty && graph.outputs.isEmpty {
            throw ModelError.notONNX(path: path, reason: "the graph has no nodes and no outputs")
        }
        for n in graph.nodes {
            if n.opType.isEmpty { throw ModelError.invalid(path: path, what: "node '\(n.displayName)' has no op type") }
            if n.isDefaultDomain && !onnxStandardOperators.contains(n.opType) {
                throw ModelError.unknownOp(path: path, node: n.displayName, opType: n.opType, domain: n.domain)
            }
        }
        _ = try graph.topologicalOrder(path: path)
        let produced = Set(graph.nodes.flatMap(\.outputs)).union(graph.inputs.map(\.name)).union(graph.initializers.map(\.name))
        for o in graph.outputs where !produced.contains(o.name) {
            throw ModelError.invalid(path: path, what: "graph output '\(o.name)' is not produced by any node")
        }
    }
}

/// A binary min-heap of Ints.
struct Heap {
    private var a: [Int]
    init(_ items: [Int]) {
        a = []
        for i in items { push(i) }
    }
    mutating func push(_ x: Int) {
        a.append(x)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if a[p] <= a[i] { break }
            a.swapAt(p, i)
            i = p
        }
    }
    mutating func pop() -> Int? {
        guard let top = a.first else { return nil }
        let last = a.removeLast()
        if !a.isEmpty {
            a[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < a.count && a[l] < a[m] { m = l }
                if r < a.count && a[r] < a[m] { m = r }
                if m == i { break }
                a.swapAt(m, i)
                i = m
            }
        }
        return top
    }
}
