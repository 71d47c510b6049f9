import Foundation
import SwiftQCalibrate
import SwiftQCore
import SwiftQImages
import SwiftQONNX
import SwiftQPipeline
import SwiftQQuantize
import SwiftQReport
import TestSupport
import XCTest

final class ReportTests: XCTestCase {
    /// The clipping share and SQNR the report prints for an activation come from its histogram alone; they must match
    /// quantizing the values themselves: exponential |x| (a ReLU-like long tail), thresholds from nothing clipped to
    /// a third of the range.
    func testHistogramEstimateMatchesQuantizingTheValues() {
        var rng = SeededRandom(seed: 7)
        let values = rng.floats(200_000, 1e-6, 1).map { -log($0) }
        var s = TensorStatistics()
        values.withUnsafeBufferPointer { s.add($0) }
        for t in [s.absMax, 6, 4, 2] {
            let step = t / 255
            var signal = 0.0, noise = 0.0, clipped = 0
            for v in values {
                let q = min(max((v / step).rounded(), 0), 255) * step
                signal += Double(v * v); noise += Double((v - q) * (v - q))
                if v > t { clipped += 1 }
            }
            let (share, db) = QuantizationReport.clippingEstimate(s, threshold: Double(t), step: Double(step))
            XCTAssertEqual(share, 100 * Double(clipped) / Double(values.count), accuracy: 0.02, "T \(t)")
            XCTAssertEqual(db, 10 * log10(signal / noise), accuracy: 0.3, "T \(t)")
        }
        // Nothing lies above the largest value, even when it sits low in its bin (the range doubled after the first batch).
        var grown = TensorStatistics()
        for batch in [[Float(0.25), 1], [0.5, 1.3]] { batch.withUnsafeBufferPointer { grown.add($0) } }
        XCTAssertLessThan(Double(grown.absMax), (Double(Int(grown.absMax / grown.binWidth)) + 0.5) * Double(grown.binWidth))
        XCTAssertEqual(QuantizationReport.clippingEstimate(grown, threshold: Double(grown.absMax), step: 0.01).0, 0)
    }

    /// The demo model's quantize report: a chart per weighted layer and per calibrated activation, every method's
    /// threshold as `CalibrationTable.threshold` gives it, each channel's weight range, no script, names escaped.
    func testQuantizationReportOfTheDemoModel() throws {
        let path = Paths.fixture("digits/digits.onnx")
        let model = try ONNXReader.read(path: path)
        let prep = try XCTUnwrap(Preprocessing(metadataOf: model))
        let (train, items) = try calibrationImages(root: Paths.fixture("digits/train"), list: nil, limit: 64, seed: 0)
        var options = QuantizeOptions()
        options.method = .percentile
        let c = try QuantizationJob.calibrated(model, path: path, data: .images(train, items), preprocessing: prep, limits: ImageLimits(),
                                               maxElements: Model.defaultMaxTensorElements, options: options, threads: 1)
        let q = try QuantizationJob.quantize(c.job, table: c.table, options: options)
        let report = QuantizationReport(model: path, summary: [("model", "a <b>bold</b> & name")], calibrated: c, quantized: q, options: options)
        XCTAssertEqual(report.layers.count, 11)
        XCTAssertEqual(report.activations.count, c.job.plan.measured.count)
        let stem = try XCTUnwrap(report.layers.first { $0.report.node == "stem" })
        let w = c.job.model.graph.initializerTable[c.job.model.graph.nodes.first { $0.name == "stem" }!.inputs[1]]!.floats()
        for ch in [0, 7, 15] {
            let channel = w[(ch * 9)..<(ch * 9 + 9)]
            XCTAssertEqual(stem.channelMin[ch], channel.min())
            XCTAssertEqual(stem.channelMax[ch], channel.max())
        }
        for a in report.activations {
            let s = c.table.tensors[a.tensor]!
            for (m, t) in a.thresholds { XCTAssertEqual(t, CalibrationTable.threshold(s, method: m, percentile: options.percentile, bits: 8)) }
            XCTAssertEqual(a.chosen, .percentile)
            XCTAssertEqual(Double(a.hi), Double(q.activations[a.tensor]!.scales[0]) * Double(q.activations[a.tensor]!.qmax - q.activations[a.tensor]!.zeroPoints[0]), accuracy: 1e-5)
        }
        let html = report.html
        XCTAssertEqual(html.components(separatedBy: "<svg ").count - 1, report.layers.count + report.activations.count)
        XCTAssertFalse(html.lowercased().contains("<script"))
        XCTAssertFalse(html.contains("http:") || html.contains("https:"))
        XCTAssertTrue(html.contains("a &lt;b&gt;bold&lt;/b&gt; &amp; name"))
        XCTAssertFalse(html.contains("<b>bold</b>"))

        // The budget's moves: drop and agreement columns for a classifier, none for a model without class scores.
        var budgeted = report
        budgeted.budget = [PrecisionStep(node: "stem", from: "4-bit", to: "8-bit", score: VariantScore(top1Drop: 0.25, agreement: 97.5, sqnr: 21))]
        XCTAssertTrue(budgeted.html.contains("agreement %"))
        XCTAssertTrue(budgeted.html.contains("97.50"))
        budgeted.budget = [PrecisionStep(node: "stem", from: "4-bit", to: "8-bit", score: VariantScore(top1Drop: nil, agreement: nil, sqnr: 21))]
        XCTAssertFalse(budgeted.html.contains("agreement %"))
        XCTAssertTrue(budgeted.html.contains("output SQNR dB"))
    }
}
