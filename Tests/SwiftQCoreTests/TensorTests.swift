import SwiftQCore
import XCTest

final class TensorTests: XCTestCase {
    func testByteCountMustMatchShape() {
        XCTAssertNil(Tensor(dtype: .float, shape: [2, 2], bytes: [UInt8](repeating: 0, count: 12)))
        XCTAssertNil(Tensor(dtype: .string, shape: [1], bytes: [0]))
        XCTAssertNil(Tensor(dtype: .float, shape: [-1], bytes: []))
        XCTAssertNil(Tensor(dtype: .float, shape: [Int.max, 4], bytes: []))
        XCTAssertNotNil(Tensor(dtype: .float, shape: [0, 3], bytes: []))
        XCTAssertEqual(Tensor(dtype: .int8, shape: [], bytes: [0xFF])?.int64s(), [-1])
    }

    func testConversions() {
        let t = Tensor(floats: [1.5, -2, 3.25], shape: [3])
        XCTAssertEqual(t.floats(), [1.5, -2, 3.25])
        XCTAssertEqual(t.int64s(), [1, -2, 3])
        let i = Tensor(integers: [Int32(-5), 7], dtype: .int32, shape: [2])
        XCTAssertEqual(i.floats(), [-5, 7])
        XCTAssertEqual(Tensor(int64s: [1 << 40], shape: [1]).int64s(), [1 << 40])
        let h = Tensor(integers: [UInt16(0x3C00), 0xC000], dtype: .float16, shape: [2])
        XCTAssertEqual(h.floats(), [1, -2])
    }
}
