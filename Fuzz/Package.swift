// swift-tools-version:6.0
// libFuzzer targets for swiftq's readers of untrusted bytes. Kept apart from the main package, because they are
// built with -sanitize=fuzzer and -parse-as-library (libFuzzer supplies main). `make fuzz` builds and runs them.
import PackageDescription

let package = Package(
    name: "swiftq-fuzz",
    dependencies: [.package(name: "swiftq", path: "..")],
    targets: [
        .target(name: "FuzzSupport"),
        // The ONNX reader, then validation, the checks before work and shape inference on what it accepted.
        .executableTarget(name: "FuzzONNX", dependencies: ["FuzzSupport",
            .product(name: "SwiftQONNX", package: "swiftq"), .product(name: "SwiftQCore", package: "swiftq"),
        ]),
        // The calibration table reader (JSON, then the checks of impossible statistics).
        .executableTarget(name: "FuzzCalibrationTable", dependencies: ["FuzzSupport",
            .product(name: "SwiftQQuantize", package: "swiftq"), .product(name: "SwiftQCalibrate", package: "swiftq"),
        ]),
        // The int8 weight file reader (its checksum set right, so the parser behind it is reached), then a round trip.
        .executableTarget(name: "FuzzWeightFile", dependencies: ["FuzzSupport", .product(name: "SwiftQONNX", package: "swiftq")]),
        // NumPy .npy arrays and .npz archives (calibration data for non-image inputs).
        .executableTarget(name: "FuzzNumpy", dependencies: ["FuzzSupport", .product(name: "SwiftQONNX", package: "swiftq")]),
        // The JPEG and PNG decoders (libjpeg-turbo, libpng and our conversion), then preprocessing.
        .executableTarget(name: "FuzzImage", dependencies: ["FuzzSupport", .product(name: "SwiftQImages", package: "swiftq")]),
    ],
    swiftLanguageModes: [.v6]
)
