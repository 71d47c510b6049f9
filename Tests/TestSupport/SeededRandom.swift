/// Reproducible test data: a 64-bit LCG, the same numbers on every run and machine.
public struct SeededRandom {
    public var seed: UInt64
    public init(seed: UInt64) { self.seed = seed }

    /// `n` floats uniform in [lo, hi).
    public mutating func floats(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<n).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return lo + (hi - lo) * Float(seed >> 40) / Float(1 << 24)
        }
    }
}
