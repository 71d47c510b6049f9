import FuzzSupport
import SwiftQONNX

/// One input: bytes read as a NumPy `.npy` array or `.npz` archive (calibration arrays), with a small element
/// limit so that a shape the fuzzer inflates is refused, not allocated. What reads must hold the bytes its shape says.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNumpy(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let arrays = try? NumpyFile.read(bytes: bytes, path: "fuzz", maxElements: 1 << 20) else { return 0 }
    for (_, t) in arrays {
        precondition(t.elementCount <= 1 << 20, "an array past the element limit was read")
        precondition(t.bytes.count == t.elementCount * (t.dtype.byteSize ?? 0), "an array's bytes do not match its shape")
    }
    return 0
}

@_cdecl("FuzzNumpy_main")
public func FuzzNumpyMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv) { data, size in fuzzNumpy(data!, size) }
}
