import Foundation
import SwiftQCore
import SwiftQImages

extension Preprocessing {
    /// The `metadata_props` key under which `swiftq quantize` records the preprocessing it calibrated with.
    public static let metadataKey = "swiftq.preprocessing"

    /// The preprocessing recorded in a model's metadata, if any (nil when absent or unreadable).
    public init?(metadataOf model: Model) {
        guard let text = model.metadataProps.last(where: { $0.key == Self.metadataKey })?.value,
              let p = try? JSONDecoder().decode(Preprocessing.self, from: Data(text.utf8)),
              p.mean.count == 3, p.std.count == 3, p.size > 0, p.resize >= p.size, [nil, 1, 3].contains(p.channels) else { return nil }
        self = p
    }

    /// JSON for `metadata_props`.
    public var metadataValue: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// One line for the console: "caffe-like: BGR, resize 256, crop 224, (x/1 - [104, 117, 123]) / [1, 1, 1]".
    public var summary: String {
        func list(_ v: [Float]) -> String { "[" + v.map { $0 == $0.rounded() ? String(Int($0)) : String($0) }.joined(separator: ", ") + "]" }
        let scale = divisor == 1 ? "x" : "x/\(divisor == divisor.rounded() ? String(Int(divisor)) : String(divisor))"
        let kind = channels == 1 ? "grey" : bgr ? "BGR" : "RGB"
        let side = width.map { "\(size)x\($0)" } ?? "\(size)"
        let placing = switch mode {
        case .crop: "resize \(resize), crop \(side)"
        case .squash: "squash to \(side)"
        case .letterbox: "letterbox \(side) (pad \(padValue.map { String(Int($0)) } ?? "114"))"
        case .fit32: "shorter side \(size), sides to multiples of 32"
        }
        return "\(kind)\(isNHWC ? " NHWC" : ""), \(placing), (\(scale) - \(list(mean))) / \(list(std))"
    }
}
