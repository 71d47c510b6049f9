import CKernels
import Dispatch
import Foundation
import XCTest
import SwiftQKernels

/// The persistent pool behind `parallelFor` (pool.c): every part of every job runs exactly once, and a job whose
/// workers are not running completes on the caller alone.
final class ThreadPoolTests: XCTestCase {
    func testEveryPartRunsOnceInEveryJob() {
        // Many short jobs back to back, so workers claim parts of a job while the next is being published; part
        // counts over the job word's 16-bit field go in slices.
        for threads in [2, 3, 4] {
            for parts in [2, 3, 7, 64, 70_001] {
                let jobs = parts > 1000 ? 3 : 3000
                let counts = UnsafeMutablePointer<Int32>.allocate(capacity: parts)
                defer { counts.deallocate() }
                for job in 0..<jobs {
                    counts.initialize(repeating: 0, count: parts)
                    parallelFor(parts, threads: threads) { p in counts[p] += 1 }
                    let wrong = (0..<parts).first { counts[$0] != 1 }
                    if let p = wrong {
                        XCTFail("\(threads) threads, \(parts) parts, job \(job): part \(p) ran \(counts[p]) times")
                        return
                    }
                }
            }
        }
    }

    func testNestedJobsRunInline() {
        let counts = UnsafeMutablePointer<Int32>.allocate(capacity: 4 * 5)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: 20)
        parallelFor(4, threads: 2) { p in
            parallelFor(5, threads: 2) { q in counts[p * 5 + q] += 1 }
        }
        XCTAssertEqual((0..<20).map { counts[$0] }, Array(repeating: 1, count: 20))
    }

    func testCallerRunsTheJobWhenNoWorkerRuns() {
        // Workers held before they look at the job, as when their core is busy with another process: the caller must
        // take every part and return, not wait for them. (Waiting for workers to acknowledge the job ran MobileNetV2
        // at 2 threads 1.5x slower with a busy loop on the other core.)
        parallelFor(2, threads: 2) { _ in }   // the worker exists
        sq_pool_hold_workers(1)
        nonisolated(unsafe) let onCaller = UnsafeMutablePointer<Int32>.allocate(capacity: 8)
        defer { onCaller.deallocate() }
        onCaller.initialize(repeating: 0, count: 8)
        // The job runs on a thread of its own, so that a pool that waits for the held workers fails here instead of
        // hanging the tests.
        let done = DispatchSemaphore(value: 0)
        let job = Thread {
            let caller = pthread_self()
            parallelFor(8, threads: 2) { p in onCaller[p] = pthread_equal(pthread_self(), caller) != 0 ? 1 : 2 }
            done.signal()
        }
        job.start()
        let finished = done.wait(timeout: .now() + 20) == .success
        sq_pool_hold_workers(0)
        XCTAssertTrue(finished, "the job did not finish while the workers were held")
        if !finished { done.wait() }
        XCTAssertEqual((0..<8).map { onCaller[$0] }, Array(repeating: 1, count: 8), "1: ran on the caller, 2: on a worker, 0: not run")
    }
}
