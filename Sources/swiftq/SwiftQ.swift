import ArgumentParser
import SwiftQCore

@main
struct SwiftQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftq",
        abstract: "Post-training int8 quantization for ONNX convolutional networks.",
        discussion: """
            Exit codes: 0 success; 2 a model, image or output file could not be used (the message names it); \
            64 the command line itself is wrong.
            """,
        version: swiftqVersionLine,
        subcommands: [Quantize.self, Eval.self, Sensitivity.self, Inspect.self, Bench.self, Convert.self]
    )
}
