import SwiftQCore
import XCTest

final class ShapeInferenceTests: XCTestCase {
    func facts(_ m: Model, _ name: String, shapes: [String: [Int]] = [:]) -> ValueFacts? {
        let (f, problems) = ShapeInference.run(m, inputShapes: shapes)
        XCTAssertEqual(problems, [])
        return f[name]
    }

    func testConvStridePadDilationGroup() {
        let node = Graphs.conv("c", "x", "w", "y", attributes: [
            Attribute(name: "strides", value: .ints([2, 2])), Attribute(name: "pads", value: .ints([1, 1, 1, 1])),
            Attribute(name: "dilations", value: .ints([2, 1])), Attribute(name: "group", value: .int(4)),
        ])
        let m = Graphs.model([node], inputs: [Graphs.input("x", [.symbol("N"), .value(8), .value(15), .value(16)])], outputs: ["y"],
                             initializers: [Graphs.weight("w", [12, 2, 3, 3])])
        // H: (15 + 2 - (2*2+1)) / 2 + 1 = 7; W: (16 + 2 - 3) / 2 + 1 = 8.
        XCTAssertEqual(facts(m, "y")?.shape, [.symbol("N"), .value(12), .value(7), .value(8)])
    }

    func testConvAutoPadSame() {
        let node = Graphs.conv("c", "x", "w", "y", attributes: [
            Attribute(name: "strides", value: .ints([2, 2])), Attribute(name: "auto_pad", value: .string("SAME_UPPER")),
        ])
        let m = Graphs.model([node], inputs: [Graphs.input("x", [.value(1), .value(3), .value(7), .value(8)])], outputs: ["y"],
                             initializers: [Graphs.weight("w", [4, 3, 3, 3])])
        XCTAssertEqual(facts(m, "y")?.concreteShape, [1, 4, 4, 4])
        let a = try! WindowAttributes(node: node, spatialRank: 2, kernel: [3, 3])
        XCTAssertEqual(a.resolvedPads(input: [7, 8]), [1, 0, 1, 1])
    }

    func testChannelMismatchIsAProblemNamingTheNode() {
        let m = Graphs.model([Graphs.conv("bad_conv", "x", "w", "y")], inputs: [Graphs.input("x", [.value(1), .value(5), .value(8), .value(8)])],
                             outputs: ["y"], initializers: [Graphs.weight("w", [4, 3, 3, 3])])
        let (_, problems) = ShapeInference.run(m)
        XCTAssertEqual(problems.count, 1)
        XCTAssertTrue(problems.first?.description.contains("bad_conv") ?? false)
    }

    func testPoolCeilModeDropsWindowStartingInPadding() {
        let pool = Node(name: "p", opType: "MaxPool", inputs: ["x"], outputs: ["y"], attributes: [
            Attribute(name: "kernel_shape", value: .ints([3, 3])), Attribute(name: "strides", value: .ints([2, 2])),
            Attribute(name: "ceil_mode", value: .int(1)),
        ])
        let m = Graphs.model([pool], inputs: [Graphs.input("x", [.value(1), .value(2), .value(112), .value(113)])], outputs: ["y"])
        // floor mode would give 55 and 56; ceil mode gives 56 and 56.
        XCTAssertEqual(facts(m, "y")?.concreteShape, [1, 2, 56, 56])
    }

    func testShapeGatherConcatReshapeKeepsSymbolicBatch() {
        let nodes = [
            Node(name: "shape", opType: "Shape", inputs: ["x"], outputs: ["s"]),
            Node(name: "gather", opType: "Gather", inputs: ["s", "zero"], outputs: ["n"], attributes: [Attribute(name: "axis", value: .int(0))]),
            Node(name: "unsq", opType: "Unsqueeze", inputs: ["n"], outputs: ["n1"], attributes: [Attribute(name: "axes", value: .ints([0]))]),
            Node(name: "cat", opType: "Concat", inputs: ["n1", "minus1"], outputs: ["target"], attributes: [Attribute(name: "axis", value: .int(0))]),
            Node(name: "reshape", opType: "Reshape", inputs: ["x", "target"], outputs: ["y"]),
        ]
        let m = Graphs.model(nodes, inputs: [Graphs.input("x", [.symbol("batch"), .value(1280), .value(1), .value(1)])], outputs: ["y"],
                             initializers: [Initializer(name: "zero", tensor: Tensor(int64s: [0], shape: [])),
                                            Initializer(name: "minus1", tensor: Tensor(int64s: [-1], shape: [1]))], opset: 11)
        XCTAssertEqual(facts(m, "target")?.values, [.symbol("batch"), .value(-1)])
        XCTAssertEqual(facts(m, "y")?.shape, [.symbol("batch"), .value(1280)])
        XCTAssertEqual(facts(m, "y", shapes: ["x": [4, 1280, 1, 1]])?.shape, [.value(4), .value(1280)])
    }

    func testGemmMatMulFlattenSliceTranspose() {
        let nodes = [
            Node(name: "flat", opType: "Flatten", inputs: ["x"], outputs: ["f"]),
            Node(name: "gemm", opType: "Gemm", inputs: ["f", "w"], outputs: ["g"], attributes: [Attribute(name: "transB", value: .int(1))]),
            Node(name: "mm", opType: "MatMul", inputs: ["b3", "m2"], outputs: ["mm"]),
            Node(name: "slice", opType: "Slice", inputs: ["x", "starts", "ends", "axes", "steps"], outputs: ["sl"]),
            Node(name: "tr", opType: "Transpose", inputs: ["x"], outputs: ["t"], attributes: [Attribute(name: "perm", value: .ints([0, 2, 3, 1]))]),
        ]
        let m = Graphs.model(nodes, inputs: [Graphs.input("x", [.value(2), .value(3), .value(4), .value(5)]),
                                              Graphs.input("b3", [.value(7), .value(2), .value(6)])],
                             outputs: ["g", "mm", "sl", "t"],
                             initializers: [Graphs.weight("w", [10, 60]), Graphs.weight("m2", [6, 9]),
                                            Initializer(name: "starts", tensor: Tensor(int64s: [-1, 0], shape: [2])),
                                            Initializer(name: "ends", tensor: Tensor(int64s: [-100, 100], shape: [2])),
                                            Initializer(name: "axes", tensor: Tensor(int64s: [3, 1], shape: [2])),
                                            Initializer(name: "steps", tensor: Tensor(int64s: [-2, 2], shape: [2]))])
        XCTAssertEqual(facts(m, "f")?.concreteShape, [2, 60])
        XCTAssertEqual(facts(m, "g")?.concreteShape, [2, 10])
        XCTAssertEqual(facts(m, "mm")?.concreteShape, [7, 2, 9])
        XCTAssertEqual(facts(m, "sl")?.concreteShape, [2, 2, 4, 3])
        XCTAssertEqual(facts(m, "t")?.concreteShape, [2, 4, 5, 3])
    }

    func testSliceIndicesFollowOnnxClamping() {
        XCTAssertEqual(sliceIndices(dim: 5, start: -1, end: -100, step: -2), [4, 2, 0])
        XCTAssertEqual(sliceIndices(dim: 5, start: 1, end: Int.max, step: 1), [1, 2, 3, 4])
        XCTAssertEqual(sliceIndices(dim: 5, start: 10, end: 20, step: 1), [])
    }
}
