import FuzzSupport
import Foundation
import SwiftQImages

/// One input: bytes decoded as a JPEG or PNG (at most 4 megapixels, so a declared bomb is refused from its
/// header rather than run out of memory); a decoded image is preprocessed as eval and quantize do.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let limits = ImageLimits(maxPixels: 1 << 22)
    guard let image = try? RGBImage(encoded: Data(bytes: data, count: size), path: "fuzz", limits: limits) else { return 0 }
    precondition(image.pixels.count == image.width * image.height * 3 && image.width > 0 && image.height > 0)
    let p = Preprocessing.preset("torch", size: 16, resize: 18)!
    let (w, h) = p.resizedSize(width: image.width, height: image.height)
    if w * h <= Double(limits.maxPixels) { _ = p.tensor(image) }
    return 0
}

@_cdecl("FuzzImage_main")
public func FuzzImageMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv) { data, size in fuzzImage(data!, size) }
}
