import Foundation
import SwiftQCore
import XCTest

final class OutputFilesTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "swiftq-outputs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func listing() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir).sorted() }

    func refusal(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    func testRefusesInputsOtherOutputsAndFoldersByIdentityNotSpelling() throws {
        let input = "\(dir)/m.onnx"
        try Data("model".utf8).write(to: URL(fileURLWithPath: input))
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/link.onnx", withDestinationPath: input)
        try FileManager.default.createDirectory(atPath: "\(dir)/sub", withIntermediateDirectories: false)
        let files = OutputFiles(inputs: [input])
        XCTAssertEqual(refusal { try files.reserve(input, role: "--output") }, "--output \(input): is an input of this run; it would be overwritten")
        XCTAssertTrue(refusal { try files.reserve("\(dir)/./sub/../link.onnx", role: "--json") }.contains("is the same file as the input '\(input)'"))
        XCTAssertEqual(refusal { try files.reserve("\(dir)/sub", role: "-o") }, "-o \(dir)/sub: is a folder")
        XCTAssertEqual(refusal { try files.reserve("\(dir)/none/x.onnx", role: "-o") }, "-o \(dir)/none/x.onnx: folder '\(dir)/none' does not exist")
        XCTAssertEqual(refusal { try files.reserve("\(dir)/m.onnx/x", role: "-o") }, "-o \(dir)/m.onnx/x: '\(dir)/m.onnx' is not a folder")
        try files.reserve("\(dir)/out.onnx", role: "--output")
        XCTAssertEqual(refusal { try files.reserve("\(dir)/sub/../out.onnx", role: "--json") }, "--json \(dir)/sub/../out.onnx: is the same file as --output \(dir)/out.onnx")
        XCTAssertEqual(refusal { try files.reserve("/proc/x.onnx", role: "-o") }.hasPrefix("-o /proc/x.onnx: cannot write in folder '/proc'"), true)
        files.abort()
        XCTAssertEqual(try listing(), ["link.onnx", "m.onnx", "sub"], "a refused or aborted run leaves no file")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: input)), Data("model".utf8))
    }

    func testNothingUnderAFinalNameUntilCommitThenEverything() throws {
        let files = OutputFiles()
        let a = "\(dir)/a.json", b = "\(dir)/b.onnx"
        try Data("old".utf8).write(to: URL(fileURLWithPath: b))
        let tmpA = try files.reserve(a, role: "--json")
        try files.reserve(b, role: "--output")
        XCTAssertTrue(PathNames.name(of: tmpA).hasPrefix(OutputFiles.temporaryPrefix))
        try files.write(Data("A".utf8), to: a)
        try files.write([UInt8]("BB".utf8), to: b)
        XCTAssertFalse(FileManager.default.fileExists(atPath: a))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: b)), Data("old".utf8))
        try files.commit()
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a)), Data("A".utf8))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: b)), Data("BB".utf8))
        XCTAssertEqual(try listing(), ["a.json", "b.onnx"])
    }

    func testDroppingTheTransactionRemovesItsTemporaryFiles() throws {
        do {
            let files = OutputFiles()
            try files.reserve("\(dir)/x.onnx", role: "-o")
            try files.write(Data("partial".utf8), to: "\(dir)/x.onnx")
            XCTAssertEqual(try listing().count, 1)
        }
        XCTAssertEqual(try listing(), [])
    }

    func testPathNames() {
        XCTAssertEqual(PathNames.folder(of: "m"), ".")
        XCTAssertEqual(PathNames.name(of: "m"), "m")
        XCTAssertEqual(PathNames.folder(of: "/m"), "/")
        XCTAssertEqual(PathNames.folder(of: "a/b/c.onnx"), "a/b")
        XCTAssertEqual(PathNames.name(of: "a/b/c.onnx"), "c.onnx")
        XCTAssertEqual(PathNames.name(of: "a/b/"), "b")
        XCTAssertEqual(PathNames.join(".", "x"), "./x")
        XCTAssertEqual(PathNames.join("/", "x"), "/x")
    }
}
