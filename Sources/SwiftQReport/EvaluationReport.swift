import Foundation
import SwiftQCore
import SwiftQPipeline

/// `swiftq eval --report`: the models' top-1/top-5 and speed; with a float model and its int8 version, the drop,
/// the agreement, every output's fidelity and each int8 activation's SQNR against the float model in graph order.
public struct EvaluationReport {
    public struct ModelRow {
        public var name: String, top1: Double?, top5: Double?, imagesPerSecond: Double, runtime: String
    }

    public let title: String
    public var summary: [(String, String)]
    public var models: [ModelRow]
    /// With two models: the second's top-1 drop (nil without labels) and the agreement, over `compared` images.
    public var drop: Double?, agreement: Double?, compared = 0
    public var fidelity: [OutputFidelity.Row]
    /// Each activation's SQNR (dB) in the float model's graph order, and the node that computes it; over `sqnrImages` images.
    public var sqnr: [(tensor: String, node: String, db: Double)] = []
    public var sqnrImages = 0

    /// `summary` is what the console showed; `floatModel` (the first model) orders and names the activations.
    public init(summary: [(String, String)], runs: [ClassifierRun], result: EvaluationResult, floatModel: Model) {
        title = "swiftq eval: " + runs.map { PathNames.name(of: $0.path) }.joined(separator: " vs ")
        self.summary = summary
        models = runs.map {
            ModelRow(name: PathNames.name(of: $0.path), top1: $0.top1Percent, top5: $0.top5Percent,
                     imagesPerSecond: Double($0.images) / max($0.networkSeconds, 1e-9), runtime: $0.runtime)
        }
        if let c = result.comparison(runs) { (drop, agreement, compared) = (c.drop, c.agreement, c.images) }
        fidelity = result.fidelity.rows
        sqnrImages = result.sqnr.images
        let all = Dictionary(result.sqnr.lowest(.max).map { ($0.name, $0.db) }, uniquingKeysWith: { a, _ in a })
        for n in floatModel.graph.nodes {
            for o in n.outputs { if let db = all[o] { sqnr.append((o, n.displayName + " (\(n.opType))", db)) } }
        }
    }

    static func color(_ db: Double) -> String { ["bad": "#c0392b", "warn": "#e39b25"][sqnrClass(db) ?? ""] ?? "#3a8f5c" }

    public var html: String {
        var page = HTMLPage(title: title)
        page.section("summary", "Summary", facts(summary))
        var s = table(["model", "top-1 %", "top-5 %", "images/s", "runtime"], models.map {
            [$0.name, $0.top1.map { String(format: "%.2f", $0) } ?? "–", $0.top5.map { String(format: "%.2f", $0) } ?? "–",
             String(format: "%.1f", $0.imagesPerSecond), $0.runtime]
        }, numeric: [1, 2, 3])
        if let agreement {
            s += "<div class=\"kpis\">"
                + (drop.map { "<div><span>top-1 drop</span><b class=\"big\">\(String(format: "%.2f", $0)) points</b></div>" } ?? "")
                + "<div><span>top-1 agreement</span><b class=\"big\">\(String(format: "%.2f", agreement))%</b></div>"
                + "<div><span>images compared</span><b class=\"big\">\(compared)</b></div></div>"
        }
        page.section("accuracy", "Accuracy", s)
        if !fidelity.isEmpty {
            page.section("fidelity", "Output fidelity", "<p class=\"note\">Each output of the int8 model against the float model's, over every image.</p>"
                + table(["output", "SQNR dB", "cosine", "max |err|", "worst channel", "top-1 agreement %"], fidelity.map { r in
                    [r.name, dB(r.sqnr), String(format: "%.5f", r.cosine), num(r.maxAbsError),
                     r.worstChannel.map { "#\($0.index): \(dB($0.sqnr)) dB" } ?? "–", r.top1Agreement.map { String(format: "%.2f", $0) } ?? "–"]
                }, numeric: [1, 2, 3]))
        }
        if !sqnr.isEmpty {
            let ceiling = min(100, (max(40, sqnr.map(\.db).filter(\.isFinite).max() ?? 40) / 10).rounded(.up) * 10)
            let lowest = Array(sqnr.sorted { $0.db < $1.db }.prefix(20))
            page.section("sqnr", "Activation SQNR", "<p class=\"note\">Each int8 activation against the float model's tensor of the same name, "
                + "in graph order, over the first \(sqnrImages) images (hover a bar for its name). Red below 20 dB, amber below 30.</p>"
                + Chart.bars(sqnr.map { ($0.tensor, $0.db) }, ceiling: ceiling, unit: "dB", color: Self.color, label: "SQNR per activation in graph order")
                + "<p class=\"note\">The lowest \(lowest.count):</p>"
                + table(["tensor", "computed by", "SQNR dB"], lowest.map { [$0.tensor, $0.node, dB($0.db)] }, numeric: [2]) { sqnrClass(lowest[$0].db) })
        }
        return page.html
    }
}

/// `swiftq sensitivity --report`: the ranking, most damaging first, as a table and a chart of what moving each
/// layer up gains.
public struct SensitivityReport {
    public let title: String
    public var summary: [(String, String)]
    public var ranking: [LayerSensitivity]

    public init(model: String, summary: [(String, String)], ranking: [LayerSensitivity]) {
        title = "swiftq sensitivity: " + PathNames.name(of: model)
        self.summary = summary
        self.ranking = ranking
    }

    public var html: String {
        var page = HTMLPage(title: title)
        page.section("summary", "Summary", facts(summary))
        let gains = ranking.map { ($0.node, $0.gain) }
        let ceiling = niceCeiling(gains.map(\.1).filter(\.isFinite).max() ?? 1)
        func drop(_ s: VariantScore) -> String { s.top1Drop.map { String(format: "%.2f", $0) } ?? "–" }
        page.section("ranking", "Ranking", "<p class=\"note\">Layers ranked by the damage they do, most first. <b>Alone</b>: only this layer "
            + "quantized. <b>All but it</b>: everything quantized but this layer, which is one step up. <b>Gain</b>: the output SQNR that moving "
            + "it up wins over the fully quantized model.</p>"
            + Chart.bars(gains, ceiling: ceiling, unit: "dB gain", color: { _ in "#4a6fa5" }, label: "SQNR gain of moving each layer up, in rank order")
            + rankedTable(["rank", "layer", "op", "precision", "alone: SQNR dB", "alone: drop", "all but it: SQNR dB", "all but it: drop", "gain dB"],
                          ranking.enumerated().map { k, l in
                              ["\(k + 1)", l.node, l.op, l.precision, dB(l.alone.sqnr), drop(l.alone), dB(l.allBut.sqnr), drop(l.allBut), String(format: "%.2f", l.gain)]
                          }, numeric: [0, 4, 5, 6, 7, 8], what: "layers"))
        return page.html
    }
}
