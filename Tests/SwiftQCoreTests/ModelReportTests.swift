import SwiftQCore
import XCTest

final class ModelReportTests: XCTestCase {
    func testMacsParametersAndRoles() {
        let nodes = [
            Graphs.conv("conv", "x", "w", "c", attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["r"], outputs: ["g"]),
            Node(name: "flat", opType: "Flatten", inputs: ["g"], outputs: ["f"]),
            Node(name: "fc", opType: "Gemm", inputs: ["f", "fw"], outputs: ["y"], attributes: [Attribute(name: "transB", value: .int(1))]),
            Node(name: "sm", opType: "Softmax", inputs: ["y"], outputs: ["p"]),
            Node(name: "mm", opType: "MatMul", inputs: ["f", "f2"], outputs: ["z"]),
        ]
        let m = Graphs.model(nodes, inputs: [Graphs.input("x", [.symbol("N"), .value(3), .value(10), .value(10)])], outputs: ["p", "z"],
                             initializers: [Graphs.weight("w", [8, 3, 3, 3]), Graphs.weight("fw", [5, 8])])
        var withF2 = m
        withF2.graph.inputs.append(Graphs.input("f2", [.value(8), .value(4)]))
        let r = ModelReport(model: withF2)
        // conv: 8 out channels x 10 x 10 positions x 27; gemm: 5 x 8; matmul on a non-constant weight: 4 x 8.
        XCTAssertEqual(r.macs, 8 * 100 * 27 + 40 + 32)
        XCTAssertEqual(r.parameters, 8 * 27 + 40)
        XCTAssertEqual(r.parameterBytes, 4 * (8 * 27 + 40))
        XCTAssertEqual(r.quantizable.filter { $0.role == .weighted }.map(\.node), ["conv", "fc"])
        XCTAssertEqual(r.quantizable.filter { $0.role == .activation }.map(\.node), ["relu", "gap", "flat"])
        XCTAssertEqual(r.ops.first?.count, 1)
    }

    func testShapeArithmeticIsNotQuantizable() {
        let nodes = [
            Node(name: "shape", opType: "Shape", inputs: ["x"], outputs: ["s"]),
            Node(name: "unsq", opType: "Unsqueeze", inputs: ["s"], outputs: ["s1"], attributes: [Attribute(name: "axes", value: .ints([0]))]),
            Node(name: "cat", opType: "Concat", inputs: ["s1", "s1"], outputs: ["c"], attributes: [Attribute(name: "axis", value: .int(0))]),
            Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["r"]),
        ]
        let m = Graphs.model(nodes, inputs: [Graphs.input("x", [.value(1), .value(3)])], outputs: ["c", "r"], opset: 11)
        XCTAssertEqual(ModelReport(model: m).quantizable.map(\.node), ["relu"])
    }

    func testDynamicSpatialDimensionsLeaveMacsUnknownUntilFixed() {
        let m = Graphs.model([Graphs.conv("conv", "x", "w", "c")], inputs: [Graphs.input("x", [.value(1), .value(3), .symbol("H"), .symbol("W")])],
                             outputs: ["c"], initializers: [Graphs.weight("w", [2, 3, 1, 1])])
        XCTAssertNil(ModelReport(model: m).macs)
        XCTAssertEqual(ModelReport(model: m).uncountedNodes, ["conv"])
        XCTAssertEqual(ModelReport(model: m, inputShapes: ["x": [1, 3, 4, 5]]).macs, 2 * 20 * 3)
    }
}
