import ArgumentParser
import Foundation
import SwiftQCore
import SwiftQInteger
import SwiftQKernels
import SwiftQONNX
import SwiftQPipeline
import SwiftQRuntime

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the network alone: batch-1 runs of a model on a fixed input, as images/s.",
        discussion: """
            The input is deterministic pseudo-random data in [-1, 1) of the model's input shape (dynamic \
            dimensions: batch 1, others from --input-shape). After --warmup runs, the model runs for \
            --seconds (at least --min-runs times); the median and best run times are reported (--json also lists \
            every timed run, run_ms, in order: the spread shows a shared machine's slow phases). --profile adds \
            the time per op type and the slowest nodes; on the float runtime each Conv/Gemm/MatMul also gets its \
            GFLOP/s and the fraction of this machine's peak (fused multiply-adds measured on --threads threads), \
            and --json lists every node (its mean and best time per run). A swiftq int8 model whose weight \
            file (OUT.swq) lies beside it runs on the integer runtime, as `swiftq eval` runs it.
            """
    )

    @Argument(help: "The ONNX model file.")
    var model: String

    @Option(name: .long, help: ArgumentHelp("Fix an input's shape, e.g. x=1x3x48x192 (repeatable).", valueName: "name=shape"))
    var inputShape: [InputShape] = []

    @Option(parsing: .unconditional, help: ArgumentHelp("Threads for the network (default: all cores).", valueName: "n"))
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(parsing: .unconditional, help: ArgumentHelp("Untimed runs first.", valueName: "n"))
    var warmup = 5

    @Option(parsing: .unconditional, help: ArgumentHelp("Time to spend measuring.", valueName: "seconds"))
    var seconds = 3.0

    @Option(parsing: .unconditional, help: ArgumentHelp("Measure at least this many runs.", valueName: "n"))
    var minRuns = 10

    @Flag(help: "Print the time per op type and the slowest nodes.")
    var profile = false

    @Option(parsing: .unconditional, help: ArgumentHelp("With --profile, how many of the slowest nodes to list.", valueName: "n"))
    var profileNodes = 15

    @Option(help: ArgumentHelp("Write the results as JSON to this file ('-' for standard output).", valueName: "file"))
    var json: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Refuse a model in which any tensor would hold more values than this, checked before anything is allocated.", valueName: "n"))
    var maxTensorElements: Int = Model.defaultMaxTensorElements

    /// Each data input's shape: --input-shape, else the declared one with a free batch as 1.
    func benchInputShapes(_ m: Model) throws -> [String: [Int]] {
        let fixed = Dictionary(inputShape.map { ($0.name, $0.dims) }, uniquingKeysWith: { $1 })
        var shapes: [String: [Int]] = [:]
        for v in m.graph.dataInputs {
            let dims = v.shape ?? []
            shapes[v.name] = try fixed[v.name] ?? dims.enumerated().map { k, d in
                if let x = d.value, x != -1 {
                    if x <= 0 { throw CLIError(message: "\(model): input '\(v.name)' declares dimension \(k) as \(x); pass --input-shape \(v.name)=...") }
                    return x
                }
                if k == 0 { return 1 }
                throw CLIError(message: "\(model): input '\(v.name)' has a dynamic dimension \(k); pass --input-shape \(v.name)=...")
            }
        }
        return shapes
    }

    func validate() throws {
        if threads <= 0 { throw ValidationError("--threads must be positive") }
        if seconds < 0 || warmup < 0 || minRuns <= 0 { throw ValidationError("--seconds, --warmup and --min-runs must not be negative") }
    }

    func run() throws {
        try failing {
            let outputs = OutputFiles(inputs: [model])
            let m = try ONNXReader.read(path: model, externalFile: outputs.addInput)
            try reserve(json, role: "--json", in: outputs)
            try m.checkRunnable(path: model)
            let shapes = try benchInputShapes(m)
            try m.checkTensorSizes(path: model, inputShapes: shapes, maxElements: maxTensorElements)
            var options = Interpreter.Options(threads: threads)
            options.profile = profile
            let interp = try naming(model) { try Interpreter(model: executionModel(m), options: options) }
            let (integer, warning) = try IntegerProgram.beside(modelPath: model, model: m)
            integer?.threads = threads
            integer?.profile = profile
            if let warning { printWarning(warning) }
            let runtime = integer == nil ? "float" : "integer"
            let run = { (feeds: [String: RTensor]) throws in _ = try integer?.run(feeds) ?? interp.run(feeds) }
            var feeds: [String: RTensor] = [:]
            var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
            for v in m.graph.dataInputs {
                let shape = shapes[v.name]!
                let t = RTensor(dtype: .float, shape: shape)
                for i in 0..<t.count {
                    seed = seed &* 6364136223846793005 &+ 1442695040888963407
                    t.f[i] = Float(Int64(bitPattern: seed) >> 40) / Float(1 << 23)
                }
                feeds[v.name] = t
            }
            for _ in 0..<warmup { try run(feeds) }
            var times: [Double] = []
            let start = DispatchTime.now().uptimeNanoseconds
            while times.count < minRuns || Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try run(feeds)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            let sorted = times.sorted()
            let median = sorted[sorted.count / 2], best = sorted[0]
            // Per node of the float runtime, per run: time, multiply-accumulates, GFLOP/s.
            let runs = Double(times.count + warmup)
            let nodes = integer == nil && profile ? interp.nodeProfile.map { n in
                (node: n.node, op: n.opType, shape: n.shape, ms: n.seconds / runs * 1000, bestMs: n.best * 1000, macs: n.macs, gflops: n.seconds > 0 ? Double(2 * n.macs) * runs / n.seconds / 1e9 : 0)
            } : []
            // Per step of the integer runtime, per run after the first: total, mean and best time.
            let stepRuns = Double(times.count + warmup - 1)
            let steps = integer.map { p in
                profile ? p.stepSeconds.map { (label: $0.key, seconds: $0.value, ms: $0.value / stepRuns * 1000, bestMs: (p.stepBest[$0.key] ?? 0) * 1000) } : []
            } ?? []
            let macs = nodes.reduce(0) { $0 + $1.macs }
            let peak = nodes.isEmpty ? nil : PeakThroughput.measure(threads: threads)
            if json != "-" {
                print("\(model) (\(runtime) runtime): \(times.count) runs, \(threads) threads: median \(String(format: "%.2f", median * 1000)) ms (\(String(format: "%.1f", 1 / median)) images/s), best \(String(format: "%.2f", best * 1000)) ms")
                if profile, let integer {
                    let total = steps.reduce(0) { $0 + $1.seconds }
                    var byOp: [String: Double] = [:]
                    for s in steps { byOp[String(s.label.split(separator: " ")[0]), default: 0] += s.seconds }
                    for (op, t) in byOp.sorted(by: { $0.value > $1.value }) {
                        print("  \(op.padding(toLength: 22, withPad: " ", startingAt: 0)) \(String(format: "%7.3f", t / stepRuns * 1000)) ms  \(String(format: "%5.1f", 100 * t / total))%")
                    }
                    print(String(format: "  8-bit activations in %.2f MiB of buffers", Double(integer.activationBytes) / 1048576))
                    print("  slowest steps:")
                    for s in steps.sorted(by: { $0.seconds > $1.seconds }).prefix(profileNodes) {
                        print("  \(String(format: "%7.3f", s.ms)) ms (best \(String(format: "%.3f", s.bestMs)))  \(s.label)")
                    }
                } else if profile {
                    let total = interp.profile.values.reduce(0, +)
                    for (op, t) in interp.profile.sorted(by: { $0.value > $1.value }) {
                        print("  \(op.padding(toLength: 22, withPad: " ", startingAt: 0)) \(String(format: "%7.2f", t / runs * 1000)) ms  \(String(format: "%5.1f", 100 * t / total))%")
                    }
                    print(String(format: "  peak %.1f GFLOP/s on %d threads (fused multiply-adds measured); whole network %.1f GFLOP/s (%.0f%%)",
                                 peak! / 1e9, threads, Double(2 * macs) / median / 1e9, 100 * Double(2 * macs) / median / peak!))
                    print("  slowest nodes:")
                    for n in nodes.sorted(by: { $0.ms > $1.ms }).prefix(profileNodes) {
                        let rate = n.macs > 0 ? String(format: "  %6.1f GFLOP/s %3.0f%% of peak", n.gflops, 100 * n.gflops * 1e9 / peak!) : ""
                        print("  \(String(format: "%7.3f", n.ms)) ms  \(n.op) \(n.node) → \(n.shape.map(String.init).joined(separator: "x"))\(rate)")
                    }
                }
            }
            if let json {
                var o: [String: Any] = ["model": model, "runtime": runtime, "threads": threads, "runs": times.count, "median_ms": median * 1000, "best_ms": best * 1000,
                                        "images_per_second": 1 / median, "buffer_bytes": integer?.activationBytes ?? interp.context.pool.freeBytes,
                                        "run_ms": times.map { $0 * 1000 }]
                if let peak {
                    o["peak_gflops"] = peak / 1e9
                    o["macs"] = macs
                    o["nodes"] = nodes.map { ["node": $0.node, "op": $0.op, "shape": $0.shape, "ms": $0.ms, "best_ms": $0.bestMs, "macs": $0.macs, "gflops": $0.gflops] as [String: Any] }
                }
                if profile, integer != nil { o["steps"] = steps.map { ["step": $0.label, "ms": $0.ms, "best_ms": $0.bestMs] as [String: Any] } }
                try writeJSON(o, to: json, outputs: outputs)
            }
            try outputs.commit()
        }
    }
}
