import SwiftQCore

/// Small graphs for tests, built in code.
enum Graphs {
    static func conv(_ name: String, _ x: String, _ w: String, _ y: String, attributes: [Attribute] = []) -> Node {
        Node(name: name, opType: "Conv", inputs: [x, w], outputs: [y], attributes: attributes)
    }

    static func weight(_ name: String, _ shape: [Int]) -> Initializer {
        Initializer(name: name, tensor: Tensor(floats: [Float](repeating: 0.5, count: shape.reduce(1, *)), shape: shape))
    }

    static func model(_ nodes: [Node], inputs: [ValueInfo], outputs: [String], initializers: [Initializer] = [], opset: Int64 = 13) -> Model {
        Model(opsetImports: [OpsetID(domain: "", version: opset)],
              graph: Graph(name: "g", nodes: nodes, inputs: inputs, outputs: outputs.map { ValueInfo(name: $0, type: nil) },
                           initializers: initializers))
    }

    static func input(_ name: String, _ dims: [Dim]) -> ValueInfo { ValueInfo(name: name, dtype: .float, shape: dims) }
}
