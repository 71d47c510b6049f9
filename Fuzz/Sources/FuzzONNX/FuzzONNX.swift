import FuzzSupport
import SwiftQCore
import SwiftQONNX

/// One input: bytes read as a ModelProto; whatever the reader accepts goes through validation, the checks a
/// job makes before work, shape inference with a small image input, and the report `inspect` prints.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let model = try? ONNXReader.read(bytes: bytes, path: "fuzz.onnx", baseDirectory: nil) else { return 0 }
    guard (try? model.validate(path: "fuzz.onnx")) != nil else { return 0 }
    try? model.checkRunnable(path: "fuzz.onnx")
    let shapes = Dictionary(model.graph.dataInputs.map { ($0.name, [1, 3, 8, 8]) }, uniquingKeysWith: { a, _ in a })
    try? model.checkTensorSizes(path: "fuzz.onnx", inputShapes: shapes, maxElements: 1 << 20)
    _ = ModelReport(model: model, inputShapes: shapes)
    _ = try? ONNXWriter.serialize(model)
    return 0
}

@_cdecl("FuzzONNX_main")
public func FuzzONNXMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv) { data, size in fuzzONNX(data!, size) }
}
