import CKernels

/// Everything calibration keeps about one tensor, whatever the number of images: the running min and max
/// and a histogram of |x| with `binCount` equal bins over [0, range). When a batch holds a larger |x|, the
/// range doubles as often as needed and pairs of bins merge, so every value seen so far stays counted in the
/// bin that holds it. Memory: `binCount` doubles.
public struct TensorStatistics: Codable, Sendable, Equatable {
    public static let binCount = 2048
    public var min: Float = .infinity
    public var max: Float = -.infinity
    /// Upper edge of the histogram (0 until a non-zero value is seen).
    public var range: Float = 0
    /// Values counted (NaNs in the last bin).
    public var count: Double = 0
    public var histogram: [Double] = Array(repeating: 0, count: TensorStatistics.binCount)
    /// Per channel (axis 1) sums and the values counted per channel, when asked for (inputs of weighted
    /// layers: their means correct the bias shift weight rounding causes).
    public var channelSums: [Double]?
    public var channelCount: Double?

    /// The mean of each channel (axis 1), when channel sums were collected.
    public var channelMeans: [Double]? {
        guard let s = channelSums, let n = channelCount, n > 0 else { return nil }
        return s.map { $0 / n }
    }

    public init() {}

    /// Statistics with a given histogram array (empty: only channel sums are kept).
    public init(histogram: [Double]) { self.histogram = histogram }

    public var binWidth: Float { range / Float(histogram.count) }
    public var absMax: Float { Swift.max(abs(min), abs(max)) }

    /// Adds `values`, using up to `threads` threads.
    public mutating func add(_ values: UnsafeBufferPointer<Float>, threads: Int = 1) {
        guard let base = values.baseAddress, !values.isEmpty else { return }
        var lo: Float = 0, hi: Float = 0
        sq_minmax_parallel(base, values.count, &lo, &hi, Int32(threads))
        min = Swift.min(min, lo)
        max = Swift.max(max, hi)
        let a = Swift.max(abs(lo), abs(hi))
        if a > range {
            if range == 0 {
                range = a
            } else {
                var factor = 1
                while range * Float(factor) < a { factor *= 2 }
                rebin(by: factor)
            }
        }
        if range > 0 {
            let bins = histogram.count
            histogram.withUnsafeMutableBufferPointer { h in
                sq_histogram_abs_parallel(base, values.count, Float(bins) / range, Int32(bins), h.baseAddress!, Int32(threads))
            }
        } else {
            histogram[0] += Double(values.count)
        }
        count += Double(values.count)
    }

    /// Adds per-channel sums of `values` laid out [outer, channels, inner].
    public mutating func addChannelSums(_ values: UnsafeBufferPointer<Float>, outer: Int, channels: Int, inner: Int) {
        guard let base = values.baseAddress, outer * channels * inner == values.count, channels > 0 else { return }
        if channelSums?.count != channels { channelSums = Array(repeating: 0, count: channels); channelCount = 0 }
        channelSums!.withUnsafeMutableBufferPointer { sq_channel_sums(base, Int32(outer), Int32(channels), inner, $0.baseAddress!) }
        channelCount! += Double(outer * inner)
    }

    /// Widens the range `factor` times (a power of two): bins i·factor ..< (i+1)·factor become bin i.
    mutating func rebin(by factor: Int) {
        guard factor > 1 else { return }
        var merged = [Double](repeating: 0, count: histogram.count)
        for (i, c) in histogram.enumerated() { merged[i / factor] += c }
        histogram = merged
        range *= Float(factor)
    }
}
