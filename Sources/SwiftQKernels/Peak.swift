import CKernels
import Foundation

/// The float throughput this machine gives the kernels: fused multiply-adds in independent chains on `threads`
/// threads at once, in the instruction set the kernels run (FMA throughput × cores × clock, measured rather than
/// looked up, so a virtual machine's or a throttled core's figure is what it really is).
public enum PeakThroughput {
    /// Floating-point operations per second (a multiply-add counts two), best of `trials` runs of about
    /// `seconds` each.
    public static func measure(threads: Int, seconds: Double = 0.1, trials: Int = 3) -> Double {
        let per = 12 * 16 * 2
        // Calibrate the rounds to the time wanted on one thread.
        var rounds = 100_000
        while true {
            let t = time { _ = sq_fma_chains(rounds, 1, 0.9999999, 1e-7) }
            if t >= seconds / 4 || rounds > 1 << 30 { rounds = Int(Double(rounds) * seconds / max(t, 1e-9)); break }
            rounds *= 4
        }
        var best = 0.0
        for _ in 0..<trials {
            let t = time { parallelFor(threads, threads: threads) { _ in _ = sq_fma_chains(rounds, 1, 0.9999999, 1e-7) } }
            best = max(best, Double(rounds * per * threads) / t)
        }
        return best
    }

    static func time(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
