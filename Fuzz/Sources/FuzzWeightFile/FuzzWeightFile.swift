import FuzzSupport
import SwiftQONNX

/// One input: bytes read as a `.swq` int8 weight file. The file's own CRC-32 is set right first, so that the
/// fuzzer reaches the parser behind the checksum; a file that reads is written again and must read the same.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWeightFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if bytes.count >= 16 {
        bytes.removeLast(4)
        let crc = Int8WeightFile.crc(bytes)
        bytes += withUnsafeBytes(of: crc.littleEndian) { Array($0) }
    }
    guard let records = try? Int8WeightFile.read(bytes, path: "fuzz.swq") else { return 0 }
    if let again = try? Int8WeightFile.serialize(records) {
        let back = try? Int8WeightFile.read(again, path: "again.swq")
        precondition(back.flatMap { try? Int8WeightFile.serialize($0) } == again, "a weight file does not read back as written")
    }
    return 0
}

@_cdecl("FuzzWeightFile_main")
public func FuzzWeightFileMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv) { data, size in fuzzWeightFile(data!, size) }
}
