import Dispatch
import Foundation
import SwiftQCore
import SwiftQRuntime
import TestSupport
import XCTest

/// Interpreters made with `init(sharingWeightsOf:)` share constants and packed weights but nothing they write.
final class SharingTests: XCTestCase {
    /// Two of them, each on its own thread, run at the same time on their own inputs (a 5x5 Conv, which unfolds its
    /// input into the operator's scratch, then a 1x1 one): every run gives what the original gives alone.
    func testSharingInterpretersRunSideBySide() throws {
        var values = SeededRandom(seed: 7)
        let c = 16, m = 16, h = 48, w = 48
        let nodes = [
            Node(name: "conv5", opType: "Conv", inputs: ["x", "w5", "b5"], outputs: ["a"], attributes: [Attribute(name: "pads", value: .ints([2, 2, 2, 2]))]),
            Node(name: "conv1", opType: "Conv", inputs: ["a", "w1"], outputs: ["y"]),
        ]
        let inits = [
            Initializer(name: "w5", tensor: Tensor(floats: values.floats(m * c * 25), shape: [m, c, 5, 5])),
            Initializer(name: "b5", tensor: Tensor(floats: values.floats(m), shape: [m])),
            Initializer(name: "w1", tensor: Tensor(floats: values.floats(m * m), shape: [m, m, 1, 1])),
        ]
        let input = ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(c), .value(h), .value(w)])
        let g = Graph(nodes: nodes, inputs: [input], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: inits)
        let original = try Interpreter(model: Model(graph: g), options: .init(threads: 1))
        let inputs = (0..<2).map { _ in values.floats(c * h * w) }
        let want = try inputs.map { try original.run(["x": RTensor(floats: $0, shape: [1, c, h, w])])["y"]!.floatArray() }
        let copies = (0..<2).map { _ in Interpreter(sharingWeightsOf: original, threads: 1) }
        let wrong = Tally()
        DispatchQueue.concurrentPerform(iterations: 2) { k in
            for _ in 0..<40 {
                let y = try? copies[k].run(["x": RTensor(floats: inputs[k], shape: [1, c, h, w])])["y"]?.floatArray()
                if y != want[k] { wrong.add(k) }
            }
        }
        XCTAssertEqual(wrong.counts, [0, 0], "runs that differed from the original's, per copy")
    }
}

/// Counts per copy, added to from several threads.
private final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var counts = [0, 0]

    func add(_ k: Int) {
        lock.lock()
        counts[k] += 1
        lock.unlock()
    }
}
