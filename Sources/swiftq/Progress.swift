import Foundation
import SwiftQPipeline

/// Progress on standard error: a redrawn bar on a terminal, a plain line every 10% otherwise (logs, CI), and also
/// when NO_COLOR is set (no-color.org) or TERM is "dumb": then nothing but plain text reaches the terminal.
final class Progress {
    let label: String
    let total: Int
    let isTerminal = Progress.drawsBar(environment: ProcessInfo.processInfo.environment, terminal: isatty(STDERR_FILENO) != 0)

    /// Whether the bar is drawn with escape codes: on a terminal, unless NO_COLOR is set (to anything but "") or TERM
    /// is "dumb".
    static func drawsBar(environment: [String: String], terminal: Bool) -> Bool {
        terminal && (environment["NO_COLOR"] ?? "").isEmpty && environment["TERM"] != "dumb"
    }
    let start = DispatchTime.now().uptimeNanoseconds
    private var lastDraw: UInt64 = 0
    private var lastDecile = 0
    private var drawn = false

    /// What `total` counts, for the rate ("img/s", "layers/s").
    let unit: String

    init(_ label: String, total: Int, unit: String = "img") {
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
    }

    var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// Reports `done` of `total`; `detail` is appended (e.g. running accuracy).
    func update(_ done: Int, detail: String = "") {
        let now = DispatchTime.now().uptimeNanoseconds
        let rate = Double(done) / max(elapsed, 1e-9)
        if isTerminal {
            guard done == total || now - lastDraw > 100_000_000 else { return }
            lastDraw = now
            let width = 28
            let filled = width * done / total
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let eta = rate > 0 ? Double(total - done) / rate : 0
            let line = "\(label) \(bar) \(done)/\(total)  \(String(format: "%.1f", rate)) \(unit)/s  eta \(Self.clock(eta))\(detail.isEmpty ? "" : "  " + detail)"
            FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
            drawn = true
        } else {
            let decile = 10 * done / total
            guard decile > lastDecile else { return }
            lastDecile = decile
            FileHandle.standardError.write(Data("\(label): \(done)/\(total) (\(100 * done / total)%), \(String(format: "%.1f", rate)) \(unit)/s\(detail.isEmpty ? "" : ", " + detail)\n".utf8))
        }
    }

    /// Prints a message line without breaking the bar.
    func note(_ message: String) {
        clear()
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }

    /// Removes the bar (before the summary is printed).
    func clear() {
        if isTerminal && drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        drawn = false
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

extension Progress {
    /// A library job's events drawn on this bar: warnings as lines, progress as the bar (not when `quiet`).
    func events(quiet: Bool) -> ImageJobEvents {
        ImageJobEvents(warning: { self.note("swiftq: warning: \($0)") },
                       progress: { done, detail in if !quiet { self.update(done, detail: detail) } })
    }
}
