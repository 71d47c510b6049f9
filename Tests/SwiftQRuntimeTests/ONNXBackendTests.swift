import Foundation
import SwiftQCore
import SwiftQONNX
import SwiftQRuntime
import TestSupport
import XCTest

/// The ONNX project's own backend tests (../shared/onnx-tests): every node case whose operators the float
/// runtime implements, and every real architecture, with the ONNX runner's tolerances (rtol 1e-3, atol 1e-7;
/// integers exact). Both the fast kernels and the reference kernels must pass, and static shape inference must
/// agree with every output shape it claims to know.
final class ONNXBackendTests: XCTestCase {
    /// Operators that belong to the integer runtime, or that swiftq does not run: cases using them are skipped.
    static let skippedOps: [String: String] = [
        "SplitToSequence": "sequence types are outside swiftq's CNN op set",
    ]

    struct Outcome { var passed = 0; var failed: [String] = []; var skipped: [String] = [] }

    func runCase(_ dir: String, reference: Bool) throws -> String? {
        let model = try ONNXReader.read(path: "\(dir)/model.onnx")
        let interpreter = try Interpreter(model: model, options: .init(threads: 2, referenceOnly: reference))
        let data = "\(dir)/test_data_set_0"
        let files = try FileManager.default.contentsOfDirectory(atPath: data)
        var feeds: [String: RTensor] = [:]
        let inputs = model.graph.dataInputs.map(\.name)
        for i in 0..<files.filter({ $0.hasPrefix("input_") }).count {
            let (name, t) = try ONNXReader.readTensor(path: "\(data)/input_\(i).pb")
            feeds[name.isEmpty || !inputs.contains(name) ? inputs[i] : name] = RTensor(t)
        }
        let out = try interpreter.run(feeds)
        // Static shape inference, told the fed shapes, must agree with every output shape it claims to know.
        let facts = ShapeInference.run(model, inputShapes: feeds.mapValues(\.shape)).facts
        for o in model.graph.outputs {
            if let claimed = facts[o.name]?.concreteShape, let got = out[o.name]?.shape, claimed != got {
                return "shape inference says \(o.name) is \(claimed), the runtime made \(got)"
            }
        }
        for (i, o) in model.graph.outputs.enumerated() {
            let (_, want) = try ONNXReader.readTensor(path: "\(data)/output_\(i).pb")
            guard let got = out[o.name] else { return "output \(o.name) missing" }
            if got.shape != want.shape { return "output \(o.name): shape \(got.shape), expected \(want.shape)" }
            if want.dtype.isFloatingPoint {
                let g = got.floatArray(), w = want.floats()
                for k in 0..<w.count where !(abs(g[k] - w[k]) <= 1e-7 + 1e-3 * abs(w[k]) || (g[k].isNaN && w[k].isNaN) || g[k] == w[k]) {
                    return "output \(o.name)[\(k)] = \(g[k]), expected \(w[k])"
                }
            } else if got.dtype != want.dtype || got.int64s() != want.int64s() {
                return "output \(o.name): \(got.dtype) \(got.int64s().prefix(8)), expected \(want.dtype) \(want.int64s().prefix(8))"
            }
        }
        return nil
    }

    func runAll(_ root: String, reference: Bool) throws -> Outcome {
        var r = Outcome()
        for name in try FileManager.default.contentsOfDirectory(atPath: root).sorted() {
            let dir = "\(root)/\(name)"
            let model = try ONNXReader.read(path: "\(dir)/model.onnx")
            if let op = model.graph.nodes.map(\.opType).first(where: { Self.skippedOps[$0] != nil }) {
                r.skipped.append("\(name) (\(op): \(Self.skippedOps[op]!))")
                continue
            }
            do {
                if let problem = try runCase(dir, reference: reference) { r.failed.append("\(name): \(problem)") } else { r.passed += 1 }
            } catch {
                r.failed.append("\(name): \(error)")
            }
        }
        return r
    }

    func check(_ sub: String, reference: Bool) throws {
        guard let shared = Paths.shared else { throw XCTSkip("../shared not found (set SWIFTQ_SHARED): ONNX backend tests skipped") }
        let r = try runAll("\(shared)/onnx-tests/\(sub)", reference: reference)
        let label = "onnx-tests/\(sub) (\(reference ? "reference" : "fast") kernels)"
        for f in r.failed { print("FAIL \(label) \(f)") }
        if !r.skipped.isEmpty { print("skipped in \(label): \(r.skipped.joined(separator: ", "))") }
        print("\(label): \(r.passed) passed, \(r.failed.count) failed, \(r.skipped.count) skipped")
        XCTAssertEqual(r.failed, [])
        XCTAssertGreaterThan(r.passed, 0)
    }

    func testNodeCasesFastKernels() throws { try check("node", reference: false) }
    func testNodeCasesReferenceKernels() throws { try check("node", reference: true) }
    func testNodeMoreCasesFastKernels() throws { try check("node-more", reference: false) }
    func testNodeMoreCasesReferenceKernels() throws { try check("node-more", reference: true) }
    func testRealArchitectures() throws { try check("models", reference: false) }
}
