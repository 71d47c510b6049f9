import SwiftQCore
import SwiftQPasses
import XCTest

final class UpgradeOpsetTests: PassTestCase {
    func testAttributesBecomeInputs() throws {
        let g = Graph(nodes: [
            Node(name: "clip", opType: "Clip", inputs: ["x"], outputs: ["c"], attributes: [Attribute(name: "min", value: .float(-0.5)), Attribute(name: "max", value: .float(0.6))]),
            Node(name: "unsq", opType: "Unsqueeze", inputs: ["c"], outputs: ["u"], attributes: [Attribute(name: "axes", value: .ints([0]))]),
            Node(name: "sq", opType: "Squeeze", inputs: ["u"], outputs: ["s"], attributes: [Attribute(name: "axes", value: .ints([0]))]),
            Node(name: "pad", opType: "Pad", inputs: ["s"], outputs: ["p"], attributes: [Attribute(name: "pads", value: .ints([0, 1, 0, 2])), Attribute(name: "value", value: .float(0.25))]),
            Node(name: "split", opType: "Split", inputs: ["p"], outputs: ["a", "b"], attributes: [Attribute(name: "axis", value: .int(1)), Attribute(name: "split", value: .ints([2, 5]))]),
            Node(name: "sm", opType: "Softmax", inputs: ["b"], outputs: ["y"], attributes: [Attribute(name: "axis", value: .int(1))]),
        ], inputs: [input([3, 4])], outputs: [output()])
        let (m, _) = try rewrite(Model(opsetImports: [OpsetID(domain: "", version: 7)], graph: g), [UpgradeOpset()], input: [3, 4])
        XCTAssertEqual(m.opset, 13)
        XCTAssertTrue(m.graph.nodes.allSatisfy { n in !n.attributes.contains { ["min", "max", "axes", "pads", "split", "value"].contains($0.name) } })
    }

    func testSoftmaxOverAnInnerAxisCannotMove() throws {
        let g = Graph(nodes: [Node(name: "sm", opType: "Softmax", inputs: ["x"], outputs: ["y"], attributes: [Attribute(name: "axis", value: .int(1))])],
                      inputs: [input([2, 3, 4])], outputs: [output()])
        XCTAssertThrowsError(try Rewriter([UpgradeOpset()]).run(Model(opsetImports: [OpsetID(domain: "", version: 11)], graph: g)))
        // Trailing dimensions of 1 (classifier heads) mean the same in both opsets.
        let g1 = Graph(nodes: g.nodes, inputs: [input([2, 3, 1, 1])], outputs: [output()])
        let (m, _) = try rewrite(Model(opsetImports: [OpsetID(domain: "", version: 11)], graph: g1), [UpgradeOpset()], input: [2, 3, 1, 1])
        XCTAssertEqual(m.opset, 13)
    }

    /// To opset 21 (INT4 weights) from 17: Reduce ops take their axes as an input from 18, a Split without sizes names
    /// its output count, and a Softmax over an inner axis (already one-axis since 13) stays as it is; outputs unchanged.
    func testUpgradeTo21() throws {
        let g = Graph(nodes: [
            Node(name: "sm", opType: "Softmax", inputs: ["x"], outputs: ["s"], attributes: [Attribute(name: "axis", value: .int(1))]),
            Node(name: "split", opType: "Split", inputs: ["s"], outputs: ["a", "b"], attributes: [Attribute(name: "axis", value: .int(2))]),
            Node(name: "mean", opType: "ReduceMean", inputs: ["a"], outputs: ["m"], attributes: [Attribute(name: "axes", value: .ints([2, 3]))]),
            Node(name: "max", opType: "ReduceMax", inputs: ["b"], outputs: ["n"], attributes: [Attribute(name: "axes", value: .ints([3]))]),
            Node(name: "add", opType: "Add", inputs: ["m", "n"], outputs: ["y"]),
        ], inputs: [input([1, 3, 4, 5])], outputs: [output()])
        let (m, _) = try rewrite(Model(opsetImports: [OpsetID(domain: "", version: 17)], graph: g), [UpgradeOpset(target: 21)], input: [1, 3, 4, 5])
        XCTAssertEqual(m.opset, 21)
        let byName = Dictionary(uniqueKeysWithValues: m.graph.nodes.map { ($0.name, $0) })
        XCTAssertEqual(byName["mean"]?.inputs.count, 2)
        XCTAssertNil(byName["mean"]?.attribute("axes"))
        XCTAssertEqual(byName["max"]?.inputs.count, 2)
        XCTAssertEqual(byName["split"]?.int("num_outputs"), 2)
        XCTAssertEqual(byName["sm"]?.int("axis"), 1)
    }
}
