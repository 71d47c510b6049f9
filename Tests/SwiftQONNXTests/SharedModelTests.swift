import Foundation
import SwiftQCore
import SwiftQONNX
import TestSupport
import XCTest

/// Real models from ../shared: read, write, read again gives the same IR. ONNX Runtime's side of the round
/// trip (bit-identical outputs) is scripts/check_shared.py.
final class SharedModelTests: XCTestCase {
    func sharedModels() throws -> [String] {
        guard let shared = Paths.shared else { throw XCTSkip("../shared not found (set SWIFTQ_SHARED): real-model tests skipped") }
        let dir = "\(shared)/models"
        return try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".onnx") }.sorted().map { "\(dir)/\($0)" }
    }

    func testRealModelsRoundTripThroughTheIR() throws {
        let models = try sharedModels()
        XCTAssertFalse(models.isEmpty)
        for path in models {
            let m = try ONNXReader.read(path: path)
            let bytes = try ONNXWriter.serialize(m)
            let back = try bytes.withUnsafeBytes { try ONNXReader.read(bytes: $0, path: path, baseDirectory: nil) }
            XCTAssertEqual(back, m, path)
        }
    }

    func testTruncatedRealModelIsNotONNX() throws {
        for path in try sharedModels() {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try data.prefix(data.count / 2).withUnsafeBytes { try ONNXReader.read(bytes: $0, path: path, baseDirectory: nil) }) {
                guard case .notONNX? = $0 as? ModelError else { return XCTFail("\(path): \($0)") }
            }
        }
    }
}
