import SwiftQCore
import XCTest

final class HalfTests: XCTestCase {
    func testEveryHalfBitPatternRoundTrips() {
        for bits in 0...UInt16.max {
            let f = floatFromHalfBits(bits)
            if f.isNaN { XCTAssertTrue(floatFromHalfBits(halfBitsFromFloat(f)).isNaN); continue }
            XCTAssertEqual(halfBitsFromFloat(f), bits, "half 0x\(String(bits, radix: 16)) = \(f)")
        }
    }

    func testKnownValues() {
        XCTAssertEqual(floatFromHalfBits(0x3C00), 1)
        XCTAssertEqual(floatFromHalfBits(0xC000), -2)
        XCTAssertEqual(floatFromHalfBits(0x7BFF), 65504)
        XCTAssertEqual(floatFromHalfBits(0x0001), Float(sign: .plus, exponent: -24, significand: 1))
        XCTAssertEqual(floatFromHalfBits(0x7C00), .infinity)
        XCTAssertEqual(floatFromHalfBits(0x8000).sign, .minus)
        XCTAssertEqual(floatFromBFloat16Bits(0x3F80), 1)
    }

    func testRoundingToNearestEven() {
        // 1 + 2^-11 lies halfway between 1 and the next half (1 + 2^-10): ties go to the even mantissa.
        XCTAssertEqual(halfBitsFromFloat(1 + Float(sign: .plus, exponent: -11, significand: 1)), 0x3C00)
        XCTAssertEqual(halfBitsFromFloat(1 + 3 * Float(sign: .plus, exponent: -11, significand: 1)), 0x3C02)
        XCTAssertEqual(halfBitsFromFloat(70000), 0x7C00)
    }
}
