// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swiftq",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "swiftq", targets: ["swiftq"]),
        .library(name: "SwiftQCore", targets: ["SwiftQCore"]),
        .library(name: "SwiftQONNX", targets: ["SwiftQONNX"]),
        .library(name: "SwiftQRuntime", targets: ["SwiftQRuntime"]),
        .library(name: "SwiftQImages", targets: ["SwiftQImages"]),
        .library(name: "SwiftQQuantize", targets: ["SwiftQQuantize"]),
        .library(name: "SwiftQCalibrate", targets: ["SwiftQCalibrate"]),
        .library(name: "SwiftQPipeline", targets: ["SwiftQPipeline"]),
        .library(name: "SwiftQReport", targets: ["SwiftQReport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // protoc-c output for /usr/include/onnx/onnx.proto (`make proto`) plus a small packing helper.
        // No Swift API: only SwiftQONNX imports it.
        .target(
            name: "COnnx",
            path: "Sources/COnnx",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("protobuf-c")]
        ),
        // Float kernels in C: GEMM micro-kernels for AVX-512 / AVX2 chosen at run time, im2col, depthwise.
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        // JPEG (TurboJPEG) and PNG (libpng) decoding to RGB. No Swift API: only SwiftQImages imports it.
        .target(name: "CImage", path: "Sources/CImage", cSettings: [.unsafeFlags(["-O2"])],
                linkerSettings: [.linkedLibrary("turbojpeg"), .linkedLibrary("png16")]),
        // Temporary-file cleanup on SIGINT/SIGTERM (signal-handler code belongs in C). Only SwiftQCore imports it.
        .target(name: "CSupport", path: "Sources/CSupport"),
        .target(name: "SwiftQCore", dependencies: ["CSupport"]),
        .target(name: "SwiftQImages", dependencies: ["CImage", "SwiftQCore"]),
        .target(name: "SwiftQKernels", dependencies: ["CKernels"]),
        .target(name: "SwiftQRuntime", dependencies: ["SwiftQCore", "SwiftQKernels"]),
        .target(name: "SwiftQONNX", dependencies: ["SwiftQCore", "COnnx", "CZlib"]),
        // zlib (CRC-32 and deflate for the int8 weight file). No Swift API of its own.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // Graph rewrites before quantization, one pass per file, each returning patches for the Rewriter.
        .target(name: "SwiftQPasses", dependencies: ["SwiftQCore", "SwiftQRuntime"]),
        // Streaming activation statistics (min/max, histograms) apart from the threshold methods.
        .target(name: "SwiftQCalibrate", dependencies: ["SwiftQCore", "CKernels"]),
        // The integer runtime: a Q/DQ model and its int8 weight file lowered to integer ops.
        .target(name: "SwiftQInteger", dependencies: ["SwiftQCore", "SwiftQKernels", "SwiftQONNX", "SwiftQRuntime"]),
        // Marks what to quantize and writes the Q/DQ graph and the int8 weight file.
        .target(name: "SwiftQQuantize", dependencies: ["SwiftQCore", "SwiftQONNX", "SwiftQPasses", "SwiftQCalibrate", "SwiftQRuntime", "SwiftQKernels", "CKernels"]),
        // Jobs over image folders: streaming decoded images into classifiers, scoring, preprocessing metadata.
        .target(name: "SwiftQPipeline", dependencies: ["SwiftQCore", "SwiftQKernels", "SwiftQRuntime", "SwiftQImages", "SwiftQInteger", "SwiftQONNX", "SwiftQPasses", "SwiftQQuantize"]),
        // The HTML reports (quantize/eval/sensitivity --report): inline SVG charts from the pipeline's results.
        .target(name: "SwiftQReport", dependencies: ["SwiftQCore", "SwiftQCalibrate", "SwiftQPasses", "SwiftQQuantize", "SwiftQPipeline"]),
        .executableTarget(
            name: "swiftq",
            dependencies: [
                "SwiftQCore", "SwiftQONNX", "SwiftQRuntime", "SwiftQImages", "SwiftQPipeline", "SwiftQPasses", "SwiftQCalibrate", "SwiftQQuantize", "SwiftQInteger", "SwiftQReport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "SwiftQCoreTests", dependencies: ["SwiftQCore"]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "SwiftQONNXTests", dependencies: ["SwiftQONNX", "SwiftQCore", "TestSupport"]),
        .testTarget(name: "SwiftQImagesTests", dependencies: ["SwiftQImages", "CImage", "TestSupport"]),
        .testTarget(name: "SwiftQKernelsTests", dependencies: ["SwiftQKernels", "CKernels"]),
        .testTarget(name: "SwiftQPipelineTests", dependencies: ["SwiftQPipeline", "SwiftQReport", "SwiftQImages", "SwiftQCore", "SwiftQInteger", "SwiftQONNX", "SwiftQQuantize", "SwiftQRuntime", "TestSupport", "CKernels"]),
        .testTarget(name: "SwiftQPassesTests", dependencies: ["SwiftQPasses", "SwiftQRuntime", "SwiftQCore", "TestSupport"]),
        .testTarget(name: "SwiftQCalibrateTests", dependencies: ["SwiftQCalibrate"]),
        .testTarget(name: "SwiftQQuantizeTests", dependencies: ["SwiftQQuantize", "SwiftQONNX", "SwiftQRuntime", "SwiftQCore", "SwiftQInteger", "TestSupport", "CKernels"]),
        .testTarget(name: "SwiftQRuntimeTests", dependencies: ["SwiftQRuntime", "SwiftQKernels", "SwiftQONNX", "SwiftQCore", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
