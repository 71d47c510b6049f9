// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swiftq",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "swiftq", targets: ["swiftq"]),
        .library(name: "SwiftQCore", targets: ["SwiftQCore"]),
        .library(name: "SwiftQONNX", targets: ["SwiftQONNX"]),
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
        .target(name: "SwiftQCore"),
        .target(name: "SwiftQONNX", dependencies: ["SwiftQCore", "COnnx"]),
        .executableTarget(
            name: "swiftq",
            dependencies: [
                "SwiftQCore", "SwiftQONNX",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "SwiftQCoreTests", dependencies: ["SwiftQCore"]),
        .testTarget(name: "SwiftQONNXTests", dependencies: ["SwiftQONNX", "SwiftQCore"]),
    ],
    swiftLanguageModes: [.v6]
)
