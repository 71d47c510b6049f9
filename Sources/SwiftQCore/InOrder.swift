import Foundation

/// Lets threads that each work on their own item (an image) update shared state in item order. `pass(key, item)`
/// runs its body only after every earlier item has passed `key`, so running sums and histograms come out exactly
/// as one thread going through the items in order makes them, however many threads there are and whichever runs
/// ahead. Every item from `first` on must pass every key, with `pass` or at the latest with `finish`; a thread
/// only ever waits for earlier items, so threads that each finish their items cannot deadlock.
public final class InOrder: @unchecked Sendable {
    private let condition = NSCondition()
    /// Per key, the first item that has not passed it.
    private var next: [Int]
    private var cancelled = false

    public init(keys: Int, first: Int = 0) {
        next = Array(repeating: first, count: keys)
    }

    /// Waits until the items before `item` have passed `key`, then runs `body` (an item may pass a key more than
    /// once). Returns false without running `body` once `cancel` was called.
    @discardableResult
    public func pass(_ key: Int, _ item: Int, _ body: () throws -> Void) rethrows -> Bool {
        guard wait(key, item) else { return false }
        defer { advance(key, item) }
        try body()
        return true
    }

    /// Passes every key `item` has not passed yet (it was skipped, or its run did not reach the key).
    public func finish(_ item: Int) {
        for key in next.indices {
            guard wait(key, item) else { return }
            advance(key, item)
        }
    }

    /// Makes every waiting and later `pass` return false at once (another item failed; the job is over).
    public func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    private func wait(_ key: Int, _ item: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while next[key] < item && !cancelled { condition.wait() }
        return !cancelled
    }

    private func advance(_ key: Int, _ item: Int) {
        condition.lock()
        if next[key] <= item {
            next[key] = item + 1
            condition.broadcast()
        }
        condition.unlock()
    }
}

/// A flag threads set and read under a lock (one failed item stops the others).
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    public init() {}
    public var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    public func set() { lock.lock(); value = true; lock.unlock() }
}
