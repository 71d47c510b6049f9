import Foundation
import SwiftQCalibrate
import SwiftQCore
import SwiftQRuntime

/// The readable artifact of calibration: per tensor, the running statistics after all images. Thresholds
/// for any method come from it without running the images again (`--calib-table`).
public struct CalibrationTable: Codable, Sendable {
    public var format = "swiftq-calibration"
    public var version = 1
    /// The model the statistics belong to (its file name) and the images that went in.
    public var model: String
    public var images: Int
    public var skipped: Int
    /// The preprocessing used (the JSON `swiftq eval` reads from model metadata).
    public var preprocessing: String?
    public var tensors: [String: TensorStatistics]

    public init(model: String, images: Int, skipped: Int, preprocessing: String?, tensors: [String: TensorStatistics]) {
        self.model = model
        self.images = images
        self.skipped = skipped
        self.preprocessing = preprocessing
        self.tensors = tensors
    }

    /// The real range [lo, hi] of each tensor under `method`.
    public func ranges(method: CalibrationMethod, percentile: Double, bits: Int) -> [String: (lo: Float, hi: Float)] {
        var r: [String: (lo: Float, hi: Float)] = [:]
        for (name, s) in tensors where !s.histogram.isEmpty {
            let oneSided = s.min >= 0
            let levels = oneSided ? (1 << bits) - 1 : ((1 << bits) - 1) / 2
            let t = method.threshold(s, percentile: percentile, levels: levels)
            r[name] = (Swift.max(s.min, -t), Swift.min(s.max, t))
        }
        return r
    }
}

/// Feeds every produced value whose name is in `names` into its statistics, in one pass per image.
public final class ActivationCollector: @unchecked Sendable {
    public private(set) var statistics: [String: TensorStatistics]
    /// Threads the statistics of one large tensor are split over.
    public var threads = 1

    /// Tensors whose per-channel means are kept too (inputs of weighted layers, for bias correction).
    public let channelStatistics: Set<String>

    /// Full statistics for `names`; per-channel means also for `channelStatistics` (only those, for a tensor
    /// not in `names`).
    public init(names: [String], channelStatistics: Set<String> = []) {
        statistics = Dictionary(uniqueKeysWithValues: names.map { ($0, TensorStatistics()) })
        histogrammed = Set(names)
        for c in channelStatistics where statistics[c] == nil { statistics[c] = TensorStatistics(histogram: []) }
        self.channelStatistics = channelStatistics
    }

    private let histogrammed: Set<String>

    /// For `Interpreter.run(_:observe:)`.
    public func observe(_ name: String, _ t: RTensor) {
        guard statistics[name] != nil, t.dtype == .float else { return }
        let values = UnsafeBufferPointer(start: t.f, count: t.count)
        if histogrammed.contains(name) { statistics[name]!.add(values, threads: threads) }
        if channelStatistics.contains(name), t.rank >= 2 {
            statistics[name]!.addChannelSums(values, outer: t.shape[0], channels: t.shape[1], inner: t.shape[2...].reduce(1, *))
        }
    }
}
