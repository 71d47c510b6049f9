import Foundation
import SwiftQCore
import XCTest

/// A value threads share under a lock.
private final class Shared<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func update(_ f: (inout T) -> Void) { lock.lock(); f(&value); lock.unlock() }
    var get: T { lock.lock(); defer { lock.unlock() }; return value }
}

final class InOrderTests: XCTestCase {
    /// Three threads with items 0, 1, 2 update two keys; the thread of item 2 starts first and item 0's thread
    /// last (after a pause): still every key sees 0, 1, 2 in that order. A key an item never passes (item 1 skips
    /// key 1) is passed by `finish`, and later items go on.
    func testItemsPassEachKeyInOrder() {
        let order = InOrder(keys: 2)
        let seen = Shared<[[Int]]>([[], []])
        let group = DispatchGroup()
        for item in [2, 1, 0] {
            group.enter()
            Thread {
                if item == 0 { Thread.sleep(forTimeInterval: 0.05) }
                for key in 0..<2 where !(item == 1 && key == 1) {
                    order.pass(key, item) { seen.update { $0[key].append(item) } }
                }
                order.finish(item)
                group.leave()
            }.start()
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTAssertEqual(group.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(seen.get, [[0, 1, 2], [0, 2]])
    }

    /// After `cancel`, a waiting `pass` returns false without running its body, and so does every later one.
    func testCancelReleasesWaiters() {
        let order = InOrder(keys: 1)
        let done = DispatchSemaphore(value: 0)
        let outcome = Shared((ran: false, passed: true))
        Thread {
            let passed = order.pass(0, 1) { outcome.update { $0.ran = true } }
            outcome.update { $0.passed = passed }
            done.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.02)
        order.cancel()
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertFalse(outcome.get.passed)
        XCTAssertFalse(outcome.get.ran)
        XCTAssertFalse(order.pass(0, 0) {})
    }
}
