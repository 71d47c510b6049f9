import Foundation
import SwiftQCore
import SwiftQONNX
import TestSupport
import XCTest

/// NumPy arrays for calibration: .npy, .npz stored and deflated (Fixtures/arrays, written by numpy), and damaged
/// or unsupported files refused with one line naming the file.
final class NumpyFileTests: XCTestCase {
    func testReadsNumpysOwnFiles() throws {
        for i in 0..<6 {
            let arrays = try NumpyFile.read(path: Paths.fixture("arrays/sample\(i).npz"))
            XCTAssertEqual(arrays.map(\.name), ["image", "aux"], "sample\(i) (\(i % 2 == 1 ? "deflated" : "stored"))")
            XCTAssertEqual(arrays[0].tensor.shape, [1, 3, 16, 16])
            XCTAssertEqual(arrays[1].tensor.shape, [1, 8])
            XCTAssertTrue(arrays[1].tensor.floats().allSatisfy { $0 >= 0 && $0 <= 1 })
        }
        let one = try NumpyFile.read(path: Paths.fixture("arrays-single/x0.npy"))
        XCTAssertEqual(one.count, 1)
        XCTAssertEqual(one[0].name, "")
        XCTAssertEqual(one[0].tensor.dtype, .float)
        XCTAssertEqual(one[0].tensor.shape, [1, 3, 32, 32])
    }

    func npy(_ header: String, _ payload: [UInt8], version: UInt8 = 1) -> [UInt8] {
        var h = Array(header.utf8)
        while (10 + h.count + 1) % 64 != 0 { h.append(0x20) }
        h.append(0x0A)
        return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h + payload
    }

    func testTypesAndRefusals() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func write(_ name: String, _ bytes: [UInt8]) -> String {
            let p = "\(dir)/\(name)"
            FileManager.default.createFile(atPath: p, contents: Data(bytes))
            return p
        }
        let doubles = [1.5, -2.0].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }
        let d = try NumpyFile.read(path: write("d.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", doubles)))
        XCTAssertEqual(d[0].tensor.floats(), [1.5, -2])
        let longs = [Int64(7), -3].flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } }
        XCTAssertEqual(try NumpyFile.read(path: write("l.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2), }", longs)))[0].tensor.int64s(), [7, -3])
        let scalar = try NumpyFile.read(path: write("s.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", [0, 0, 128, 63])))
        XCTAssertEqual(scalar[0].tensor.shape, [])
        let bad: [(String, [UInt8], String)] = [
            ("magic.npy", Array("not numpy at all".utf8), "magic"),
            ("fortran.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", [0, 0, 0, 0]), "Fortran"),
            ("type.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", [0, 0, 0, 0]), "'>f4'"),
            ("short.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", [0, 0, 0, 0]), "needs 12"),
            ("huge.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }", []), "more than"),
            ("negative.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", []), "shape has"),
            ("header.npy", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 0xFF, 0xFF], "header"),
            ("zip.npz", [0x50, 0x4B, 3, 4] + [UInt8](repeating: 0, count: 40), "zip"),
        ]
        for (name, bytes, words) in bad {
            XCTAssertThrowsError(try NumpyFile.read(path: write(name, bytes)), name) {
                XCTAssertTrue("\($0)".contains(name) && "\($0)".contains(words), "\(name): \($0)")
            }
        }
        // A real archive cut anywhere, or with its deflate data damaged, is refused, never a crash.
        let archive = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Paths.fixture("arrays/sample1.npz"))))
        for cut in stride(from: 0, to: archive.count, by: 97) {
            XCTAssertThrowsError(try NumpyFile.read(path: write("cut.npz", Array(archive.prefix(cut)))))
        }
        var damaged = archive
        for i in stride(from: 120, to: 400, by: 7) { damaged[i] ^= 0x5A }
        XCTAssertThrowsError(try NumpyFile.read(path: write("damaged.npz", damaged)))
        // One flipped bit in a stored entry's array data: only the CRC tells.
        var flipped = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Paths.fixture("arrays/sample0.npz"))))
        flipped[400] ^= 1
        XCTAssertThrowsError(try NumpyFile.read(path: write("flipped.npz", flipped))) { XCTAssertTrue("\($0)".contains("CRC-32"), "\($0)") }
    }
}
