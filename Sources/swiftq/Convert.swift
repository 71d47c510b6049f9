import ArgumentParser
import Foundation
import SwiftQCore
import SwiftQONNX

extension ExternalDataPolicy: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "auto": self = .auto
        case "always": self = .always
        case "never": self = .never
        default: return nil
        }
    }

    public static var allValueStrings: [String] { ["auto", "always", "never"] }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a model and write it back through swiftq's IR (checks the reader and writer; moves tensors to or from external data).",
        discussion: "The output is written atomically: on any error no output file is left behind."
    )

    @Argument(help: "The ONNX model file to read.")
    var model: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the model.", valueName: "file"))
    var output: String

    @Option(name: .long, help: "Tensor storage: auto (external only when over 2 GB), always (tensors of 1 KiB or more in <output>.data), never.")
    var externalData: ExternalDataPolicy = .auto

    func run() throws {
        try failing {
            let outputs = OutputFiles(inputs: [model])
            let m = try ONNXReader.read(path: model, externalFile: outputs.addInput)
            try ONNXWriter.write(m, to: output, externalData: externalData, outputs: outputs, role: "--output")
            try outputs.commit()
            let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            print("wrote \(output) (\(humanBytes(size)), \(m.graph.nodes.count) nodes, \(m.graph.initializers.count) initializers)")
        }
    }
}
