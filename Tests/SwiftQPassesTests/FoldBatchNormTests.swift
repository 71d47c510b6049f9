import SwiftQCore
import SwiftQPasses
import XCTest

final class FoldBatchNormTests: PassTestCase {
    func bn(_ x: String, _ y: String, _ c: Int) -> (Node, [Initializer]) {
        (Node(name: "bn_\(y)", opType: "BatchNormalization", inputs: [x, "\(y)_s", "\(y)_b", "\(y)_m", "\(y)_v"], outputs: [y],
              attributes: [Attribute(name: "epsilon", value: .float(1e-3))]),
         [tensor("\(y)_s", [c], 0.5, 2), tensor("\(y)_b", [c]), tensor("\(y)_m", [c]), tensor("\(y)_v", [c], 0.1, 2)])
    }

    func testConvWithAndWithoutBias() throws {
        let (b1, i1) = bn("c1", "n1", 4), (b2, i2) = bn("c2", "y", 5)
        let g = Graph(nodes: [
            Node(name: "conv1", opType: "Conv", inputs: ["x", "w1", "bias1"], outputs: ["c1"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            b1,
            Node(name: "conv2", opType: "Conv", inputs: ["n1", "w2"], outputs: ["c2"], attributes: [Attribute(name: "group", value: .int(1))]),
            b2,
        ], inputs: [input([1, 3, 5, 6])], outputs: [output()], initializers: [tensor("w1", [4, 3, 3, 3]), tensor("bias1", [4]), tensor("w2", [5, 4, 1, 1])] + i1 + i2)
        let (m, log) = try rewrite(Model(graph: g), [FoldBatchNorm()], input: [1, 3, 5, 6])
        XCTAssertEqual(opTypes(m), ["Conv", "Conv"])
        XCTAssertEqual(log.count, 2)
    }

    func testGemmBothLayoutsAndDepthwise() throws {
        for transB in [0, 1] {
            let (b, inits) = bn("g", "y", 6)
            let wShape = transB == 1 ? [6, 8] : [8, 6]
            let g = Graph(nodes: [
                Node(name: "gemm", opType: "Gemm", inputs: ["x", "w", "c"], outputs: ["g"],
                     attributes: [Attribute(name: "transB", value: .int(Int64(transB))), Attribute(name: "alpha", value: .float(0.7)), Attribute(name: "beta", value: .float(1.3))]),
                b,
            ], inputs: [input([2, 8])], outputs: [output()], initializers: [tensor("w", wShape), tensor("c", [6])] + inits)
            let (m, _) = try rewrite(Model(graph: g), [FoldBatchNorm()], input: [2, 8])
            XCTAssertEqual(opTypes(m), ["Gemm"], "transB \(transB)")
        }
        let (b, inits) = bn("c", "y", 4)
        let g = Graph(nodes: [
            Node(name: "dw", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: [Attribute(name: "group", value: .int(4))]),
            b,
        ], inputs: [input([1, 4, 5, 5])], outputs: [output()], initializers: [tensor("w", [4, 1, 3, 3])] + inits)
        XCTAssertEqual(opTypes(try rewrite(Model(graph: g), [FoldBatchNorm()], input: [1, 4, 5, 5]).0), ["Conv"])
    }

    func testConvTransposeWithGroups() throws {
        let (b, inits) = bn("c", "y", 6)
        let g = Graph(nodes: [
            Node(name: "up", opType: "ConvTranspose", inputs: ["x", "w"], outputs: ["c"],
                 attributes: [Attribute(name: "group", value: .int(2)), Attribute(name: "strides", value: .ints([2, 2]))]),
            b,
        ], inputs: [input([1, 4, 3, 3])], outputs: [output()], initializers: [tensor("w", [4, 3, 2, 2])] + inits)
        XCTAssertEqual(opTypes(try rewrite(Model(graph: g), [FoldBatchNorm()], input: [1, 4, 3, 3]).0), ["ConvTranspose"])
    }

    func testSharedConvOutputIsLeftAlone() throws {
        let (b, inits) = bn("c", "n", 2)
        let g = Graph(nodes: [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"]),
            b,
            Node(name: "add", opType: "Add", inputs: ["n", "c"], outputs: ["y"]),
        ], inputs: [input([1, 2, 4, 4])], outputs: [output()], initializers: [tensor("w", [2, 2, 1, 1])] + inits)
        let (m, log) = try rewrite(Model(graph: g), [FoldBatchNorm()], input: [1, 2, 4, 4])
        XCTAssertEqual(opTypes(m), ["Conv", "BatchNormalization", "Add"])
        XCTAssertTrue(log.isEmpty)
    }
}

final class FoldPadIntoConvTests: PassTestCase {
    func testAsymmetricPadMovesIntoTheConv() throws {
        let g = Graph(nodes: [
            Node(name: "pad", opType: "Pad", inputs: ["x", "pads"], outputs: ["p"]),
            Node(name: "conv", opType: "Conv", inputs: ["p", "w"], outputs: ["y"], attributes: [Attribute(name: "strides", value: .ints([2, 2]))]),
        ], inputs: [input([1, 2, 7, 8])], outputs: [output()],
           initializers: [Initializer(name: "pads", tensor: Tensor(int64s: [0, 0, 0, 1, 0, 0, 1, 2], shape: [8])), tensor("w", [3, 2, 3, 3])])
        let (m, _) = try rewrite(Model(graph: g), [FoldPadIntoConv()], input: [1, 2, 7, 8])
        XCTAssertEqual(opTypes(m), ["Conv"])
        XCTAssertEqual(m.graph.nodes[0].ints("pads"), [0, 1, 1, 2])
    }
}
