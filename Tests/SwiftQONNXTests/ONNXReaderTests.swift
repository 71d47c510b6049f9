import Foundation
import SwiftQCore
import SwiftQONNX
import TestSupport
import XCTest

final class ONNXReaderTests: XCTestCase {
    func testTinyCNNStructure() throws {
        let m = try ONNXReader.read(path: Paths.fixture("tiny_cnn.onnx"))
        XCTAssertEqual(m.opset, 13)
        XCTAssertEqual(m.producerName, "swiftq-fixtures")
        XCTAssertEqual(m.graph.nodes.map(\.opType), ["Conv", "BatchNormalization", "Relu", "MaxPool", "Conv", "Clip", "Conv", "Add",
                                                     "GlobalAveragePool", "Flatten", "Gemm", "Softmax"])
        XCTAssertEqual(m.graph.inputs.first?.shape, [.symbol("N"), .value(3), .value(32), .value(32)])
        let dw = m.graph.nodes[4]
        XCTAssertEqual(dw.int("group"), 8)
        XCTAssertEqual(dw.ints("pads"), [1, 1, 1, 1])
        XCTAssertEqual(m.graph.initializerTable["dw.w"]?.shape, [8, 1, 3, 3])
        XCTAssertEqual(m.graph.nodes[1].float("epsilon"), 1e-5)
    }

    func testEveryInitializerEncodingMatchesTheGenerator() throws {
        let m = try ONNXReader.read(path: Paths.fixture("encodings.onnx"))
        let data = try Data(contentsOf: URL(fileURLWithPath: Paths.fixture("encodings.expected.json")))
        let expected = try JSONSerialization.jsonObject(with: data) as! [String: [String: Any]]
        let table = m.graph.initializerTable
        XCTAssertEqual(Set(table.keys), Set(expected.keys))
        for (name, e) in expected {
            guard let t = table[name] else { continue }
            XCTAssertEqual(t.dtype.description, e["dtype"] as? String, name)
            XCTAssertEqual(t.shape, e["shape"] as? [Int], name)
            // The generator writes non-finite values as the strings "inf", "-inf" and "nan".
            let want = (e["values"] as! [Any]).map { v -> Float in (v as? NSNumber).map { Float(truncating: $0) } ?? Float(v as! String)! }
            let got = t.floats()
            XCTAssertEqual(got.count, want.count, name)
            for (g, w) in zip(got, want) {
                XCTAssertTrue(g == w || (g.isNaN && w.isNaN), "\(name): \(g) != \(w)")
                XCTAssertEqual(g.sign, w.sign, "\(name): sign of \(g)")
            }
        }
        XCTAssertEqual(table["int64_data"]?.int64s(), [-(1 << 40), -1, 0, 1 << 40])
        XCTAssertEqual(table["int32_data"]?.int64s(), [Int64(Int32.min), -1, 0, Int64(Int32.max)])
        XCTAssertEqual(m.metadataProps.map(\.key).sorted(), ["author", "purpose"])
        XCTAssertEqual(m.docString, "model doc")
    }

    func testEveryAttributeKind() throws {
        let m = try ONNXReader.read(path: Paths.fixture("encodings.onnx"))
        guard let n = m.graph.nodes.first(where: { $0.opType == "AllAttributes" }) else { return XCTFail("no custom node") }
        XCTAssertEqual(n.domain, "test.swiftq")
        XCTAssertEqual(n.float("f"), 0.25)
        XCTAssertEqual(n.int("i"), -7)
        XCTAssertEqual(n.string("s"), "héllo")
        XCTAssertEqual(n.tensor("t")?.int64s(), [3, 4])
        XCTAssertEqual(n.floats("floats"), [1, 2.5])
        XCTAssertEqual(n.ints("ints"), [1, -2, 3])
        XCTAssertEqual(n.attribute("strings"), .strings(["a", "bc"]))
        if case .graph(let g)? = n.attribute("g") { XCTAssertEqual(g.nodes.map(\.opType), ["Identity"]) } else { XCTFail("g") }
        if case .graphs(let gs)? = n.attribute("graphs") { XCTAssertEqual(gs.count, 1) } else { XCTFail("graphs") }
        if case .tensors(let ts)? = n.attribute("tensors") { XCTAssertEqual(ts.first?.floats(), [1]) } else { XCTFail("tensors") }
        if case .opaque(let b)? = n.attribute("sparse") { XCTAssertFalse(b.isEmpty) } else { XCTFail("sparse") }
        if case .opaque(let b)? = n.attribute("tp") { XCTAssertFalse(b.isEmpty) } else { XCTFail("tp") }
        let constant = m.graph.nodes.first { $0.opType == "Constant" }
        XCTAssertEqual(constant?.tensor("value")?.floats(), [1, 2, 3])
    }

    func testExternalDataEqualsInlineData() throws {
        let ext = try ONNXReader.read(path: Paths.fixture("external.onnx"))
        let inline = try ONNXReader.read(path: Paths.fixture("tiny_cnn.onnx"))
        XCTAssertEqual(ext.graph.initializerTable, inline.graph.initializerTable)
    }

    func assertModelError(_ path: String, file: StaticString = #filePath, line: UInt = #line, _ check: (ModelError) -> Bool) {
        XCTAssertThrowsError(try ONNXReader.read(path: path), file: file, line: line) { error in
            guard let e = error as? ModelError else { return XCTFail("not a ModelError: \(error)", file: file, line: line) }
            XCTAssertTrue(check(e), "unexpected: \(e)", file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
            XCTAssertTrue(e.description.contains(path), "message names the file: \(e)", file: file, line: line)
        }
    }

    func testBrokenFilesGiveTypedErrors() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try Data(contentsOf: URL(fileURLWithPath: Paths.fixture("tiny_cnn.onnx")))
        var generator = SystemRandomNumberGenerator()
        let cases: [(String, Data)] = [
            ("empty.onnx", Data()),
            ("truncated.onnx", good.prefix(good.count / 2)),
            ("random.onnx", Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) })),
            ("text.onnx", Data("this is not a model\n".utf8)),
        ]
        for (name, bytes) in cases {
            let p = "\(dir)/\(name)"
            try bytes.write(to: URL(fileURLWithPath: p))
            assertModelError(p) { if case .notONNX = $0 { true } else { false } }
        }
        assertModelError("\(dir)/missing.onnx") { $0 == .fileNotFound(path: "\(dir)/missing.onnx") }
        assertModelError(dir) { if case .unreadable = $0 { true } else { false } }
        assertModelError(Paths.fixture("unknown_op.onnx")) { if case .unknownOp(_, "mystery", "FooBar", _) = $0 { true } else { false } }
        assertModelError(Paths.fixture("string_tensor.onnx")) { if case .unsupportedTensorType(_, "labels", "STRING") = $0 { true } else { false } }
    }

    func testEveryTruncationOfAModelFailsCleanly() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: Paths.fixture("tiny_cnn.onnx")))
        for cut in stride(from: 0, to: good.count, by: 7) {
            let prefix = good.prefix(cut)
            XCTAssertThrowsError(try prefix.withUnsafeBytes { b in
                let m = try ONNXReader.read(bytes: b, path: "cut\(cut)", baseDirectory: nil)
                try m.validate(path: "cut\(cut)")
            }, "a model cut at byte \(cut) was accepted")
        }
    }
}
