import SwiftQCore
import SwiftQPasses
import XCTest

final class DropIdentityTests: PassTestCase {
    func testIdentityChainAndDropoutWithUnreadMask() throws {
        let g = Graph(nodes: [
            Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["r"]),
            Node(name: "id1", opType: "Identity", inputs: ["r"], outputs: ["i1"]),
            Node(name: "id2", opType: "Identity", inputs: ["i1"], outputs: ["i2"]),
            Node(name: "drop", opType: "Dropout", inputs: ["i2"], outputs: ["d", "mask"]),
            Node(name: "sig", opType: "Sigmoid", inputs: ["d"], outputs: ["y"]),
        ], inputs: [input([2, 3])], outputs: [output()])
        let (m, log) = try rewrite(Model(opsetImports: [OpsetID(domain: "", version: 7)], graph: g), [DropIdentity()], input: [2, 3])
        XCTAssertEqual(opTypes(m), ["Relu", "Sigmoid"])
        XCTAssertEqual(log.count, 3)
    }

    func testIdentityProducingAGraphOutputKeepsTheName() throws {
        let g = Graph(nodes: [
            Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["r"]),
            Node(name: "id", opType: "Identity", inputs: ["r"], outputs: ["y"]),
        ], inputs: [input([4])], outputs: [output()])
        let (m, _) = try rewrite(Model(graph: g), [DropIdentity()], input: [4])
        XCTAssertEqual(opTypes(m), ["Relu"])
        XCTAssertEqual(m.graph.nodes[0].outputs, ["y"])
    }

    func testReadMaskKeepsDropout() throws {
        let g = Graph(nodes: [
            Node(name: "drop", opType: "Dropout", inputs: ["x"], outputs: ["d", "mask"]),
            Node(name: "cast", opType: "Cast", inputs: ["mask"], outputs: ["m"], attributes: [Attribute(name: "to", value: .int(1))]),
            Node(name: "add", opType: "Add", inputs: ["d", "m"], outputs: ["y"]),
        ], inputs: [input([3])], outputs: [output()])
        let (m, _) = try rewrite(Model(graph: g), [DropIdentity()], input: [3])
        XCTAssertTrue(opTypes(m).contains("Dropout"))
    }
}
