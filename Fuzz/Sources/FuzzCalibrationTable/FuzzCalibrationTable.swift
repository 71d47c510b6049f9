import Foundation
import FuzzSupport
import SwiftQCalibrate
import SwiftQQuantize

/// One input: bytes read as a `.calib.json`; an accepted table is written back, read again, and its ranges
/// computed by every method.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCalibrationTable(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let table = try? CalibrationTable(json: Data(bytes), path: "fuzz.calib.json") else { return 0 }
    guard let again = try? CalibrationTable(json: Data(table.encoded()), path: "again.calib.json") else {
        fatalError("a table that was accepted does not read back after encoding")
    }
    for method in CalibrationMethod.allCases {
        _ = again.ranges(method: method, percentile: 99.99, bits: 8)
    }
    return 0
}

@_cdecl("FuzzCalibrationTable_main")
public func FuzzCalibrationTableMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv) { data, size in fuzzCalibrationTable(data!, size) }
}
