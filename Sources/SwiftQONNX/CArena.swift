import COnnx
import Foundation

/// Owns every C allocation made while building a protobuf-c message tree; frees all of it in `deinit`.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []
    private var cleanups: [() -> Void] = []

    deinit {
        for c in cleanups { c() }
        for b in blocks { free(b) }
    }

    /// One zeroed C struct, passed to `initialize` (the generated `…__init` function).
    func make<T>(_ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let raw = calloc(1, MemoryLayout<T>.stride)!
        blocks.append(raw)
        let p = raw.bindMemory(to: T.self, capacity: 1)
        initialize(p)
        return p
    }

    /// A C array copied from `values` (nil when empty, as protobuf-c expects).
    func array<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        guard !values.isEmpty else { return nil }
        let raw = malloc(MemoryLayout<T>.stride * values.count)!
        blocks.append(raw)
        let p = raw.bindMemory(to: T.self, capacity: values.count)
        p.initialize(from: values, count: values.count)
        return p
    }

    /// A NUL-terminated copy of `s`, or nil for the empty string (the field is then left out).
    func cString(_ s: String) -> UnsafeMutablePointer<CChar>? {
        guard !s.isEmpty else { return nil }
        let p = strdup(s)!
        blocks.append(UnsafeMutableRawPointer(p))
        return p
    }

    /// A NUL-terminated copy even for "" (for repeated strings, where position matters).
    func cStringAlways(_ s: String) -> UnsafeMutablePointer<CChar>? {
        let p = strdup(s)!
        blocks.append(UnsafeMutableRawPointer(p))
        return p
    }

    func binary(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        let raw = malloc(bytes.count)!
        blocks.append(raw)
        bytes.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return ProtobufCBinaryData(len: bytes.count, data: raw.assumingMemoryBound(to: UInt8.self))
    }

    /// Unpacks a message kept as packed bytes; it is freed with the arena.
    func unpack<T>(_ bytes: [UInt8], _ unpacker: (Int, UnsafePointer<UInt8>) -> UnsafeMutablePointer<T>?,
                   free freer: @escaping (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T>? {
        let p = bytes.withUnsafeBufferPointer { b in b.baseAddress.flatMap { unpacker(b.count, $0) } }
        if let p { cleanups.append { freer(p) } }
        return p
    }
}
