import Foundation
import XCTest
import SwiftQCalibrate

final class ThresholdTests: XCTestCase {
    /// |N(0, 1)| samples plus a few far outliers, from a fixed seed.
    func gaussianStats(count: Int = 200_000, outliers: [Float] = [40, -55]) -> TensorStatistics {
        var rng = LCG(state: 7)
        var v = (0..<count).map { _ -> Float in
            let u1 = Float(rng.next() % 1_000_000 + 1) / 1_000_001, u2 = Float(rng.next() % 1_000_000) / 1_000_000
            return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        }
        v += outliers
        var s = TensorStatistics()
        v.withUnsafeBufferPointer { s.add($0) }
        return s
    }

    func testMaxIsTheLargestMagnitude() {
        let s = gaussianStats()
        XCTAssertEqual(CalibrationMethod.max.threshold(s), 55)
        XCTAssertEqual(s.min, -55)
        XCTAssertEqual(s.max, 40)
    }

    func testPercentileOfAGaussian() {
        // 99.99% of |N(0,1)| lies below 3.89; the two outliers do not move it.
        let t = CalibrationMethod.percentile.threshold(gaussianStats(), percentile: 99.99)
        XCTAssertEqual(t, 3.89, accuracy: 0.1)
        let t99 = CalibrationMethod.percentile.threshold(gaussianStats(), percentile: 99)
        XCTAssertEqual(t99, 2.576, accuracy: 0.05)
    }

    func testEntropyClipsTheOutliersButKeepsTheBulk() {
        let t = CalibrationMethod.entropy.threshold(gaussianStats(), levels: 127)
        XCTAssertGreaterThan(t, 2)
        XCTAssertLessThan(t, 8)
    }

    func testMSEClipsMoreWithFewerLevels() {
        // The MSE-optimal clip of a Gaussian grows with the bit width: about 2.5 sigma at 4 bits, near 4 at 8.
        let s = gaussianStats(outliers: [])
        let t4 = CalibrationMethod.mse.threshold(s, levels: 15), t8 = CalibrationMethod.mse.threshold(s, levels: 255)
        XCTAssertEqual(t4, 2.5, accuracy: 0.6)
        XCTAssertGreaterThan(t8, 3.2)
        XCTAssertLessThan(t4, t8)
    }

    func testUniformDataIsNotClipped() {
        var s = TensorStatistics()
        let v = (0..<100_000).map { Float($0 % 1000) / 100 }
        v.withUnsafeBufferPointer { s.add($0) }
        for m in CalibrationMethod.allCases {
            XCTAssertGreaterThan(m.threshold(s, levels: 255), 9.5, "\(m) clipped uniform data")
        }
    }

    func testRangeGrowthKeepsEveryCount() {
        var s = TensorStatistics()
        let a: [Float] = [0.1, 0.2, 0.3, -0.4], b: [Float] = [3, -7.9, 0.05]
        a.withUnsafeBufferPointer { s.add($0) }
        let before = s.range
        b.withUnsafeBufferPointer { s.add($0) }
        XCTAssertEqual(s.count, 7)
        XCTAssertEqual(s.histogram.reduce(0, +), 7)
        XCTAssertGreaterThanOrEqual(s.range, 7.9)
        // The range grew by a power of two, so old bins merged exactly.
        let ratio = s.range / before
        XCTAssertEqual(ratio, ratio.rounded(), accuracy: 1e-4)
        XCTAssertEqual(log2(ratio), log2(ratio).rounded(), accuracy: 1e-4)
        // 0.4 and 0.3 still fall in the bins that hold them.
        let w = s.binWidth
        XCTAssertEqual(s.histogram[Int(0.4 / w)] + s.histogram[Int(0.3 / w)] >= 1, true)
        XCTAssertEqual(s.histogram[Int(7.9 / w)], 1)
    }

    /// A float model that overflows on some inputs: its infinities and NaN are counted (in the last bin, kept there when
    /// the range widens) and left out of min, max and range, which stay finite.
    func testNonFiniteValuesStayOutOfTheRange() {
        var s = TensorStatistics()
        ([1, 2, -3] as [Float]).withUnsafeBufferPointer { s.add($0) }
        ([.infinity, .nan, -.infinity, 2.5] as [Float]).withUnsafeBufferPointer { s.add($0) }
        XCTAssertEqual([s.min, s.max], [-3, 2.5])
        XCTAssertEqual(s.nonFinite, 3)
        XCTAssertEqual(s.count, 7)
        XCTAssertEqual(s.range, 3)
        XCTAssertEqual(s.histogram.last, 4, "the three, and -3 at the range's edge")
        ([100] as [Float]).withUnsafeBufferPointer { s.add($0) }
        XCTAssertEqual(s.range, 192)
        XCTAssertEqual(s.histogram.reduce(0, +), 8)
        XCTAssertEqual(s.histogram.last, 3, "the values that were not finite stay in the last bin")
        XCTAssertEqual(s.histogram[Int(100 / s.binWidth)], 1)
        for m in CalibrationMethod.allCases { XCTAssertEqual(m.threshold(s, levels: 255).isFinite, true, "\(m)") }
        var means = TensorStatistics(histogram: [])
        ([1, .infinity, 3, 5, .nan, -1, 2, 2] as [Float]).withUnsafeBufferPointer { means.addChannelSums($0, outer: 1, channels: 2, inner: 4) }
        XCTAssertEqual(means.channelSums, [9, 3], "infinities and NaN count as 0 in the channel sums")
        let long = (0..<40).map { $0 == 5 ? Float.infinity : 1 }   // in a vector of 16, not a tail
        long.withUnsafeBufferPointer { means.addChannelSums($0, outer: 1, channels: 2, inner: 20) }
        XCTAssertEqual(means.channelSums, [28, 23])
        var none = TensorStatistics()
        ([.nan, .infinity] as [Float]).withUnsafeBufferPointer { none.add($0) }
        XCTAssertEqual([none.count, none.nonFinite, none.histogram.last], [2, 2, 2])
        XCTAssertEqual(none.range, 0)
    }

    /// Widening by more than the bins (a first image of tiny values, then large ones; a range near the largest float)
    /// neither traps nor leaves an infinite range.
    func testWideningFarPastTheBins() {
        var s = TensorStatistics()
        ([1e-30, 0] as [Float]).withUnsafeBufferPointer { s.add($0) }
        ([1e30] as [Float]).withUnsafeBufferPointer { s.add($0) }
        XCTAssertGreaterThanOrEqual(s.range, 1e30)
        XCTAssertEqual(s.histogram[0], 2)
        XCTAssertEqual(s.histogram.reduce(0, +), 3)
        ([3e38] as [Float]).withUnsafeBufferPointer { s.add($0) }
        XCTAssertEqual(s.range, .greatestFiniteMagnitude)
        XCTAssertEqual(s.histogram.reduce(0, +), 4)
        XCTAssertEqual(s.max, 3e38)
    }

    func testRealTableIfGiven() throws {
        guard let path = ProcessInfo.processInfo.environment["SWIFTQ_DEBUG_TABLE"] else { return }
        struct T: Decodable { var tensors: [String: TensorStatistics] }
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let t = try d.decode(T.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        for (name, s) in t.tensors.sorted(by: { $0.key < $1.key }).prefix(8) {
            print(name, s.min, s.max, CalibrationMethod.percentile.threshold(s), CalibrationMethod.entropy.threshold(s))
        }
    }
}

struct LCG {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 33
    }
}
