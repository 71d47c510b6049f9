import Foundation
import SwiftQCalibrate
import SwiftQQuantize
import TestSupport
import XCTest

final class CalibrationTableTests: XCTestCase {
    func sampleTable() -> CalibrationTable {
        var rng = SeededRandom(seed: 5)
        var tensors: [String: TensorStatistics] = [:]
        for name in ["conv \"1\"\\out", "relu_2", "dead", "ünïcode\n", "overflowed"] {
            var s = TensorStatistics()
            var values = rng.floats(999).map { $0 * (name == "dead" ? 0 : 3.7) + (name == "relu_2" ? 1e-3 : 0) }
            if name == "overflowed" { values[5] = .infinity; values[6] = .nan }
            values.withUnsafeBufferPointer { s.add($0) }
            if name == "relu_2" {
                values.withUnsafeBufferPointer { s.addChannelSums($0, outer: 1, channels: 3, inner: 333) }
            }
            tensors[name] = s
        }
        var means = TensorStatistics(histogram: [])
        [Float](repeating: 0.25, count: 8).withUnsafeBufferPointer { means.addChannelSums($0, outer: 2, channels: 2, inner: 2) }
        tensors["means only"] = means
        return CalibrationTable(model: "m.onnx", images: 3, skipped: 1, preprocessing: "{\"size\":224}", tensors: tensors)
    }

    func testEncodedTableReadsBackExactlyAndAsJSONEncoderWrites() throws {
        let table = sampleTable()
        let back = try CalibrationTable(json: Data(table.encoded()), path: "t.json")
        XCTAssertEqual(back.tensors, table.tensors)
        XCTAssertEqual([back.model, back.preprocessing], [table.model, table.preprocessing])
        XCTAssertEqual([back.images, back.skipped], [3, 1])
        // Foundation's encoder gives the same JSON value.
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let viaFoundation = try JSONSerialization.jsonObject(with: e.encode(table)) as! NSDictionary
        let ours = try JSONSerialization.jsonObject(with: Data(table.encoded())) as! NSDictionary
        XCTAssertEqual(ours, viaFoundation)
    }

    /// A tensor that held infinities or NaN: counted in the table, named in a warning, left out of every method's threshold.
    func testNonFiniteValuesAreReportedAndLeftOutOfThresholds() throws {
        let table = sampleTable()
        XCTAssertEqual(table.tensors["overflowed"]?.nonFinite, 2)
        XCTAssertEqual(table.nonFiniteWarnings.count, 1)
        XCTAssertTrue(table.nonFiniteWarnings[0].hasPrefix("tensor 'overflowed': 2 of 999 values"), table.nonFiniteWarnings[0])
        var many = TensorStatistics()
        var values = (0..<20_000).map { i -> Float in Float(i % 100) / 1000 }
        for i in stride(from: 0, to: values.count, by: 50) { values[i] = .infinity }
        values[1] = 10
        values.withUnsafeBufferPointer { many.add($0) }
        // 2% infinite and one far value: without leaving them out, the 99.99th percentile would be the range's top.
        for method in [CalibrationMethod.percentile, .entropy] {
            XCTAssertLessThan(CalibrationTable.threshold(many, method: method, percentile: 99.99, bits: 8), 1, "\(method)")
        }
        XCTAssertEqual(CalibrationTable.threshold(many, method: .max, percentile: 99.99, bits: 8), 10)
    }

    func testImpossibleStatisticsAreRefusedNamingTheTensor() throws {
        func refusal(_ change: (inout TensorStatistics) -> Void) -> String {
            var t = sampleTable()
            change(&t.tensors["relu_2"]!)
            do { _ = try CalibrationTable(json: Data(t.encoded()), path: "t.json") } catch { return "\(error)" }
            return "accepted"
        }
        XCTAssertEqual(refusal { _ in }, "accepted")
        XCTAssertTrue(refusal { swap(&$0.min, &$0.max) }.hasPrefix("t.json: tensor 'relu_2': min"))
        XCTAssertTrue(refusal { $0.range = 0 }.contains("does not cover"))
        XCTAssertTrue(refusal { $0.histogram[3] = -1 }.contains("negative"))
        XCTAssertTrue(refusal { $0.count += 5 }.contains("the histogram counts"))
        XCTAssertTrue(refusal { $0.max = .nan }.contains("not finite"))
        XCTAssertTrue(refusal { $0.histogram.removeLast() }.contains("bins"))
        XCTAssertTrue(refusal { $0.channelSums![1] = .infinity }.contains("channel sums"))
        XCTAssertTrue(refusal { $0 = TensorStatistics() }.contains("no values"))
        XCTAssertTrue(refusal { $0.nonFinite = $0.histogram.last! + 1 }.contains("more than the last bin holds"))
        for bad in ["", "[]", "{\"format\":\"x\"}", "{\"format\": \"swiftq-calibration\", \"version\": 2, \"model\": \"m\", \"images\": 1, \"skipped\": 0, \"tensors\": {}}"] {
            XCTAssertThrowsError(try CalibrationTable(json: Data(bad.utf8), path: "t.json")) { XCTAssertTrue("\($0)".hasPrefix("t.json: not a swiftq calibration table"), "\($0)") }
        }
    }
}
