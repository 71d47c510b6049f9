import SwiftQCore
import SwiftQRuntime
import TestSupport
import XCTest

/// The tensor buffer pool: the most recently released buffer that fits is reused whatever size it was made
/// for (so a node writes into memory that is still in cache), never one more than three times the size asked for,
/// and a run's unused buffers are freed at its end, so repeated runs do not grow it.
final class BufferPoolTests: XCTestCase {
    func testTakesTheMostRecentFit() {
        let pool = BufferPool()
        let a = pool.take(bytes: 1000), b = pool.take(bytes: 1000), big = pool.take(bytes: 10_000)
        pool.give(a)
        pool.give(big)
        pool.give(b)
        XCTAssertTrue(pool.take(bytes: 600) === b, "the last released buffer that fits")
        XCTAssertTrue(pool.take(bytes: 600) === a, "the big one is more than three times the size asked for")
        XCTAssertTrue(pool.take(bytes: 5000) === big)
        let fresh = pool.take(bytes: 64)
        XCTAssertFalse(fresh === a || fresh === b || fresh === big)
        // Three times the request (rounded to 64 bytes) is the limit: 3008 bytes serve 1003 (1024 asked), not 900 (960).
        let c = pool.take(bytes: 3000)
        pool.give(c)
        XCTAssertFalse(pool.take(bytes: 900) === c)
        XCTAssertTrue(pool.take(bytes: 1003) === c)
    }

    func testEndRunFreesWhatTheRunDidNotUse() {
        let pool = BufferPool()
        let a = pool.take(bytes: 4096), b = pool.take(bytes: 64)
        pool.endRun()
        pool.give(a)
        pool.give(b)
        _ = pool.take(bytes: 4096)
        XCTAssertEqual(pool.freeBytes, 64)
        pool.endRun()
        XCTAssertEqual(pool.freeBytes, 0, "b was not taken during the run: freed")
    }

    /// A chain of convolutions of different output sizes, run repeatedly: the same outputs every time, and the
    /// pool holds the same bytes after every run once the first has sized it.
    func testRepeatedRunsReuseWithoutGrowth() throws {
        var rng = SeededRandom(seed: 7)
        var nodes: [Node] = [], inits: [Initializer] = []
        var c = 3, name = "x"
        for (i, m) in [16, 48, 8, 24, 4].enumerated() {
            inits.append(Initializer(name: "w\(i)", tensor: Tensor(floats: rng.floats(m * c * 9, -0.3, 0.3), shape: [m, c, 3, 3])))
            nodes.append(Node(name: "conv\(i)", opType: "Conv", inputs: [name, "w\(i)"], outputs: ["y\(i)"],
                              attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]))
            name = "y\(i)"
            c = m
        }
        let g = Graph(nodes: nodes, inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(3), .value(20), .value(20)])],
                      outputs: [ValueInfo(name: name, dtype: .float, shape: nil)], initializers: inits)
        let interpreter = try Interpreter(model: Model(graph: g), options: Interpreter.Options(threads: 1))
        let feed = ["x": RTensor(floats: rng.floats(3 * 400, -1, 1), shape: [1, 3, 20, 20])]
        let first = try interpreter.run(feed)[name]!.floatArray()
        var held: [Int] = []
        for _ in 0..<4 {
            XCTAssertEqual(try interpreter.run(feed)[name]!.floatArray(), first)
            held.append(interpreter.context.pool.freeBytes)
        }
        XCTAssertGreaterThan(held[0], 0)
        XCTAssertEqual(Set(held).count, 1, "pool bytes after each run: \(held)")
    }
}
