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
    /// Values counted (infinities and NaN in the last bin).
    public var count: Double = 0
    /// How many of them were infinite or NaN (nil: none); min, max and range leave them out.
    public var nonFinite: Double?
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

    /// Adds `values`, using up to `threads` threads. Infinities and NaN (a float model overflowing on an input) are
    /// counted in `nonFinite` and in the last bin, and left out of min, max and range.
    public mutating func add(_ values: UnsafeBufferPointer<Float>, threads: Int = 1) {
        guard let base = values.baseAddress, !values.isEmpty, !histogram.isEmpty else { return }
        let bins = histogram.count
        var r = sq_value_range()
        // One pass when the values fit the range so far (on every image once the first few have widened it).
        var counted = histogram.withUnsafeMutableBufferPointer { h in
            sq_abs_stats(base, values.count, range, range > 0 ? Float(bins) / range : 0, Int32(bins), h.baseAddress!, &r, Int32(threads)) != 0
        }
        if r.min <= r.max {
            min = Swift.min(min, r.min)
            max = Swift.max(max, r.max)
            let a = Swift.max(abs(r.min), abs(r.max))
            if a > range { widen(toCover: a) }
        }
        if !counted && range > 0 {
            counted = histogram.withUnsafeMutableBufferPointer { h in
                sq_abs_stats(base, values.count, range, Float(bins) / range, Int32(bins), h.baseAddress!, &r, Int32(threads)) != 0
            }
        }
        if !counted {
            // Every finite value is 0 (no range yet).
            histogram[0] += Double(values.count - r.nonfinite)
            histogram[bins - 1] += Double(r.nonfinite)
        }
        count += Double(values.count)
        if r.nonfinite > 0 { nonFinite = (nonFinite ?? 0) + Double(r.nonfinite) }
    }

    /// Adds per-channel sums of `values` laid out [outer, channels, inner].
    public mutating func addChannelSums(_ values: UnsafeBufferPointer<Float>, outer: Int, channels: Int, inner: Int) {
        guard let base = values.baseAddress, outer * channels * inner == values.count, channels > 0 else { return }
        if channelSums?.count != channels { channelSums = Array(repeating: 0, count: channels); channelCount = 0 }
        channelSums!.withUnsafeMutableBufferPointer { sq_channel_sums(base, Int32(outer), Int32(channels), inner, $0.baseAddress!) }
        channelCount! += Double(outer * inner)
    }

    /// Widens the range by the smallest power of two that makes it cover `a` (a finite |x| above it): bins i·factor ..<
    /// (i+1)·factor become bin i (all of them bin 0 when the factor is `binCount` or more), the values that were not
    /// finite staying in the last bin. A first range is `a` itself.
    mutating func widen(toCover a: Float) {
        guard range > 0 else { range = a; return }
        var factor = 1.0
        while Double(range) * factor < Double(a) { factor *= 2 }
        let bins = histogram.count, merge = Int(Swift.min(factor, Double(bins)))
        let kept = nonFinite ?? 0
        histogram[bins - 1] -= kept
        var merged = [Double](repeating: 0, count: bins)
        for (i, c) in histogram.enumerated() { merged[i / merge] += c }
        merged[bins - 1] += kept
        histogram = merged
        // Within a factor of 2 of the largest float the exact widening would overflow: the largest float instead.
        range = Float(Swift.min(Double(range) * factor, Double(Float.greatestFiniteMagnitude)))
    }
}
