import SwiftQCore
import SwiftQRuntime
import TestSupport
import XCTest

/// The runtime's build-time folds (Pad into Conv, BatchNormalization and Relu/Clip into Conv, Constant nodes
/// as initializers) must leave the outputs unchanged and really remove the folded nodes.
final class FusionTests: XCTestCase {
    var values = SeededRandom(seed: 42)
    func random(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] { values.floats(n, lo, hi) }

    func input(_ c: Int, _ h: Int, _ w: Int) -> ValueInfo { ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(c), .value(h), .value(w)]) }

    /// Runs the model with and without fusion; returns the number of steps each executes.
    func compare(_ model: Model, _ x: [Float], _ shape: [Int], file: StaticString = #filePath, line: UInt = #line) throws -> (fused: Int, plain: Int) {
        var on = Interpreter.Options(threads: 1), off = Interpreter.Options(threads: 1, fuse: false)
        on.profile = true
        off.profile = true
        let a = try Interpreter(model: model, options: on), b = try Interpreter(model: model, options: off)
        let feed = ["x": RTensor(floats: x, shape: shape)]
        let ya = try a.run(feed).values.first!.floatArray(), yb = try b.run(feed).values.first!.floatArray()
        XCTAssertEqual(ya.count, yb.count, file: file, line: line)
        for i in ya.indices where abs(ya[i] - yb[i]) > 1e-4 * max(1, abs(yb[i])) {
            XCTFail("output \(i): fused \(ya[i]) vs unfused \(yb[i])", file: file, line: line)
            break
        }
        return (a.nodeProfile.count, b.nodeProfile.count)
    }

    func testConvBatchNormClipFromConstantNodes() throws {
        let c = 3, m = 4
        let nodes = [
            Node(name: "w", opType: "Constant", inputs: [], outputs: ["w"], attributes: [Attribute(name: "value", value: .tensor(Tensor(floats: random(m * c * 9), shape: [m, c, 3, 3])))]),
            Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "bn", opType: "BatchNormalization", inputs: ["c", "s", "b", "mean", "var"], outputs: ["n"]),
            Node(name: "clip", opType: "Clip", inputs: ["n", "lo", "hi"], outputs: ["y"]),
        ]
        let inits = [
            Initializer(name: "s", tensor: Tensor(floats: random(m, 0.5, 2), shape: [m])),
            Initializer(name: "b", tensor: Tensor(floats: random(m), shape: [m])),
            Initializer(name: "mean", tensor: Tensor(floats: random(m), shape: [m])),
            Initializer(name: "var", tensor: Tensor(floats: random(m, 0.1, 2), shape: [m])),
            Initializer(name: "lo", tensor: Tensor(floats: [0], shape: [])),
            Initializer(name: "hi", tensor: Tensor(floats: [0.5], shape: [])),
        ]
        let g = Graph(nodes: nodes, inputs: [input(c, 6, 7)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: inits)
        let (fused, plain) = try compare(Model(graph: g), random(c * 42), [1, c, 6, 7])
        XCTAssertEqual(fused, 1, "Conv+BN+Clip should run as one step")
        XCTAssertEqual(plain, 3)
    }

    func testPadFoldsIntoConvInBothForms() throws {
        let c = 2, m = 3
        let w = Initializer(name: "w", tensor: Tensor(floats: random(m * c * 9), shape: [m, c, 3, 3]))
        // Opset 13: pads as an input; asymmetric, added to the Conv's own pads.
        let pads = Initializer(name: "pads", tensor: Tensor(int64s: [0, 0, 0, 1, 0, 0, 1, 2], shape: [8]))
        let g13 = Graph(nodes: [
            Node(name: "pad", opType: "Pad", inputs: ["x", "pads"], outputs: ["p"]),
            Node(name: "conv", opType: "Conv", inputs: ["p", "w"], outputs: ["y"], attributes: [Attribute(name: "pads", value: .ints([1, 0, 0, 1])),
                                                                                                   Attribute(name: "strides", value: .ints([2, 2]))]),
        ], inputs: [input(c, 9, 8)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: [w, pads])
        var r = try compare(Model(graph: g13), random(c * 72), [1, c, 9, 8])
        XCTAssertEqual(r.fused, 1)
        XCTAssertEqual(r.plain, 2)
        // Opset 10: pads as an attribute.
        let g10 = Graph(nodes: [
            Node(name: "pad", opType: "Pad", inputs: ["x"], outputs: ["p"], attributes: [Attribute(name: "pads", value: .ints([0, 0, 2, 1, 0, 0, 0, 1]))]),
            Node(name: "conv", opType: "Conv", inputs: ["p", "w"], outputs: ["y"]),
        ], inputs: [input(c, 9, 8)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: [w])
        r = try compare(Model(opsetImports: [OpsetID(domain: "", version: 10)], graph: g10), random(c * 72), [1, c, 9, 8])
        XCTAssertEqual(r.fused, 1)
        // A non-zero pad value must not fold.
        let g13v = Graph(nodes: [
            Node(name: "pad", opType: "Pad", inputs: ["x", "pads", "v"], outputs: ["p"]),
            Node(name: "conv", opType: "Conv", inputs: ["p", "w"], outputs: ["y"]),
        ], inputs: [input(c, 9, 8)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
           initializers: [w, pads, Initializer(name: "v", tensor: Tensor(floats: [0.5], shape: []))])
        r = try compare(Model(graph: g13v), random(c * 72), [1, c, 9, 8])
        XCTAssertEqual(r.fused, 2)
    }
}
