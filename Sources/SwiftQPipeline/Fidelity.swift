import Foundation
import SwiftQRuntime

/// How far a quantized model's outputs are from the float model's, per output tensor, over every image: the
/// fidelity report for models without labels (detectors, segmenters, feature extractors), beside top-1 for
/// classifiers. For each output: SQNR 10·log10(Σ f² / Σ (f − q)²) in dB, cosine similarity, the largest absolute
/// error, the worst SQNR over the slices along the channel axis (axis 1 of a rank-3+ output: a tensor-wide SQNR
/// hides a crushed score channel next to large box coordinates), and for classifier-shaped outputs ([N, K] or
/// [N, K, 1, 1]) the share of images whose top-1 class agrees.
public struct OutputFidelity: Sendable {
    struct Sums: Sendable {
        var signal = 0.0, noise = 0.0, dot = 0.0, quantized = 0.0, maxAbs = 0.0
        var channelSignal: [Double] = [], channelNoise: [Double] = []
        var classifier = false, agree = 0, rows = 0
    }

    private var sums: [String: Sums] = [:]
    /// Output names in the order first seen.
    public private(set) var names: [String] = []
    public private(set) var images = 0

    public init() {}

    /// Adds one image: both models' outputs by name (outputs missing from either, or of other shapes, are skipped).
    public mutating func add(float: [String: RTensor], quantized: [String: RTensor], order: [String]) {
        images += 1
        for name in order {
            guard let f = float[name], let q = quantized[name], f.dtype == .float, q.dtype == .float, f.shape == q.shape, f.count > 0 else { continue }
            if sums[name] == nil { names.append(name) }
            var s = sums[name] ?? Sums()
            let shape = f.shape
            let channels = shape.count >= 3 ? shape[1] : 1, inner = shape.count >= 3 ? shape[2...].reduce(1, *) : f.count
            if s.channelSignal.count != channels { s.channelSignal = Array(repeating: 0, count: channels); s.channelNoise = s.channelSignal }
            for i in 0..<f.count {
                let a = Double(f.f[i]), b = Double(q.f[i]), d = a - b
                s.signal += a * a; s.noise += d * d; s.dot += a * b; s.quantized += b * b
                s.maxAbs = max(s.maxAbs, abs(d).isNaN ? .infinity : abs(d))
                let c = (i / inner) % channels
                s.channelSignal[c] += a * a; s.channelNoise[c] += d * d
            }
            if let k = OutputFidelity.classCount(shape) {
                s.classifier = true
                for r in 0..<(f.count / k) {
                    let a = topK(UnsafeBufferPointer(start: f.f + r * k, count: k), 1), b = topK(UnsafeBufferPointer(start: q.f + r * k, count: k), 1)
                    s.rows += 1
                    if a == b { s.agree += 1 }
                }
            }
            sums[name] = s
        }
    }

    /// One output's figures.
    public struct Row: Sendable {
        public var name: String
        public var sqnr: Double
        public var cosine: Double
        public var maxAbsError: Double
        /// The channel (axis 1) with the lowest SQNR and that SQNR, for outputs of rank 3 or more with several channels.
        public var worstChannel: (index: Int, sqnr: Double)?
        /// Percent of rows (images) whose top-1 agrees, for classifier-shaped outputs.
        public var top1Agreement: Double?
    }

    /// The number of classes of a classifier-shaped output ([N, K] or [N, K, 1, 1] with K > 1), nil for others.
    public static func classCount(_ shape: [Int]) -> Int? {
        let k = shape.count == 2 ? shape[1] : shape.count == 4 && shape[2] == 1 && shape[3] == 1 ? shape[1] : 0
        return k > 1 ? k : nil
    }

    static func db(_ signal: Double, _ noise: Double) -> Double { noise > 0 ? 10 * log10(signal / noise) : .infinity }

    public var rows: [Row] {
        names.compactMap { name in
            guard let s = sums[name] else { return nil }
            var worst: (Int, Double)? = nil
            if s.channelSignal.count > 1 {
                for c in s.channelSignal.indices {
                    let v = Self.db(s.channelSignal[c], s.channelNoise[c])
                    if worst == nil || v < worst!.1 { worst = (c, v) }
                }
            }
            let cosine = s.signal > 0 && s.quantized > 0 ? s.dot / (s.signal * s.quantized).squareRoot() : (s.noise == 0 ? 1 : 0)
            return Row(name: name, sqnr: Self.db(s.signal, s.noise), cosine: cosine, maxAbsError: s.maxAbs, worstChannel: worst,
                       top1Agreement: s.classifier ? 100 * Double(s.agree) / Double(max(1, s.rows)) : nil)
        }
    }

    /// The lowest tensor-wide SQNR over the outputs (what `--min-sqnr` gates), nil before any image.
    public var lowestSQNR: Double? { rows.map(\.sqnr).min() }

    /// The console table.
    public var lines: [String] {
        guard images > 0 else { return [] }
        var out = ["fidelity (int8 against fp32 outputs, \(images) images):",
                   "  output                         SQNR dB   cosine   max |err|   worst channel      top-1 agree"]
        for r in rows {
            let name = r.name.count > 28 ? String(r.name.prefix(27)) + "…" : r.name.padding(toLength: 28, withPad: " ", startingAt: 0)
            let worst = r.worstChannel.map { String(format: "%7.2f dB (#%d)", $0.sqnr, $0.index) } ?? "-"
            let agree = r.top1Agreement.map { String(format: "%.2f%%", $0) } ?? "-"
            out.append("  " + name + String(format: " %9.2f %8.5f %11.4g   ", r.sqnr, r.cosine, r.maxAbsError) + worst.padding(toLength: 17, withPad: " ", startingAt: 0) + "  " + agree)
        }
        return out
    }

    /// The same figures for `--json` (infinite SQNR as 999).
    public var json: [[String: Any]] {
        func finite(_ v: Double) -> Double { v.isFinite ? v : 999 }
        return rows.map { r in
            var o: [String: Any] = ["output": r.name, "sqnr_db": finite(r.sqnr), "cosine": r.cosine, "max_abs_error": finite(r.maxAbsError)]
            if let w = r.worstChannel { o["worst_channel"] = w.index; o["worst_channel_sqnr_db"] = finite(w.sqnr) }
            if let a = r.top1Agreement { o["top1_agreement"] = a }
            return o
        }
    }
}
