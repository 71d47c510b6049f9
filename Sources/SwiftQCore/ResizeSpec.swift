import Foundation

/// How one axis of a Resize maps output positions to input positions.
public struct ResizeAxis: Sendable, Equatable {
    public var input: Int
    public var output: Int
    /// For nearest: the input index of each output position (−1: the extrapolation value).
    public var nearest: [Int] = []
    /// For linear and cubic: `taps` input indices and weights per output position.
    public var taps = 0
    public var index: [Int] = []
    public var weight: [Float] = []
    public var extrapolated: [Bool] = []

    /// Output position j reads input position j alone.
    public var isIdentity: Bool {
        guard input == output, !extrapolated.contains(true) else { return false }
        if taps == 0 { return nearest == Array(0..<output) }
        return (0..<output).allSatisfy { j in
            (0..<taps).allSatisfy { k in weight[j * taps + k] == 0 || (weight[j * taps + k] == 1 && index[j * taps + k] == j) }
        }
    }
}

/// Resize's attributes, read once; `plan` turns them and the run-time scales or sizes into per-axis maps.
/// Covers opset 10 (scales only; asymmetric coordinates, ORT's "simple" nearest rounding), 11 and 13 (roi,
/// scales or sizes; every coordinate_transformation_mode and nearest_mode; cubic with cubic_coeff_a and
/// exclude_outside), 18 and 19 (axes, keep_aspect_ratio_policy, half_pixel_symmetric), and Upsample 7/9.
public struct ResizeSpec: Sendable {
    public enum Mode: String, Sendable { case nearest, linear, cubic }
    public let mode: Mode
    public let coordinates: String
    public let nearestMode: String
    public let cubicA: Float
    public let excludeOutside: Bool
    public let extrapolation: Float
    public let axes: [Int]?
    public let policy: String
    public let antialias: Bool
    /// Upsample, or Resize before opset 11: scales only (an attribute of Upsample-7, else input 1), no roi or sizes.
    public let legacy: Bool
    let scalesAttribute: [Float]?

    public init(node: Node, opset: Int64) throws {
        func bad(_ what: String) -> ResizeProblem { ResizeProblem("not supported: \(what)") }
        legacy = node.opType == "Upsample" || opset < 11
        scalesAttribute = node.floats("scales")
        var m = node.string("mode") ?? "nearest"
        if m == "bilinear" || m == "trilinear" { m = "linear" }
        guard let mode = Mode(rawValue: m) else { throw bad("mode '\(m)'") }
        self.mode = mode
        coordinates = legacy ? "asymmetric" : node.string("coordinate_transformation_mode") ?? "half_pixel"
        nearestMode = legacy ? "simple" : node.string("nearest_mode") ?? "round_prefer_floor"
        let known = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"]
        guard known.contains(coordinates) else { throw bad("coordinate_transformation_mode '\(coordinates)'") }
        guard ["simple", "round_prefer_floor", "round_prefer_ceil", "floor", "ceil"].contains(nearestMode) else { throw bad("nearest_mode '\(nearestMode)'") }
        cubicA = node.float("cubic_coeff_a") ?? -0.75
        excludeOutside = (node.int("exclude_outside") ?? 0) != 0
        extrapolation = node.float("extrapolation_value") ?? 0
        axes = node.ints("axes").map { $0.map { Int(clamping: $0) } }
        policy = node.string("keep_aspect_ratio_policy") ?? "stretch"
        guard ["stretch", "not_larger", "not_smaller"].contains(policy) else { throw bad("keep_aspect_ratio_policy '\(policy)'") }
        antialias = (node.int("antialias") ?? 0) != 0
    }

    /// The node's scales, sizes and roi, read through `floats` and `ints` of an input index (nil when the input is
    /// omitted or not known), from where this form keeps them.
    public func operands(floats: (Int) -> [Float]?, ints: (Int) -> [Int]?) -> (scales: [Float]?, sizes: [Int]?, roi: [Float]) {
        (scalesAttribute ?? floats(legacy ? 1 : 2), legacy ? nil : ints(3), legacy ? [] : floats(1) ?? [])
    }

    /// The output shape and the map of every axis for an input of `shape` (roi, for tf_crop_and_resize, as
    /// starts then ends, per axis of `axes` or per dimension).
    public func maps(input shape: [Int], scales: [Float]?, sizes: [Int]?, roi: [Float]) throws -> (shape: [Int], scales: [Float], maps: [ResizeAxis]) {
        let out = try outputShape(input: shape, scales: scales, sizes: sizes)
        let r = shape.count
        let order = axes.map { $0.map { $0 < 0 ? $0 + r : $0 } } ?? Array(0..<r)
        func axisRoi(_ d: Int) -> (Float, Float) {
            if let k = order.firstIndex(of: d), roi.count == 2 * order.count { return (roi[k], roi[k + order.count]) }
            if roi.count == 2 * r { return (roi[d], roi[d + r]) }
            return (0, 1)
        }
        let maps = shape.indices.map { axis(input: shape[$0], output: out.shape[$0], length: out.lengths[$0], scale: out.scales[$0], roi: axisRoi($0)) }
        return (out.shape, out.scales, maps)
    }

    /// Output shape and scale per axis from `scales` or `sizes` (one per axis of `axes`, or per dimension), and
    /// the length the scale asks for (input × scale: fractional when a scale was given that does not land on an
    /// integer; align_corners divides by it, as ONNX's reference does).
    public func outputShape(input shape: [Int], scales: [Float]?, sizes: [Int]?) throws -> (shape: [Int], scales: [Float], lengths: [Float]) {
        let r = shape.count
        let axes = try (self.axes ?? Array(0..<r)).map { a -> Int in
            let n = a < 0 ? a + r : a
            guard n >= 0 && n < r else { throw ResizeProblem("axis \(a) out of range for rank \(r)") }
            return n
        }
        var out = shape, scale = [Float](repeating: 1, count: r), lengths = shape.map { Float($0) }
        if let sizes, !sizes.isEmpty {
            guard sizes.count == axes.count else { throw ResizeProblem("sizes \(sizes) has \(sizes.count) values for \(axes.count) axes") }
            guard sizes.allSatisfy({ $0 >= 0 && $0 <= shapeBound }) else { throw ResizeProblem("sizes \(sizes) out of range") }
            for (k, a) in axes.enumerated() { scale[a] = shape[a] == 0 ? 1 : Float(sizes[k]) / Float(shape[a]); out[a] = sizes[k] }
            if policy != "stretch" {
                let s = axes.map { scale[$0] }
                let one = policy == "not_larger" ? s.min() ?? 1 : s.max() ?? 1
                for a in axes { scale[a] = one; out[a] = Int((one * Float(shape[a])).rounded(.toNearestOrAwayFromZero)) }
            }
            for a in axes { lengths[a] = Float(out[a]) }
        } else if let scales, !scales.isEmpty {
            guard scales.count == axes.count else { throw ResizeProblem("scales \(scales) has \(scales.count) values for \(axes.count) axes") }
            guard scales.allSatisfy({ $0 > 0 && $0.isFinite && $0 < Float(shapeBound) }) else { throw ResizeProblem("scales \(scales) must be positive and finite") }
            for (k, a) in axes.enumerated() {
                scale[a] = scales[k]
                lengths[a] = scales[k] * Float(shape[a])
                let v = (scales[k] * Float(shape[a])).rounded(.down)
                guard v < Float(shapeBound) else { throw ResizeProblem("scale \(scales[k]) makes dimension \(a) too large") }
                out[a] = Int(v)
            }
        } else {
            throw ResizeProblem("needs scales or sizes")
        }
        return (out, scale, lengths)
    }

    /// The input coordinate of output position `x` along an axis (ONNX's coordinate transformations, in float
    /// as ONNX Runtime computes them); `roi` is (start, end) for tf_crop_and_resize.
    public func source(_ x: Int, input: Int, output: Int, length: Float, scale: Float, roi: (Float, Float)) -> Float {
        let xf = Float(x)
        switch coordinates {
        case "asymmetric": return xf / scale
        case "align_corners": return length == 1 ? 0 : xf * Float(input - 1) / (length - 1)
        case "pytorch_half_pixel": return output > 1 ? (xf + 0.5) / scale - 0.5 : -0.5
        case "tf_half_pixel_for_nn": return (xf + 0.5) / scale
        case "half_pixel_symmetric":
            let adjustment = Float(output) / (scale * Float(input))
            let offset = Float(input) / 2 * (1 - adjustment)
            return offset + (xf + 0.5) / scale - 0.5
        case "tf_crop_and_resize":
            let span = Float(input - 1)
            if output == 1 { return (roi.1 - roi.0) * span / 2 + roi.0 * span }
            return xf * (roi.1 - roi.0) * span / Float(output - 1) + roi.0 * span
        default: return (xf + 0.5) / scale - 0.5
        }
    }

    /// The map of one axis.
    public func axis(input: Int, output: Int, length: Float? = nil, scale: Float, roi: (Float, Float) = (0, 1)) -> ResizeAxis {
        var a = ResizeAxis(input: input, output: output)
        for x in 0..<output {
            let s = source(x, input: input, output: output, length: length ?? Float(output), scale: scale, roi: roi)
            let outside = coordinates == "tf_crop_and_resize" && (s < 0 || s > Float(input - 1))
            a.extrapolated.append(outside)
            let f = s.rounded(.down), r = s - f, i = Int(f)
            switch mode {
            case .nearest:
                var k: Int
                if r == 0 { k = i } else {
                    switch nearestMode {
                    case "simple": k = scale < 1 ? Int(s.rounded(.up)) : Int(s.rounded(.towardZero))
                    case "round_prefer_ceil": k = r < 0.5 ? i : i + 1
                    case "floor": k = i
                    case "ceil": k = i + 1
                    default: k = r <= 0.5 ? i : i + 1
                    }
                }
                a.nearest.append(outside ? -1 : min(max(k, 0), input - 1))
            case .linear, .cubic:
                let first = mode == .linear ? i : i - 1
                let A = cubicA
                var w: [Float] = mode == .linear ? [1 - r, r] : {
                    let p = r + 1, q = 1 - r, t = 2 - r
                    return [((A * p - 5 * A) * p + 8 * A) * p - 4 * A, ((A + 2) * r - (A + 3)) * r * r + 1,
                            ((A + 2) * q - (A + 3)) * q * q + 1, ((A * t - 5 * A) * t + 8 * A) * t - 4 * A]
                }()
                if excludeOutside {
                    for k in w.indices where first + k < 0 || first + k >= input { w[k] = 0 }
                    let sum = w.reduce(0, +)
                    if sum != 0 { w = w.map { $0 / sum } }
                }
                a.taps = w.count
                for k in w.indices { a.index.append(min(max(first + k, 0), input - 1)); a.weight.append(w[k]) }
            }
        }
        return a
    }
}

/// What is wrong with a Resize node's attributes or its scales and sizes.
public struct ResizeProblem: Error, Sendable {
    public let what: String
    public init(_ w: String) { what = w }
}
