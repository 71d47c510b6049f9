import Foundation

/// How an activation's clipping threshold T (on |x|) comes from its statistics. The quantized range is then
/// [max(min, −T), min(max, T)], widened to hold 0.
public enum CalibrationMethod: String, CaseIterable, Codable, Sendable {
    /// T = max |x|: nothing clipped.
    case max
    /// T = the given percentile of |x|.
    case percentile
    /// TensorRT's entropy calibration: the T whose 128-level quantization loses the least information (KL).
    case entropy
    /// The T with the least expected squared error (clipping plus rounding) for the level count.
    case mse

    /// The threshold for `stats`. `levels` is the number of quantization steps over [0, T] (127 for a signed
    /// 8-bit symmetric range, 255 for an unsigned range over non-negative values).
    public func threshold(_ stats: TensorStatistics, percentile: Double = 99.99, levels: Int = 255) -> Float {
        guard stats.range > 0, stats.count > 0 else { return stats.absMax.isFinite ? stats.absMax : 0 }
        let t: Float
        switch self {
        case .max: return stats.absMax
        case .percentile: t = percentileThreshold(stats, percentile)
        case .entropy: t = entropyThreshold(stats)
        case .mse: t = mseThreshold(stats, levels: levels)
        }
        return Swift.min(t, stats.absMax)
    }
}

/// The upper edge of the first bin where the cumulative count reaches `p` percent.
func percentileThreshold(_ s: TensorStatistics, _ p: Double) -> Float {
    let target = s.count * Swift.min(Swift.max(p, 0), 100) / 100
    var sum = 0.0
    for (i, c) in s.histogram.enumerated() {
        sum += c
        if sum >= target { return Float(i + 1) * s.binWidth }
    }
    return s.range
}

/// TensorRT's search: for each candidate i in 128...2048 bins, P is the histogram cut at i with the outliers
/// added to its last bin, Q is P's first i bins merged into 128 levels and spread back over their non-empty
/// bins; the i with the smallest KL(P‖Q) gives T = (i + 0.5) bin widths. As in NVIDIA's implementation
/// (pytorch-quantization), the first bin takes the second's count: the exact zeros a ReLU makes would
/// otherwise dominate P and pull T far down.
func entropyThreshold(_ s: TensorStatistics, levels: Int = 128) -> Float {
    var h = s.histogram
    if h.count > 1 { h[0] = h[1] }
    let n = h.count
    guard n > levels else { return s.range }
    var suffix = [Double](repeating: 0, count: n + 1)
    for i in stride(from: n - 1, through: 0, by: -1) { suffix[i] = suffix[i + 1] + h[i] }
    var best = n, bestKL = Double.infinity
    var p = [Double](repeating: 0, count: n), q = [Double](repeating: 0, count: n)
    for i in levels...n {
        for j in 0..<i { p[j] = h[j] }
        p[i - 1] += suffix[i]
        // Merge h[0..<i] (without the outliers, as TensorRT does) into `levels` groups and spread each
        // group's total evenly over its non-empty bins.
        let per = Double(i) / Double(levels)
        for l in 0..<levels {
            let start = Int((Double(l) * per).rounded(.down)), end = l == levels - 1 ? i : Int((Double(l + 1) * per).rounded(.down))
            var total = 0.0, nonzero = 0
            for j in start..<end where h[j] != 0 { total += h[j]; nonzero += 1 }
            let v = nonzero > 0 ? total / Double(nonzero) : 0
            for j in start..<end { q[j] = h[j] != 0 ? v : 0 }
        }
        var ps = 0.0, qs = 0.0
        for j in 0..<i { ps += p[j]; qs += q[j] }
        guard ps > 0, qs > 0 else { continue }
        var kl = 0.0
        for j in 0..<i where p[j] > 0 {
            let pj = p[j] / ps
            // A bin P has and Q lacks (the outlier bin when it was empty): smoothed as TensorRT does.
            let qj = q[j] > 0 ? q[j] / qs : 1e-4 / qs
            kl += pj * log(pj / qj)
        }
        if kl < bestKL { bestKL = kl; best = i }
    }
    return (Float(best) + 0.5) * s.binWidth
}

/// Expected squared error of quantizing the histogram with `levels` steps over [0, T], T at bin edges:
/// values above T cost (x − T)², values inside Δ²/12 (uniform rounding error).
func mseThreshold(_ s: TensorStatistics, levels: Int) -> Float {
    let h = s.histogram, w = Double(s.binWidth)
    var best = h.count, bestErr = Double.infinity
    for i in stride(from: 16, through: h.count, by: 4) {
        let t = Double(i) * w, step = t / Double(Swift.max(1, levels))
        var err = 0.0, inside = 0.0
        for j in 0..<i { inside += h[j] }
        err += inside * step * step / 12
        for j in i..<h.count where h[j] > 0 {
            let d = (Double(j) + 0.5) * w - t
            err += h[j] * d * d
        }
        if err < bestErr { bestErr = err; best = i }
    }
    return Float(best) * s.binWidth
}
