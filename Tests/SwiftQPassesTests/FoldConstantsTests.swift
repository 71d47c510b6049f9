import SwiftQCore
import SwiftQPasses
import XCTest

final class FoldConstantsTests: PassTestCase {
    /// The exporters' flatten: Shape → Gather(0) → Unsqueeze → Concat([n, -1]) → Reshape.
    func flattenChain(batch: Dim, opset: Int64) -> Model {
        let axesForm: [Attribute] = opset < 13 ? [Attribute(name: "axes", value: .ints([0]))] : []
        var inits = [Initializer(name: "zero", tensor: Tensor(int64s: [0], shape: [])),
                     Initializer(name: "minus1", tensor: Tensor(int64s: [-1], shape: [1]))]
        if opset >= 13 { inits.append(Initializer(name: "axes", tensor: Tensor(int64s: [0], shape: [1]))) }
        let g = Graph(nodes: [
            Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["r"]),
            Node(name: "shape", opType: "Shape", inputs: ["r"], outputs: ["s"]),
            Node(name: "gather", opType: "Gather", inputs: ["s", "zero"], outputs: ["n"], attributes: [Attribute(name: "axis", value: .int(0))]),
            Node(name: "unsq", opType: "Unsqueeze", inputs: opset < 13 ? ["n"] : ["n", "axes"], outputs: ["n1"], attributes: axesForm),
            Node(name: "cat", opType: "Concat", inputs: ["n1", "minus1"], outputs: ["shape2"], attributes: [Attribute(name: "axis", value: .int(0))]),
            Node(name: "reshape", opType: "Reshape", inputs: ["r", "shape2"], outputs: ["y"]),
        ], inputs: [ValueInfo(name: "x", dtype: .float, shape: [batch, .value(2), .value(3), .value(3)])], outputs: [output()], initializers: inits)
        return Model(opsetImports: [OpsetID(domain: "", version: opset)], graph: g)
    }

    func testStaticBatchFoldsToAConstantShape() throws {
        let (m, _) = try rewrite(flattenChain(batch: .value(1), opset: 12), [FoldConstants()], input: [1, 2, 3, 3])
        XCTAssertEqual(opTypes(m), ["Relu", "Reshape"])
        XCTAssertEqual(m.graph.initializerTable[m.graph.nodes[1].inputs[1]]?.int64s(), [1, -1])
    }

    func testSymbolicBatchBecomesFlatten() throws {
        let (m, _) = try rewrite(flattenChain(batch: .symbol("N"), opset: 13), [FoldConstants()], input: [1, 2, 3, 3])
        XCTAssertEqual(opTypes(m), ["Relu", "Flatten"])
    }

    func testConstantArithmeticIsComputed() throws {
        let g = Graph(nodes: [
            Node(name: "c", opType: "Constant", inputs: [], outputs: ["k"], attributes: [Attribute(name: "value", value: .tensor(Tensor(floats: [2, 3], shape: [2])))]),
            Node(name: "mul", opType: "Mul", inputs: ["k", "k"], outputs: ["k2"]),
            Node(name: "add", opType: "Add", inputs: ["x", "k2"], outputs: ["y"]),
        ], inputs: [input([3, 2])], outputs: [output()])
        let (m, _) = try rewrite(Model(graph: g), [FoldConstants()], input: [3, 2])
        XCTAssertEqual(opTypes(m), ["Add"])
        XCTAssertEqual(m.graph.initializerTable["k2"]?.floats(), [4, 9])
    }
}
