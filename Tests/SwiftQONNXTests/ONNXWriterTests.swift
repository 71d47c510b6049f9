import Foundation
import SwiftQCore
import SwiftQONNX
import TestSupport
import XCTest

final class ONNXWriterTests: XCTestCase {
    func roundTrip(_ m: Model, external: ExternalDataPolicy = .never) throws -> Model {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = "\(dir)/m.onnx"
        try ONNXWriter.write(m, to: p, externalData: external)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), external == .always ? ["m.onnx", "m.onnx.data"] : ["m.onnx"])
        return try ONNXReader.read(path: p)
    }

    func testFixturesRoundTripUnchanged() throws {
        for name in ["tiny_cnn.onnx", "encodings.onnx", "external.onnx"] {
            let m = try ONNXReader.read(path: Paths.fixture(name))
            XCTAssertEqual(try roundTrip(m), m, name)
            XCTAssertEqual(try roundTrip(m, external: .always), m, name)
        }
    }

    func testSerializationIsStable() throws {
        let m = try ONNXReader.read(path: Paths.fixture("encodings.onnx"))
        let once = try ONNXWriter.serialize(m)
        let again = try once.withUnsafeBytes { try ONNXReader.read(bytes: $0, path: "mem", baseDirectory: nil) }
        XCTAssertEqual(try ONNXWriter.serialize(again), once)
    }

    func testBuiltGraphRoundTrips() throws {
        let g = Graph(name: "built", nodes: [
            Node(name: "c", opType: "Conv", inputs: ["x", "w", ""], outputs: ["y"],
                 attributes: [Attribute(name: "pads", value: .ints([0, 0, 0, 0])), Attribute(name: "auto_pad", value: .string(""))]),
        ], inputs: [ValueInfo(name: "x", dtype: .float, shape: [.symbol("N"), .value(1), .unknown, .value(2)])],
           outputs: [ValueInfo(name: "y", type: nil)],
           initializers: [Initializer(name: "w", tensor: Tensor(integers: [UInt16(0x3C00)], dtype: .float16, shape: [1, 1, 1, 1]), docString: "half")])
        let m = Model(metadataProps: [(key: "k", value: "")], graph: g)
        XCTAssertEqual(try roundTrip(m), m)
    }

    func testFailedWriteLeavesNothingBehind() throws {
        let m = try ONNXReader.read(path: Paths.fixture("tiny_cnn.onnx"))
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertThrowsError(try ONNXWriter.write(m, to: "\(dir)/missing/m.onnx")) {
            XCTAssertTrue("\($0)".contains("does not exist"))
        }
        // A read-only folder: the temporary file cannot be created.
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: dir)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir) }
        if getuid() != 0 {
            XCTAssertThrowsError(try ONNXWriter.write(m, to: "\(dir)/m.onnx"))
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}
