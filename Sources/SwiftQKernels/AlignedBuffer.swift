/// Memory the int8 kernels read, aligned to 64 bytes (a cache line and an AVX-512 vector): their 64-byte loads
/// and stores of rows that start at multiples of 64 then never straddle two lines. Owned; freed on deinit.
public final class AlignedBuffer<T>: @unchecked Sendable {
    public let p: UnsafeMutablePointer<T>
    public let count: Int

    /// `count` elements (at least one is allocated), each set to `value`.
    public init(count: Int, repeating value: T) {
        self.count = count
        let n = max(1, count)
        p = UnsafeMutableRawPointer.allocate(byteCount: n * MemoryLayout<T>.stride, alignment: 64).bindMemory(to: T.self, capacity: n)
        p.initialize(repeating: value, count: n)
    }

    deinit { p.deallocate() }
}
