import CZlib
import Foundation
import SwiftQCore

/// NumPy's `.npy` arrays and `.npz` archives of them (stored or deflated, as `np.savez` and `np.savez_compressed`
/// write them), read into tensors: calibration data for models whose input is not an image, or that have several
/// inputs. Little-endian float32/float64/float16, int8/uint8/int32/int64 and bool, C order; at most
/// `maxElements` values per array. Every failure is one line naming the file (and the array).
public enum NumpyFile {
    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    /// The arrays of a `.npy` (one, named "") or `.npz` file (named by their entry without ".npy"), in file order.
    public static func read(path: String, maxElements: Int = Model.defaultMaxTensorElements) throws -> [(name: String, tensor: Tensor)] {
        let data: Data
        do { data = try FileBytes.read(path, maxBytes: min(4 << 30, maxElements * 8 + (1 << 20))) } catch { throw Problem(description: "\(path): \(error)") }
        return try read(bytes: [UInt8](data), path: path, maxElements: maxElements)
    }

    /// The arrays of a file's bytes (`path` names it in errors; a `.npz` name or a zip signature means an archive).
    public static func read(bytes: [UInt8], path: String, maxElements: Int = Model.defaultMaxTensorElements) throws -> [(name: String, tensor: Tensor)] {
        if path.lowercased().hasSuffix(".npz") || bytes.starts(with: [0x50, 0x4B]) {
            return try archive(bytes, path: path, maxElements: maxElements)
        }
        return [("", try array(bytes[...], path: path, maxElements: maxElements))]
    }

    /// One `.npy` payload.
    static func array(_ b: ArraySlice<UInt8>, path: String, maxElements: Int) throws -> Tensor {
        func bad(_ what: String) -> Problem { Problem(description: "\(path): \(what)") }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard b.count >= 10, Array(b.prefix(6)) == magic else { throw bad("not a NumPy .npy array (no \\x93NUMPY magic)") }
        let s = b.startIndex, major = b[s + 6]
        guard [1, 2, 3].contains(major) else { throw bad("NumPy format version \(major) is not 1, 2 or 3") }
        let headerLength: Int, start: Int
        if major == 1 {
            headerLength = Int(b[s + 8]) | Int(b[s + 9]) << 8; start = s + 10
        } else {
            guard b.count >= 12 else { throw bad("truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(b[s + 8 + $1]) << (8 * $1) }; start = s + 12
        }
        guard headerLength <= 1 << 16, start + headerLength <= b.endIndex else { throw bad("truncated or oversized header") }
        let header = String(decoding: b[start..<(start + headerLength)], as: UTF8.self)
        func value(_ key: String) -> Substring? {
            guard let r = header.range(of: "'\(key)':") else { return nil }
            return header[r.upperBound...].drop { $0 == " " }
        }
        guard let d = value("descr"), d.first == "'", let end = d.dropFirst().firstIndex(of: "'") else { throw bad("header has no 'descr'") }
        let descr = String(d[d.index(after: d.startIndex)..<end])
        guard let fortran = value("fortran_order") else { throw bad("header has no 'fortran_order'") }
        if fortran.hasPrefix("True") { throw bad("Fortran-order arrays are not read; save with np.ascontiguousarray") }
        guard let sh = value("shape"), sh.first == "(", let close = sh.firstIndex(of: ")") else { throw bad("header has no 'shape'") }
        let dims = sh[sh.index(after: sh.startIndex)..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        var count = 1
        for t in dims {
            guard let v = Int(t), v >= 0 else { throw bad("shape has '\(t)'") }
            let (p, o) = count.multipliedReportingOverflow(by: v)
            guard !o, p <= maxElements else { throw bad("an array of shape (\(dims.joined(separator: ", "))) holds more than \(maxElements) values") }
            shape.append(v); count = p
        }
        let kinds: [String: (DType, Int)] = ["<f4": (.float, 4), "<f8": (.double, 8), "<f2": (.float16, 2), "|u1": (.uint8, 1), "|i1": (.int8, 1),
                                             "<i4": (.int32, 4), "<i8": (.int64, 8), "|b1": (.bool, 1)]
        guard let (dtype, size) = kinds[descr] else { throw bad("element type '\(descr)' is not read (little-endian float32/64/16, int8/32/64, uint8, bool)") }
        let payload = start + headerLength
        guard b.endIndex - payload >= count * size else { throw bad("holds \(b.endIndex - payload) bytes of data; shape (\(dims.joined(separator: ", "))) needs \(count * size)") }
        guard let t = Tensor(dtype: dtype, shape: shape, bytes: Array(b[payload..<(payload + count * size)])) else { throw bad("cannot hold \(descr) data") }
        return t
    }

    /// The `.npy` entries of a zip archive.
    static func archive(_ b: [UInt8], path: String, maxElements: Int) throws -> [(name: String, tensor: Tensor)] {
        func bad(_ what: String) -> Problem { Problem(description: "\(path): \(what)") }
        func u16(_ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
        func u32(_ i: Int) -> Int { u16(i) | u16(i + 2) << 16 }
        // The end of central directory record: within the last 22 + 65535 bytes.
        var eocd = -1
        var i = b.count - 22
        while i >= max(0, b.count - 22 - 65535) { if u32(i) == 0x0605_4B50 { eocd = i; break }; i -= 1 }
        guard eocd >= 0 else { throw bad("not a .npz (zip) archive: no end of central directory") }
        let entries = u16(eocd + 10), size = u32(eocd + 12), offset = u32(eocd + 16)
        guard offset != 0xFFFF_FFFF, entries != 0xFFFF, offset + size <= eocd else { throw bad("zip64 or corrupt central directory") }
        var out: [(String, Tensor)] = []
        var p = offset
        for _ in 0..<entries {
            guard p + 46 <= eocd, u32(p) == 0x0201_4B50 else { throw bad("corrupt central directory") }
            let method = u16(p + 10), crc = u32(p + 16), stored = u32(p + 20), raw = u32(p + 24), nameLength = u16(p + 28)
            let skip = nameLength + u16(p + 30) + u16(p + 32), local = u32(p + 42)
            guard p + 46 + skip <= eocd else { throw bad("corrupt central directory") }
            let name = String(decoding: b[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            p += 46 + skip
            guard stored != 0xFFFF_FFFF, raw != 0xFFFF_FFFF else { throw bad("entry '\(name)': zip64 entries are not read") }
            // No allocation past what an array within the limit needs, nor past deflate's 1032:1 ratio.
            guard raw <= maxElements * 8 + (1 << 16), raw <= stored * 1032 + 64 else {
                throw bad("entry '\(name)' claims \(raw) bytes, more than an array of at most \(maxElements) values or its \(stored) compressed bytes can hold")
            }
            guard local + 30 <= b.count, u32(local) == 0x0403_4B50 else { throw bad("entry '\(name)': corrupt local header") }
            let data = local + 30 + u16(local + 26) + u16(local + 28)
            guard data + stored <= b.count else { throw bad("entry '\(name)': truncated") }
            let payload: [UInt8]
            switch method {
            case 0: payload = Array(b[data..<(data + stored)])
            case 8: payload = try inflateRaw(b[data..<(data + stored)], count: raw, what: "\(path): entry '\(name)'")
            default: throw bad("entry '\(name)': compression method \(method) is not read (stored or deflate)")
            }
            let check = payload.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, uInt($0.count))) }
            guard check == crc else { throw bad("entry '\(name)': CRC-32 does not match (damaged archive)") }
            guard name.hasSuffix(".npy") else { continue }
            out.append((String(name.dropLast(4)), try array(payload[...], path: "\(path): '\(name)'", maxElements: maxElements)))
        }
        if out.isEmpty { throw bad("the archive holds no .npy arrays") }
        return out
    }

    static func inflateRaw(_ input: ArraySlice<UInt8>, count: Int, what: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: max(count, 1))
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw Problem(description: "\(what): zlib failed to start") }
        defer { inflateEnd(&stream) }
        let input = Array(input)
        let status: Int32 = input.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in
                stream.next_in = UnsafeMutablePointer(mutating: i.baseAddress)
                stream.avail_in = uInt(i.count)
                stream.next_out = o.baseAddress
                stream.avail_out = uInt(o.count)
                return inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, Int(stream.total_out) == count else { throw Problem(description: "\(what): corrupt deflate data") }
        return Array(out.prefix(count))
    }
}

extension NumpyFile {
    /// A little-endian float32 `.npy` file of `shape` holding `values` (C order).
    public static func float32(shape: [Int], values: [Float]) -> Data {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(shape.map(String.init).joined(separator: ", "))\(shape.count == 1 ? "," : "")), }"
        let total = 10 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var d = Data([0x93]) + Data("NUMPY".utf8) + Data([1, 0])
        let n = UInt16(dict.utf8.count)
        d.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        d.append(Data(dict.utf8))
        values.withUnsafeBytes { d.append(contentsOf: $0) }
        return d
    }
}
