import SwiftQCore
import SwiftQPasses
import SwiftQRuntime
import TestSupport
import XCTest

/// Deterministic values and a before/after check shared by the pass tests.
class PassTestCase: XCTestCase {
    var values = SeededRandom(seed: 42)
    func random(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] { values.floats(n, lo, hi) }

    func input(_ shape: [Int]) -> ValueInfo { ValueInfo(name: "x", dtype: .float, shape: shape.map { .value($0) }) }
    func output(_ name: String = "y") -> ValueInfo { ValueInfo(name: name, dtype: .float, shape: nil) }
    func tensor(_ name: String, _ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> Initializer {
        Initializer(name: name, tensor: Tensor(floats: random(shape.reduce(1, *), lo, hi), shape: shape))
    }

    /// Applies `passes`, checks the float outputs are unchanged (unfused reference kernels, 1e-4 relative),
    /// and returns the rewritten model with its log.
    @discardableResult
    func rewrite(_ model: Model, _ passes: [any Pass], input shape: [Int], file: StaticString = #filePath, line: UInt = #line) throws -> (Model, [String]) {
        let (after, log) = try Rewriter(passes).run(model)
        let x = RTensor(floats: random(shape.reduce(1, *)), shape: shape)
        let options = Interpreter.Options(threads: 1, fuse: false, referenceOnly: true)
        let a = try Interpreter(model: model, options: options).run(["x": x])
        let b = try Interpreter(model: after, options: options).run(["x": x])
        for o in model.graph.outputs {
            let ya = a[o.name]!.floatArray(), yb = try XCTUnwrap(b[o.name], "output \(o.name) missing after the passes", file: file, line: line).floatArray()
            XCTAssertEqual(ya.count, yb.count, file: file, line: line)
            for i in ya.indices where abs(ya[i] - yb[i]) > 1e-4 * max(1, abs(ya[i])) {
                XCTFail("\(o.name)[\(i)]: before \(ya[i]) after \(yb[i])", file: file, line: line)
                break
            }
        }
        return (after, log)
    }

    func opTypes(_ m: Model) -> [String] { m.graph.nodes.map(\.opType) }
}
