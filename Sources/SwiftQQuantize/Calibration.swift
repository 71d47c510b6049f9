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
            guard s.min <= s.max else { r[name] = (0, 0); continue }   // no finite value seen
            let t = Self.threshold(s, method: method, percentile: percentile, bits: bits)
            r[name] = (Swift.max(s.min, -t), Swift.min(s.max, t))
        }
        return r
    }

    /// The clipping threshold on |x| that `method` picks for a tensor quantized to `bits`: its levels over [0, T] are
    /// all of them for a tensor that never goes negative, half of them for a signed one.
    /// Values that were not finite (counted in the last bin) are left out.
    public static func threshold(_ s: TensorStatistics, method: CalibrationMethod, percentile: Double, bits: Int) -> Float {
        let levels = s.min >= 0 ? (1 << bits) - 1 : ((1 << bits) - 1) / 2
        var s = s
        if let n = s.nonFinite, n > 0, !s.histogram.isEmpty {
            s.histogram[s.histogram.count - 1] -= n
            s.count -= n
            s.nonFinite = nil
        }
        return method.threshold(s, percentile: percentile, levels: levels)
    }

    /// One line per tensor that held infinities or NaN (a float model overflowing on some calibration inputs).
    public var nonFiniteWarnings: [String] {
        tensors.sorted(by: { $0.key < $1.key }).compactMap { name, s in
            guard let n = s.nonFinite, n > 0 else { return nil }
            return "tensor '\(name)': \(Int(n)) of \(Int(s.count)) values on the calibration inputs were infinite or NaN (the float model overflows there); its range leaves them out"
        }
    }
}

/// Feeds every produced value whose name is in `names` into its statistics, in one pass per image. Each tensor's
/// statistics live in their own box, so threads may update different tensors at once (`CalibrationPass` orders
/// the updates of one tensor by image with `InOrder`).
public final class ActivationCollector: @unchecked Sendable {
    final class Box {
        var value: TensorStatistics
        init(_ value: TensorStatistics) { self.value = value }
    }

    private let boxes: [String: Box]
    /// The statistics so far, by tensor name.
    public var statistics: [String: TensorStatistics] { boxes.mapValues(\.value) }
    /// The names of every tensor the collector keeps something of.
    public var names: [String] { boxes.keys.sorted() }
    /// Threads the statistics of one large tensor are split over.
    public var threads = 1

    /// Tensors whose per-channel means are kept too (inputs of weighted layers, for bias correction).
    public let channelStatistics: Set<String>

    /// Full statistics for `names`; per-channel means also for `channelStatistics` (only those, for a tensor
    /// not in `names`).
    public init(names: [String], channelStatistics: Set<String> = []) {
        var b = Dictionary(uniqueKeysWithValues: names.map { ($0, Box(TensorStatistics())) })
        for c in channelStatistics where b[c] == nil { b[c] = Box(TensorStatistics(histogram: [])) }
        boxes = b
        histogrammed = Set(names)
        self.channelStatistics = channelStatistics
    }

    private let histogrammed: Set<String>

    /// For `Interpreter.run(_:observe:)`.
    public func observe(_ name: String, _ t: RTensor) {
        guard let box = boxes[name], t.dtype == .float else { return }
        let values = UnsafeBufferPointer(start: t.f, count: t.count)
        if histogrammed.contains(name) { box.value.add(values, threads: threads) }
        if channelStatistics.contains(name), t.rank >= 2 {
            box.value.addChannelSums(values, outer: t.shape[0], channels: t.shape[1], inner: t.shape[2...].reduce(1, *))
        }
    }
}

/// A calibration table that cannot be used: one line naming the file (and the tensor).
public struct CalibrationTableError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension CalibrationTable {
    /// Reads a table written by `encoded()` (a `.calib.json`) and checks that its statistics are possible.
    public static func read(path: String) throws -> CalibrationTable {
        let data: Data
        do { data = try FileBytes.read(path, maxBytes: 1 << 31) } catch {
            throw CalibrationTableError("\(path): cannot read the calibration table: \(error)")
        }
        return try CalibrationTable(json: data, path: path)
    }

    /// Decodes and checks a table; `path` names it in errors.
    public init(json data: Data, path: String) throws {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do {
            self = try d.decode(CalibrationTable.self, from: data)
        } catch let e as DecodingError {
            let reason: String
            switch e {
            case .dataCorrupted(let c): reason = c.codingPath.isEmpty ? "not JSON" : "bad value at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
            case .keyNotFound(let k, _): reason = "no '\(k.stringValue)'"
            case .typeMismatch(_, let c), .valueNotFound(_, let c): reason = "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
            @unknown default: reason = "unreadable"
            }
            throw CalibrationTableError("\(path): not a swiftq calibration table (\(reason))")
        } catch {
            throw CalibrationTableError("\(path): not a swiftq calibration table")
        }
        guard format == "swiftq-calibration", version == 1 else {
            throw CalibrationTableError("\(path): not a swiftq calibration table (format '\(format)' version \(version); expected swiftq-calibration version 1)")
        }
        try check(path: path)
    }

    /// Refuses statistics no run can produce: negative or fractional counts, a histogram that does not add
    /// up to the count, more values not finite than its last bin holds, NaN or infinite bounds (unless no value was
    /// finite), min above max, a histogram range that does not cover them.
    public func check(path: String) throws {
        guard images >= 0, skipped >= 0 else { throw CalibrationTableError("\(path): negative image counts") }
        for (name, s) in tensors.sorted(by: { $0.key < $1.key }) {
            func bad(_ why: String) -> CalibrationTableError { CalibrationTableError("\(path): tensor '\(name)': \(why)") }
            if let sums = s.channelSums {
                guard let n = s.channelCount, n.isFinite, n >= 0, n == n.rounded() else { throw bad("channel count missing or not a whole number") }
                guard sums.allSatisfy(\.isFinite) else { throw bad("channel sums are not finite") }
            }
            if s.histogram.isEmpty { continue }
            guard s.histogram.count == TensorStatistics.binCount else { throw bad("the histogram has \(s.histogram.count) bins, not \(TensorStatistics.binCount)") }
            guard s.count.isFinite, s.count >= 0, s.count == s.count.rounded() else { throw bad("count \(s.count) is not a whole number of values") }
            guard s.histogram.allSatisfy({ $0.isFinite && $0 >= 0 && $0 == $0.rounded() }) else { throw bad("the histogram has negative, fractional or infinite counts") }
            let total = s.histogram.reduce(0, +)
            guard abs(total - s.count) <= max(0.5, s.count * 1e-12) else { throw bad("the histogram counts \(total) values but the count is \(s.count)") }
            guard s.count > 0 else { throw bad("no values were seen") }
            let nonFinite = s.nonFinite ?? 0
            guard nonFinite >= 0, nonFinite == nonFinite.rounded(), nonFinite <= s.histogram[s.histogram.count - 1] else {
                throw bad("\(nonFinite) values not finite, more than the last bin holds")
            }
            if nonFinite == s.count, s.min == .infinity, s.max == -.infinity, s.range == 0 { continue }   // nothing finite seen
            guard s.min.isFinite, s.max.isFinite else { throw bad("min \(s.min) / max \(s.max) are not finite") }
            guard s.min <= s.max else { throw bad("min \(s.min) is above max \(s.max)") }
            guard s.range.isFinite, s.range >= s.absMax, s.range > 0 || s.absMax == 0 else {
                throw bad("the histogram range \(s.range) does not cover min \(s.min) / max \(s.max)")
            }
        }
    }

    /// The table as JSON (the `.calib.json` file): the layout JSONEncoder gives with sorted keys, written
    /// directly (JSONEncoder took 26 s for the 89 MB table of a 20,000-node model).
    public func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(64 + tensors.count * (TensorStatistics.binCount * 3 + 256))
        func raw(_ s: String) { out.append(contentsOf: s.utf8) }
        func string(_ s: String) {
            out.append(UInt8(ascii: "\""))
            for u in s.utf8 {
                switch u {
                case UInt8(ascii: "\""): raw("\\\"")
                case UInt8(ascii: "\\"): raw("\\\\")
                case 0..<0x20: raw(String(format: "\\u%04x", u))
                default: out.append(u)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        var digits = [UInt8](repeating: 0, count: 20)
        func number(_ v: Double) {
            if v == 0 { out.append(UInt8(ascii: "0")); return }  // most histogram bins
            if v.isNaN { raw("\"nan\""); return }
            if v.isInfinite { raw(v > 0 ? "\"inf\"" : "\"-inf\""); return }
            if v == v.rounded() && abs(v) < 9e15 {
                // Whole numbers (counts) by hand: a String per number made the table slow to write.
                var n = Int64(v)
                if n < 0 { out.append(UInt8(ascii: "-")); n = -n }
                var k = 0
                repeat { digits[k] = UInt8(ascii: "0") + UInt8(n % 10); n /= 10; k += 1 } while n > 0
                while k > 0 { k -= 1; out.append(digits[k]) }
                return
            }
            raw("\(v)")
        }
        func float(_ v: Float) {
            if v.isNaN || v.isInfinite || (v == v.rounded() && abs(v) < 1e7) { number(Double(v)); return }
            raw("\(v)")
        }
        func array(_ a: [Double]) {
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                number(v)
            }
            out.append(UInt8(ascii: "]"))
        }
        raw("{\"format\":"); string(format)
        raw(",\"images\":"); raw(String(images))
        raw(",\"model\":"); string(model)
        if let preprocessing { raw(",\"preprocessing\":"); string(preprocessing) }
        raw(",\"skipped\":"); raw(String(skipped))
        raw(",\"tensors\":{")
        for (k, (name, s)) in tensors.sorted(by: { $0.key < $1.key }).enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            string(name)
            out.append(UInt8(ascii: ":"))
            var first = true
            func key(_ name: String) { raw(first ? "{\"\(name)\":" : ",\"\(name)\":"); first = false }
            if let n = s.channelCount { key("channelCount"); number(n) }
            if let sums = s.channelSums { key("channelSums"); array(sums) }
            key("count"); number(s.count)
            key("histogram"); array(s.histogram)
            key("max"); float(s.max)
            key("min"); float(s.min)
            if let n = s.nonFinite { key("nonFinite"); number(n) }
            key("range"); float(s.range)
            out.append(UInt8(ascii: "}"))
        }
        raw("},\"version\":"); raw(String(version)); raw("}")
        return out
    }
}
