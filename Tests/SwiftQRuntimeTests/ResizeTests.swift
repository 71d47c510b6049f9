import SwiftQCore
import SwiftQRuntime
import TestSupport
import XCTest

/// Nearest Resize's fast path (planes split between threads, repeated rows copied) against the reference gather:
/// upsampling by 2, 3 and 8, a downsampling and a non-integer scale, on 1 and 5 planes of a batch of 2.
final class ResizeNearestTests: XCTestCase {
    var values = SeededRandom(seed: 11)

    func testFastEqualsReference() throws {
        let cases: [(h: Int, w: Int, scales: [Float])] = [(5, 6, [2, 2]), (4, 7, [3, 3]), (3, 3, [8, 8]), (9, 8, [0.5, 0.5]), (5, 6, [1.5, 2.5])]
        for (i, t) in cases.enumerated() {
            for planes in [1, 5] {
                let s = Tensor(floats: [1, 1] + t.scales, shape: [4])
                let g = Graph(nodes: [Node(name: "r", opType: "Resize", inputs: ["x", "", "s"], outputs: ["y"],
                                           attributes: [Attribute(name: "mode", value: .string("nearest")),
                                                        Attribute(name: "coordinate_transformation_mode", value: .string("asymmetric")),
                                                        Attribute(name: "nearest_mode", value: .string("floor"))])],
                              inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(2), .value(planes), .value(t.h), .value(t.w)])],
                              outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: [Initializer(name: "s", tensor: s)])
                let model = Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g)
                let feed = ["x": RTensor(floats: values.floats(2 * planes * t.h * t.w, -1, 1), shape: [2, planes, t.h, t.w])]
                let fast = try Interpreter(model: model, options: .init(threads: 2)).run(feed)["y"]!
                let reference = try Interpreter(model: model, options: .init(threads: 1, referenceOnly: true)).run(feed)["y"]!
                XCTAssertEqual(fast.shape, reference.shape, "case \(i) planes \(planes)")
                XCTAssertEqual(fast.floatArray(), reference.floatArray(), "case \(i) planes \(planes)")
            }
        }
    }
}
