import Foundation
import SwiftQCalibrate
import SwiftQCore
import SwiftQPasses
import SwiftQPipeline
import SwiftQQuantize

/// `swiftq quantize --report`: what a person looks at to trust or debug a quantized model. Per weighted layer, the
/// per-channel weight ranges (why one scale per tensor fails a depthwise layer) and the weight SQNR; per calibrated
/// activation, its histogram of |x| with the threshold of every calibration method marked and the chosen one drawn
/// bold; and the accuracy budget's moves when there were any.
public struct QuantizationReport {
    /// One weighted layer's facts.
    public struct Layer {
        public var report: WeightedLayerReport
        /// Per output channel, the smallest and largest float weight (after folding BatchNormalization).
        public var channelMin: [Float], channelMax: [Float]
        /// The widest channel's largest |w| over the median channel's: how much coarser one per-tensor step is than
        /// the step the median channel gets on its own.
        public var spread: Double
    }

    /// One calibrated activation's facts.
    public struct Activation {
        public var tensor: String
        public var producer: String
        public var statistics: TensorStatistics
        /// The threshold on |x| of every method, in `CalibrationMethod.allCases` order.
        public var thresholds: [(method: CalibrationMethod, value: Float)]
        public var chosen: CalibrationMethod
        /// The quantized range [lo, hi] written to the model, and its step.
        public var lo: Float, hi: Float, step: Float
        /// Percent of the calibration values above the chosen threshold (from the histogram).
        public var clippedPercent: Double
        /// 10·log10(E[x²] / E[(x − q(x))²]) estimated from the histogram: clipping error above the threshold, a
        /// uniform rounding error of step²/12 below it.
        public var estimatedSQNR: Double
    }

    public let title: String
    /// The run's facts as the console printed them (label, value).
    public var summary: [(String, String)]
    public var layers: [Layer] = []
    public var activations: [Activation] = []
    /// The accuracy budget's moves (`--max-drop`, `--min-sqnr`), in order.
    public var budget: [PrecisionStep] = []
    /// How the budget reads its score: top-1 drop, or disagreement with float without labels (shown as "–" for a
    /// model without class scores).
    public var budgetMeasure = "top-1 drop"
    public var options: QuantizeOptions

    /// Gathers the facts from a calibrated and quantized model. `summary` is what the console showed.
    public init(model: String, summary: [(String, String)], calibrated: CalibratedModel, quantized: QuantizedModel, options: QuantizeOptions) {
        title = "swiftq quantize: " + PathNames.name(of: model)
        self.summary = summary
        self.options = options
        let g = calibrated.job.model.graph
        let inits = g.initializerTable
        let byName = Dictionary(g.nodes.map { ($0.reportName, $0) }, uniquingKeysWith: { a, _ in a })
        for l in quantized.layers {
            guard let n = byName[l.node], let wName = n.input(1), let w = inits[wName], w.dtype == .float,
                  let layout = OutputChannels(node: n, weightShape: w.shape) else { continue }
            var lo = [Float](repeating: .infinity, count: layout.count), hi = [Float](repeating: -.infinity, count: layout.count)
            for (k, v) in w.floats().enumerated() {
                let c = layout.channel(of: k)
                lo[c] = min(lo[c], v); hi[c] = max(hi[c], v)
            }
            let reach = zip(lo, hi).map { Double(max(abs($0), abs($1))) }.filter(\.isFinite).sorted()
            let median = reach.isEmpty ? 0 : reach[reach.count / 2]
            layers.append(Layer(report: l, channelMin: lo, channelMax: hi, spread: median > 0 ? reach.last! / median : .infinity))
        }
        let producers = Dictionary(g.nodes.flatMap { n in n.outputs.map { ($0, n.displayName + " (\(n.opType))") } }, uniquingKeysWith: { a, _ in a })
        let order = g.inputs.map(\.name) + g.nodes.flatMap(\.outputs)
        var seen = Set<String>()
        for name in order where seen.insert(name).inserted {
            guard let s = calibrated.table.tensors[name], !s.histogram.isEmpty, s.count > 0, let p = quantized.activations[name] else { continue }
            let t = CalibrationMethod.allCases.map { ($0, CalibrationTable.threshold(s, method: $0, percentile: options.percentile, bits: options.activationBits)) }
            let chosen = t.first { $0.0 == options.method }!.1
            let step = p.scales.first ?? 0, zp = Float(p.zeroPoints.first ?? 0)
            let (clipped, sqnr) = Self.clippingEstimate(s, threshold: Double(chosen), step: Double(step))
            activations.append(Activation(tensor: name, producer: producers[name] ?? "input", statistics: s, thresholds: t, chosen: options.method,
                                          lo: (Float(p.qmin) - zp) * step, hi: (Float(p.qmax) - zp) * step, step: step,
                                          clippedPercent: clipped, estimatedSQNR: sqnr))
        }
    }

    /// Percent of the values above `threshold` and the estimated SQNR of quantizing them with that threshold and
    /// `step`, from the histogram alone (each bin's values taken as spread evenly over it).
    public static func clippingEstimate(_ s: TensorStatistics, threshold t: Double, step: Double) -> (Double, Double) {
        let bw = Double(s.binWidth), top = Double(s.absMax)
        var signal = 0.0, noise = 0.0, clipped = 0.0, total = 0.0
        for (i, n) in s.histogram.enumerated() where n > 0 {
            // The bin's values, taken as spread evenly over it (no value lies above max |x|); the share above t is clipped.
            let lo = Double(i) * bw, hi = Swift.max(lo, Swift.min(Double(i + 1) * bw, top)), c = (lo + hi) / 2
            let above = hi > lo ? Swift.min(Swift.max((hi - t) / (hi - lo), 0), 1) : (lo > t ? 1 : 0)
            total += n
            signal += n * c * c
            clipped += n * above
            let excess = Swift.max((Swift.max(t, lo) + hi) / 2 - t, 0)
            let clipNoise = n * above * excess * excess, roundNoise = n * (1 - above) * step * step / 12
            noise += clipNoise + roundNoise
        }
        return (total > 0 ? 100 * clipped / total : 0, noise > 0 ? 10 * log10(signal / noise) : .infinity)
    }

    static let methodColors: [CalibrationMethod: String] = [.max: "#555e6b", .percentile: "#1f77b4", .entropy: "#9467bd", .mse: "#2ca02c"]

    public var html: String {
        var page = HTMLPage(title: title)
        page.section("summary", "Summary", facts(summary))
        if !layers.isEmpty { page.section("weights", "Weights", weightsSection) }
        if !activations.isEmpty { page.section("activations", "Activations", activationsSection) }
        if !budget.isEmpty { page.section("budget", "Accuracy budget", budgetSection) }
        return page.html
    }

    var weightsSection: String {
        let ranked = layers.sorted { $0.report.weightSQNR < $1.report.weightSQNR }
        let gptq = layers.contains { $0.report.outputSQNRRounded != nil }
        var s = "<p class=\"note\">Each weighted layer's weights against their quantized values, lowest SQNR first. <b>Spread</b> is the widest output " +
            "channel's largest |w| over the median channel's: one per-tensor scale would give the median channel that many times fewer levels, " +
            "which is why depthwise layers need a scale per channel\(options.perChannel ? " (this run used one)" : " (this run used one per tensor)").</p>"
        var headers = ["layer", "op", "bits", "rounding", "channels", "weight SQNR dB", "spread"]
        if gptq { headers += ["output SQNR dB, nearest", "output SQNR dB, rounded"] }
        let rows = ranked.map { l -> [String] in
            var r = [l.report.node, l.report.op, "\(l.report.bits)", l.report.rounding.rawValue, "\(l.channelMin.count)", dB(l.report.weightSQNR),
                     l.spread.isFinite ? String(format: "%.1f×", l.spread) : "–"]
            if gptq { r += [l.report.outputSQNRNearest.map(dB) ?? "–", l.report.outputSQNRRounded.map(dB) ?? "–"] }
            return r
        }
        s += rankedTable(headers, rows, numeric: Set(2..<headers.count).subtracting([3]), what: "weighted layers") { sqnrClass(ranked[$0].report.weightSQNR) }
        s += "<p class=\"note\">Per output channel, the range of its weights (blue), in graph order; the dashed red lines are ± the layer's " +
            "largest |w|, the range a single per-tensor scale has to cover.</p><div class=\"grid\">"
        for l in layers {
            s += "<div class=\"card\"><h3>\(esc(l.report.node))</h3>"
                + Chart.channelRanges(min: l.channelMin.map(Double.init), max: l.channelMax.map(Double.init), label: "weight range per output channel of \(l.report.node)")
                + "<p>\(esc(l.report.op)), \(l.channelMin.count) channels, \(l.report.bits)-bit \(esc(l.report.rounding.rawValue)); weight SQNR \(dB(l.report.weightSQNR)) dB"
                + (l.spread.isFinite ? String(format: "; spread %.1f×", l.spread) : "")
                + (l.report.weightSQNR > 100 ? " (the float weights already lie on this grid)" : "") + "</p></div>"
        }
        return s + "</div>"
    }

    var activationsSection: String {
        let ranked = activations.sorted { $0.estimatedSQNR < $1.estimatedSQNR }
        let chosenName = options.method == .percentile ? "percentile \(num(options.percentile))" : options.method.rawValue
        var s = "<p class=\"note\">Each calibrated activation, the lowest estimated SQNR first: the chosen method here is <b>\(esc(chosenName))</b>. " +
            "Thresholds are on |x|; the estimate takes the clipping error above the chosen threshold and a uniform rounding error " +
            "(step²/12) below it, from the calibration histogram.</p>"
        let headers = ["tensor", "produced by", "min", "max"] + CalibrationMethod.allCases.map { "T \($0.rawValue)" }
            + ["range lo", "range hi", "clipped %", "est. SQNR dB"]
        let rows = ranked.map { a -> [String] in
            [a.tensor, a.producer, num(Double(a.statistics.min)), num(Double(a.statistics.max))] + a.thresholds.map { num(Double($0.value)) }
                + [num(Double(a.lo)), num(Double(a.hi)), String(format: "%.4f", a.clippedPercent), dB(a.estimatedSQNR)]
        }
        s += rankedTable(headers, rows, numeric: Set(2..<headers.count), what: "activations") { sqnrClass(ranked[$0].estimatedSQNR) }
        s += "<p class=\"note\">Histograms of |x| over the calibration images (log scale), in graph order. Lines: the threshold each method " +
            "would pick; the chosen one is solid and bold, and the shaded part is what it clips.</p>"
        s += "<div class=\"legend\">" + CalibrationMethod.allCases.map { "<span><i style=\"background:\(Self.methodColors[$0]!)\"></i>\($0.rawValue)</span>" }.joined() + "</div><div class=\"grid\">"
        for a in activations {
            let t = a.thresholds.first { $0.method == a.chosen }!.value
            // At most 190 bars: the bins up to the last non-empty one, summed in groups.
            let h = a.statistics.histogram, used = (h.lastIndex { $0 > 0 } ?? 0) + 1, groups = max(1, (used + 189) / 190)
            let counts = stride(from: 0, to: used, by: groups).map { h[$0..<min($0 + groups, used)].reduce(0, +) }
            let xMax = Double(counts.count * groups) * Double(a.statistics.binWidth)
            let markers = a.thresholds.map { (x: Double($0.value), color: Self.methodColors[$0.method]!, bold: $0.method == a.chosen) }
            s += "<div class=\"card\"><h3>\(esc(a.tensor))</h3>"
                + Chart.histogram(counts, xMax: xMax, markers: markers,
                                  shadeFrom: Double(t) < xMax ? Double(t) : nil, label: "histogram of |\(a.tensor)|")
                + "<div class=\"legend\">" + a.thresholds.map { m in
                    let v = "\(m.method.rawValue) \(num(Double(m.value), digits: 3))"
                    return "<span><i style=\"background:\(Self.methodColors[m.method]!)\"></i>\(m.method == a.chosen ? "<b>\(esc(v))</b>" : esc(v))</span>"
                }.joined() + "</div>"
                + "<p>\(esc(a.producer)); range [\(num(Double(a.lo), digits: 3)), \(num(Double(a.hi), digits: 3))], step \(num(Double(a.step), digits: 3)); "
                + String(format: "%.4f%% clipped; est. SQNR %@ dB", a.clippedPercent, dB(a.estimatedSQNR)) + "</p></div>"
        }
        return s + "</div>"
    }

    var budgetSection: String {
        func points(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "–" }
        // A model without class scores (a detector) has no drop or agreement: those columns are left out.
        let classes = budget.contains { $0.score.agreement != nil }
        return "<p class=\"note\">The moves of the accuracy budget (--max-drop, --min-sqnr), in order: each moved the layer that hurt most one step up, then " +
            "the model was evaluated again.</p>"
            + table(["step", "layer", "from", "to"] + (classes ? [budgetMeasure + " (points)", "agreement %"] : []) + ["output SQNR dB"],
                    budget.enumerated().map { k, s in
                        ["\(k + 1)", s.node, s.from, s.to] + (classes ? [points(s.score.drop), points(s.score.agreement)] : []) + [dB(s.score.sqnr)]
                    }, numeric: classes ? [0, 4, 5, 6] : [0, 4])
    }
}
