import ArgumentParser
import Foundation
import SwiftQCore
import SwiftQONNX

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what is in an ONNX model: inputs, outputs, ops, parameters, MACs and what can be quantized.",
        discussion: """
            MACs are multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul for one image: leading \
            symbolic dimensions (batch) count as 1. A model with other dynamic dimensions (a variable width) \
            needs --input-shape to count them.
            """
    )

    @Argument(help: "The ONNX model file.")
    var model: String

    @Option(name: .long, help: ArgumentHelp("Fix an input's shape, e.g. x=1x3x48x192 (repeatable).", valueName: "name=shape"))
    var inputShape: [InputShape] = []

    @Option(name: .long, help: ArgumentHelp("Also write the facts as JSON to this file ('-' for standard output).", valueName: "file"))
    var json: String?

    @Flag(name: .shortAndLong, help: "List every node's MACs and quantization role.")
    var verbose = false

    func run() throws {
        try failing {
            let outputs = OutputFiles(inputs: [self.model])
            let model = try ONNXReader.read(path: self.model, externalFile: outputs.addInput)
            try reserve(json, role: "--json", in: outputs)
            let known = Set(model.graph.dataInputs.map(\.name))
            if let bad = inputShape.first(where: { !known.contains($0.name) }) {
                throw CLIError(message: "--input-shape names '\(bad.name)', which is not an input of \(self.model) (inputs: \(known.sorted().joined(separator: ", ")))")
            }
            let report = ModelReport(model: model, inputShapes: Dictionary(inputShape.map { ($0.name, $0.dims) }, uniquingKeysWith: { $1 }))
            if json != "-" { print(text(report, model: model)) }
            if let json { try writeJSON(jsonObject(report), to: json, outputs: outputs) }
            try outputs.commit()
        }
    }

    func listed(_ counts: [(op: String, count: Int)]) -> String { counts.map { "\($0.op) \($0.count)" }.joined(separator: ", ") }

    func text(_ r: ModelReport, model: Model) -> String {
        var lines: [String] = []
        func row(_ k: String, _ v: String) { lines.append(factLine(k, v)) }
        row("model", "\(self.model) (\(humanBytes(fileSize(self.model))))")
        row("producer", r.producer.isEmpty ? "-" : r.producer + (r.producerVersion.isEmpty ? "" : " \(r.producerVersion)"))
        row("IR version", "\(r.irVersion)")
        row("opsets", r.opsets.map { "\($0.domain.isEmpty ? "ai.onnx" : $0.domain) \($0.version)" }.joined(separator: ", "))
        for (i, v) in r.inputs.enumerated() { row(i == 0 ? "inputs" : "", "\(v.name)  \(v.dtype) \(shapeText(v.shape))") }
        for (i, v) in r.outputs.enumerated() { row(i == 0 ? "outputs" : "", "\(v.name)  \(v.dtype) \(shapeText(v.shape))") }
        row("nodes", "\(r.nodeCount): " + listed(r.ops))
        row("parameters", "\(humanCount(r.parameters)) (\(humanBytes(r.parameterBytes)))")
        if r.macsByNode.isEmpty && r.uncountedNodes.isEmpty {
            row("MACs", "0 (no Conv, ConvTranspose, Gemm or MatMul)")
        } else if let m = r.macs {
            var byOp: [String: Int] = [:]
            for c in r.macsByNode { byOp[c.opType, default: 0] += c.macs }
            row("MACs", "\(humanCount(m)) per image (" + byOp.sorted { $0.value > $1.value }.map { "\($0.key) \(humanCount($0.value))" }.joined(separator: ", ") + ")")
        } else {
            row("MACs", "unknown: \(r.uncountedNodes.count) nodes have shapes that depend on dynamic input dimensions; pass --input-shape")
        }
        let weighted = r.quantizable.filter { $0.role == .weighted }, act = r.quantizable.filter { $0.role == .activation }
        func histogram(_ ns: [ModelReport.QuantizableNode]) -> String { listed(ModelReport.counted(ns.map(\.opType))) }
        row("quantizable", "\(weighted.count) with int8 weights (\(histogram(weighted))), \(act.count) on int8 activations (\(histogram(act))), "
            + "\(r.floatNodeCount) stay float" + (r.floatOps.isEmpty ? "" : " (\(listed(r.floatOps)))"))
        if !r.customOps.isEmpty { row("custom ops", r.customOps.joined(separator: ", ")) }
        for p in r.problems { row("warning", p) }
        if verbose {
            lines.append("")
            let macs = Dictionary(r.macsByNode.map { ($0.node, $0.macs) }, uniquingKeysWith: { a, _ in a })
            let roles = Dictionary(r.quantizable.map { ($0.node, $0.role) }, uniquingKeysWith: { a, _ in a })
            for n in model.graph.nodes {
                let out = n.outputs.first.flatMap { r.facts[$0] }
                let m = macs[n.displayName].map { "  \(humanCount($0)) MACs" } ?? ""
                lines.append("  \(n.opType.padding(toLength: 20, withPad: " ", startingAt: 0)) \(n.displayName)  → \(shapeText(out?.shape))  [\((roles[n.displayName] ?? .float).rawValue)]\(m)")
            }
        }
        return lines.joined(separator: "\n")
    }

    func jsonObject(_ r: ModelReport) -> [String: Any] {
        var byOp: [String: Int] = [:]
        for c in r.macsByNode { byOp[c.opType, default: 0] += c.macs }
        return [
            "path": model,
            "producer": r.producer,
            "producer_version": r.producerVersion,
            "ir_version": r.irVersion,
            "opset": r.opsets.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version ?? 0,
            "opsets": r.opsets.map { ["domain": $0.domain, "version": $0.version] as [String: Any] },
            "inputs": r.inputs.map { ["name": $0.name, "dtype": $0.dtype, "shape": shapeJSON($0.shape)] as [String: Any] },
            "outputs": r.outputs.map { ["name": $0.name, "dtype": $0.dtype, "shape": shapeJSON($0.shape)] as [String: Any] },
            "nodes": r.nodeCount,
            "ops": Dictionary(r.ops.map { ($0.op, $0.count) }, uniquingKeysWith: { a, _ in a }),
            "parameters": r.parameters,
            "parameter_bytes": r.parameterBytes,
            "macs": r.macs.map { $0 as Any } ?? NSNull(),
            "macs_by_op": byOp,
            "macs_uncounted_nodes": r.uncountedNodes,
            "quantizable": [
                "weighted": r.quantizable.filter { $0.role == .weighted }.map(\.node),
                "activation": r.quantizable.filter { $0.role == .activation }.map(\.node),
                "float_count": r.floatNodeCount,
                "float_ops": Dictionary(uniqueKeysWithValues: r.floatOps.map { ($0.op, $0.count) }),
            ] as [String: Any],
            "custom_ops": r.customOps,
            "shape_problems": r.problems,
        ]
    }
}
