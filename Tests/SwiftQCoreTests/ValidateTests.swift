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
}
