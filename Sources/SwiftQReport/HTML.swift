import Foundation
import SwiftQCore

/// One self-contained HTML page: inline CSS and SVG, no script, no font or image from anywhere. It opens from disk
/// in any browser; tables come sorted by what matters (damage first), since there is no script to sort them.
public struct HTMLPage {
    public let title: String
    var sections: [(id: String, heading: String, body: String)] = []

    public init(title: String) { self.title = title }

    /// A section with a heading (and an entry in the page's table of contents); `body` is HTML.
    public mutating func section(_ id: String, _ heading: String, _ body: String) {
        sections.append((id, heading, body))
    }

    public var html: String {
        var s = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(esc(title))</title>
            <style>\(Self.css)</style>
            </head><body>
            <header><h1>\(esc(title))</h1><p class="sub">written by swiftq \(esc(swiftqVersionLine))</p>
            <nav>\(sections.map { "<a href=\"#\($0.id)\">\(esc($0.heading))</a>" }.joined(separator: " · "))</nav></header>

            """
        for (id, heading, body) in sections { s += "<section id=\"\(id)\"><h2>\(esc(heading))</h2>\n\(body)\n</section>\n" }
        return s + "</body></html>\n"
    }

    static let css = """
        :root{--fg:#1d2430;--muted:#5f6b7a;--line:#d9dee5;--bg:#fff;--card:#f7f9fb;--accent:#c0392b}
        *{box-sizing:border-box}
        body{margin:0 auto;max-width:1280px;padding:20px 28px 60px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
        h1{font-size:22px;margin:0 0 2px}h2{font-size:18px;margin:34px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
        h3{font-size:13px;margin:0 0 4px;font-weight:600;overflow-wrap:anywhere}
        .sub{color:var(--muted);margin:0 0 8px}nav a{color:#2563a6;text-decoration:none}nav{font-size:13px}
        p.note{color:var(--muted);max-width:900px;margin:4px 0 10px}
        dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:0}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;overflow-wrap:anywhere}
        table{border-collapse:collapse;font-size:12.5px;margin:6px 0 10px}
        th,td{padding:3px 9px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
        th{background:var(--card);font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
        tr.bad td{background:#fdecea}tr.warn td{background:#fff6e0}
        .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
        .card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px 10px}
        .card p{margin:2px 0;font-size:12px;color:var(--muted)}
        svg.chart{display:block;width:100%;height:auto;background:#fff;border:1px solid var(--line);border-radius:4px}
        svg text{font:10px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:#5f6b7a}
        .legend{font-size:11.5px;color:var(--muted);margin-top:3px}.legend span{margin-right:10px;white-space:nowrap}
        .legend i{display:inline-block;width:10px;height:3px;vertical-align:middle;margin-right:3px}
        details{margin:0 0 10px}details summary{cursor:pointer;color:#2563a6;font-size:13px}
        .legend b{color:var(--fg)}.big{font-size:20px;font-weight:600}
        .kpis{display:flex;gap:28px;flex-wrap:wrap;margin:6px 0 4px}.kpis div{min-width:120px}.kpis span{display:block;color:var(--muted);font-size:12px}
        """
}

/// HTML-escaped text.
func esc(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}

/// A number for a page: 4 significant digits, no exponent for everyday magnitudes.
func num(_ v: Double, digits: Int = 4) -> String {
    if v.isNaN { return "–" }
    if v.isInfinite { return v > 0 ? "∞" : "−∞" }
    if v == 0 { return "0" }
    let a = abs(v)
    if a >= 1e5 || a < 1e-3 { return String(format: "%.\(digits - 1)e", v) }
    let decimals = max(0, digits - 1 - Int(floor(log10(a))))
    return String(format: "%.\(decimals)f", v)
}

func dB(_ v: Double) -> String { v.isFinite ? String(format: "%.1f", v) : (v > 0 ? "∞" : "−∞") }

/// A definition list of facts.
func facts(_ rows: [(String, String)]) -> String {
    "<dl class=\"facts\">" + rows.map { "<dt>\(esc($0.0))</dt><dd>\(esc($0.1))</dd>" }.joined() + "</dl>"
}

/// A table; `numeric` columns are right-aligned; `rowClass` may mark a row "bad" or "warn".
func table(_ headers: [String], _ rows: [[String]], numeric: Set<Int> = [], rowClass: (Int) -> String? = { _ in nil }) -> String {
    var s = "<table><thead><tr>" + headers.enumerated().map { "<th\(numeric.contains($0.offset) ? " class=\"n\"" : "")>\(esc($0.element))</th>" }.joined() + "</tr></thead><tbody>"
    for (i, r) in rows.enumerated() {
        s += "<tr\(rowClass(i).map { " class=\"\($0)\"" } ?? "")>" + r.enumerated().map { "<td\(numeric.contains($0.offset) ? " class=\"n\"" : "")>\(esc($0.element))</td>" }.joined() + "</tr>"
    }
    return s + "</tbody></table>"
}

/// The smallest of 1, 2, 5 times a power of ten at or above `v` (a chart's top: its fifths are round numbers).
func niceCeiling(_ v: Double) -> Double {
    guard v.isFinite, v > 0 else { return 1 }
    let p = pow(10, floor(log10(v)))
    return [1.0, 2, 5, 10].map { $0 * p }.first { $0 >= v * 0.9999 }!
}

/// How an SQNR reads in the report: "bad" below 20 dB, "warn" below 30 (table row classes; the bar colours follow).
func sqnrClass(_ db: Double) -> String? { db < 20 ? "bad" : db < 30 ? "warn" : nil }

/// A ranked table showing its first `visible` rows, the rest behind a disclosure (no script needed).
func rankedTable(_ headers: [String], _ rows: [[String]], numeric: Set<Int> = [], visible: Int = 10, what: String,
                 rowClass: @escaping (Int) -> String? = { _ in nil }) -> String {
    if rows.count <= visible + 2 { return table(headers, rows, numeric: numeric, rowClass: rowClass) }
    return table(headers, Array(rows.prefix(visible)), numeric: numeric, rowClass: rowClass)
        + "<details><summary>All \(rows.count) \(esc(what))</summary>" + table(headers, rows, numeric: numeric, rowClass: rowClass) + "</details>"
}

/// Inline SVG charts. Every data-bearing element has class "mark" (what the report check counts); axes and labels
/// do not.
enum Chart {
    static let width = 380.0, height = 150.0
    static let left = 46.0, right = 8.0, top = 8.0, bottom = 20.0
    static var plotW: Double { width - left - right }
    static var plotH: Double { height - top - bottom }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    static func svg(_ label: String, _ body: String, width w: Double = width, height h: Double = height) -> String {
        "<svg class=\"chart\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" role=\"img\" aria-label=\"\(esc(label))\"><title>\(esc(label))</title>\(body)</svg>"
    }

    static func text(_ x: Double, _ y: Double, _ s: String, anchor: String = "start") -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" text-anchor=\"\(anchor)\">\(esc(s))</text>"
    }

    static func frame() -> String {
        "<path d=\"M\(f(left)),\(f(top))V\(f(top + plotH))H\(f(left + plotW))\" fill=\"none\" stroke=\"#9aa5b1\" stroke-width=\"1\"/>"
    }

    /// A histogram of counts over [0, xMax] (log scale: bar height ∝ log10(1 + count)), with vertical markers.
    /// `shadeFrom` shades everything above that x (the values a threshold clips).
    static func histogram(_ counts: [Double], xMax: Double, markers: [(x: Double, color: String, bold: Bool)], shadeFrom: Double?, label: String) -> String {
        let peak = log10(1 + (counts.max() ?? 0))
        let bw = plotW / Double(max(counts.count, 1))
        func x(_ v: Double) -> Double { left + plotW * min(max(v / max(xMax, .leastNormalMagnitude), 0), 1) }
        var body = frame()
        if let s = shadeFrom, s < xMax {
            body += "<rect x=\"\(f(x(s)))\" y=\"\(f(top))\" width=\"\(f(left + plotW - x(s)))\" height=\"\(f(plotH))\" fill=\"#c0392b\" fill-opacity=\"0.07\"/>"
        }
        var d = ""
        for (i, c) in counts.enumerated() where c > 0 {
            let h = max(0.8, plotH * log10(1 + c) / max(peak, 1e-12))
            d += "M\(f(left + Double(i) * bw)),\(f(top + plotH))v-\(f(h))h\(f(max(bw, 0.6)))v\(f(h))z"
        }
        body += "<path class=\"mark\" d=\"\(d)\" fill=\"#4a6fa5\"/>"
        for m in markers.sorted(by: { !$0.bold && $1.bold }) {
            body += "<line class=\"mark\" x1=\"\(f(x(m.x)))\" x2=\"\(f(x(m.x)))\" y1=\"\(f(top))\" y2=\"\(f(top + plotH))\" stroke=\"\(m.color)\" stroke-width=\"\(m.bold ? 2.4 : 1.2)\"\(m.bold ? "" : " stroke-dasharray=\"4 2\"")/>"
        }
        body += text(left, height - 6, "0", anchor: "middle") + text(left + plotW, height - 6, num(xMax, digits: 3), anchor: "end")
            + text(left + plotW / 2, height - 6, "|x|", anchor: "middle")
            + text(left - 4, top + 8, "10^" + String(format: "%.1f", peak), anchor: "end") + text(left - 4, top + plotH, "1", anchor: "end")
        return svg(label, body)
    }

    /// Per output channel, a vertical segment from its smallest to its largest weight; dashed lines at ± the
    /// whole tensor's largest |w| (the range one per-tensor scale must cover).
    static func channelRanges(min lo: [Double], max hi: [Double], label: String) -> String {
        let m = max(zip(lo, hi).map { max(abs($0), abs($1)) }.max() ?? 0, .leastNormalMagnitude)
        func y(_ v: Double) -> Double { top + plotH * (1 - (v / m + 1) / 2) }
        let n = Double(max(lo.count, 1)), step = plotW / n
        var body = frame()
        body += "<line x1=\"\(f(left))\" x2=\"\(f(left + plotW))\" y1=\"\(f(y(0)))\" y2=\"\(f(y(0)))\" stroke=\"#9aa5b1\" stroke-width=\"0.6\"/>"
        for v in [m, -m] {
            body += "<line x1=\"\(f(left))\" x2=\"\(f(left + plotW))\" y1=\"\(f(y(v)))\" y2=\"\(f(y(v)))\" stroke=\"#c0392b\" stroke-width=\"1\" stroke-dasharray=\"5 3\"/>"
        }
        var d = ""
        for i in lo.indices {
            d += "M\(f(left + (Double(i) + 0.5) * step)),\(f(y(lo[i])))V\(f(y(hi[i])))"
        }
        body += "<path class=\"mark\" d=\"\(d)\" stroke=\"#4a6fa5\" stroke-width=\"\(f(min(max(step * 0.7, 0.5), 6)))\" fill=\"none\"/>"
        body += text(left - 4, y(m) + 3, num(m, digits: 2), anchor: "end") + text(left - 4, y(-m) + 3, num(-m, digits: 2), anchor: "end")
            + text(left - 4, y(0) + 3, "0", anchor: "end")
            + text(left, height - 6, "channel 0") + text(left + plotW, height - 6, "\(lo.count - 1)", anchor: "end")
        return svg(label, body)
    }

    /// Bars in order, each with its own tooltip; colour by `color(value)`; values clipped to [0, ceiling].
    static func bars(_ values: [(label: String, value: Double)], ceiling: Double, unit: String, color: (Double) -> String, label: String,
                     wide: Bool = true) -> String {
        let w = wide ? 1200.0 : width, h = 200.0
        let pw = w - left - right, ph = h - top - bottom
        let step = pw / Double(max(values.count, 1))
        var body = "<path d=\"M\(f(left)),\(f(top))V\(f(top + ph))H\(f(left + pw))\" fill=\"none\" stroke=\"#9aa5b1\"/>"
        for tick in stride(from: 0.0, through: ceiling * 1.0001, by: ceiling / 5) {
            let y = top + ph * (1 - tick / ceiling)
            body += "<line x1=\"\(f(left))\" x2=\"\(f(left + pw))\" y1=\"\(f(y))\" y2=\"\(f(y))\" stroke=\"#e3e7ec\"/>" + text(left - 4, y + 3, String(format: ceiling < 10 ? "%.1f" : "%.0f", tick), anchor: "end")
        }
        for (i, v) in values.enumerated() {
            let c = v.value.isNaN ? 0 : min(max(v.value, 0), ceiling)
            let bh = max(1, ph * c / ceiling)
            body += "<rect class=\"mark\" x=\"\(f(left + Double(i) * step + step * 0.1))\" y=\"\(f(top + ph - bh))\" width=\"\(f(max(step * 0.8, 0.5)))\" height=\"\(f(bh))\" fill=\"\(color(v.value))\">"
                + "<title>\(esc(v.label)): \(dB(v.value)) \(unit)</title></rect>"
        }
        body += text(left, h - 6, values.first.map { "← \($0.label)" } ?? "") + text(left + pw, h - 6, values.last.map { "\($0.label) →" } ?? "", anchor: "end")
        return svg(label, body, width: w, height: h)
    }
}
