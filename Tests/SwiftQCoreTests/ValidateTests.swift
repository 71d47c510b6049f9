import SwiftQCore
import XCTest

final class ValidateTests: XCTestCase {
    let x = Graphs.input("x", [.value(1)])

    func testTopologicalOrderPutsProducersFirst() throws {
        let nodes = [
            Node(name: "b", opType: "Relu", inputs: ["a"], outputs: ["b"]),
            Node(name: "a", opType: "Relu", inputs: ["x"], outputs: ["a"]),
            Node(name: "c", opType: "Add", inputs: ["a", "b"], outputs: ["c"]),
        ]
        XCTAssertEqual(try Graph(nodes: nodes, inputs: [x]).topologicalOrder(), [1, 0, 2])
    }

    func testCycleDanglingInputAndUnknownOpAreErrors() {
        let cycle = Graphs.model([Node(name: "n1", opType: "Relu", inputs: ["b"], outputs: ["a"]),
                                  Node(name: "n2", opType: "Relu", inputs: ["a"], outputs: ["b"])], inputs: [x], outputs: ["b"])
        XCTAssertThrowsError(try cycle.validate(path: "m.onnx")) { XCTAssertTrue("\($0)".contains("cycle")) }
        let dangling = Graphs.model([Node(name: "n", opType: "Relu", inputs: ["nowhere"], outputs: ["y"])], inputs: [x], outputs: ["y"])
        XCTAssertThrowsError(try dangling.validate(path: "m.onnx")) { XCTAssertTrue("\($0)".contains("'nowhere'")) }
        let unknown = Graphs.model([Node(name: "n", opType: "Frobnicate", inputs: ["x"], outputs: ["y"])], inputs: [x], outputs: ["y"])
        XCTAssertThrowsError(try unknown.validate(path: "m.onnx")) {
            XCTAssertEqual($0 as? ModelError, .unknownOp(path: "m.onnx", node: "n", opType: "Frobnicate", domain: ""))
        }
        let custom = Graphs.model([Node(name: "n", opType: "Frobnicate", domain: "com.example", inputs: ["x"], outputs: ["y"])], inputs: [x], outputs: ["y"])
        XCTAssertNoThrow(try custom.validate(path: "m.onnx"))
        let twice = Graphs.model([Node(name: "n1", opType: "Relu", inputs: ["x"], outputs: ["y"]),
                                  Node(name: "n2", opType: "Relu", inputs: ["x"], outputs: ["y"])], inputs: [x], outputs: ["y"])
        XCTAssertThrowsError(try twice.validate(path: "m.onnx")) { XCTAssertTrue("\($0)".contains("produced twice")) }
    }

    /// What every job checks before work: each failure names the file and node, input or tensor.
    func testChecksBeforeRunning() throws {
        let input = Graphs.input("x", [.value(1), .value(3), .value(8), .value(8)])
        func conv(_ attributes: [Attribute], weight: [Int] = [4, 3, 3, 3]) -> Model {
            Graphs.model([Graphs.conv("c", "x", "w", "y", attributes: attributes)], inputs: [input], outputs: ["y"],
                         initializers: [Graphs.weight("w", weight)])
        }
        func message(_ m: Model) -> String {
            do { try m.checkRunnable(path: "m.onnx") } catch { return "\(error)" }
            return "accepted"
        }
        XCTAssertEqual(message(conv([])), "accepted")
        XCTAssertEqual(message(conv([Attribute(name: "kernel_shape", value: .ints([3, 3])), Attribute(name: "pads", value: .ints([1, 1, 1, 1]))])), "accepted")
        XCTAssertEqual(message(conv([Attribute(name: "kernel_shape", value: .string("3x3"))])),
                       "m.onnx: invalid model: node 'c' (Conv): attribute 'kernel_shape' must be a list of integers, not a string")
        XCTAssertTrue(message(conv([Attribute(name: "kernel_shape", value: .ints([5, 5]))])).contains("does not match weight 'w' of shape [4, 3, 3, 3]"))
        XCTAssertTrue(message(conv([Attribute(name: "pads", value: .ints([1, 1, 1]))])).contains("'pads' has 3 values; 4 expected"))
        XCTAssertTrue(message(conv([Attribute(name: "strides", value: .ints([0, 1]))])).contains("'strides' [0, 1] must be positive"))
        XCTAssertTrue(message(conv([Attribute(name: "group", value: .int(3))])).contains("'group' 3 does not divide the 4 output channels"))
        XCTAssertTrue(message(conv([Attribute(name: "group", value: .float(1))])).contains("'group' must be an integer, not a float"))
        var future = conv([])
        future.opsetImports = [OpsetID(domain: "", version: 99)]
        XCTAssertTrue(message(future).contains("opset 99 is newer than swiftq knows"))
        var noOutputs = conv([])
        noOutputs.graph.outputs = []
        XCTAssertTrue(message(noOutputs).contains("no outputs"))
        var custom = conv([])
        custom.graph.nodes[0].domain = "com.example"
        XCTAssertTrue(message(custom).contains("node 'c' (com.example:Conv): operators of domain 'com.example'"))
    }

    func testTensorSizesAreBoundedBeforeAllocation() throws {
        let input = Graphs.input("x", [.value(1), .value(3), .symbol("H"), .symbol("W")])
        let m = Graphs.model([Graphs.conv("c", "x", "w", "y")], inputs: [input], outputs: ["y"], initializers: [Graphs.weight("w", [64, 3, 1, 1])])
        XCTAssertNoThrow(try m.checkTensorSizes(path: "m.onnx", inputShapes: ["x": [1, 3, 64, 64]], maxElements: 64 * 64 * 64))
        XCTAssertThrowsError(try m.checkTensorSizes(path: "m.onnx", inputShapes: ["x": [1, 3, 64, 65]], maxElements: 64 * 64 * 64)) {
            XCTAssertEqual("\($0)", "m.onnx: invalid model: tensor 'y' (output of node 'c' (Conv)) would hold 1x64x64x65 = 266240 values, more than the limit of 262144 (--max-tensor-elements)")
        }
        XCTAssertThrowsError(try m.checkTensorSizes(path: "m.onnx", inputShapes: ["x": [1, 3, 100_000, 100_000]])) {
            XCTAssertTrue("\($0)".hasPrefix("m.onnx: invalid model: input 'x' would hold 1x3x100000x100000 = 30000000000 values"), "\($0)")
        }
    }
}
