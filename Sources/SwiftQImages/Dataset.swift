import Foundation
import SwiftQCore

/// Labelled images: from a labels file (`relative/path class_index` per line) or from a folder of class
/// folders (`root/<class>/<image>`), classes numbered by a classes file or by sorted folder names.
public struct Dataset: Sendable {
    public struct Item: Sendable, Equatable {
        /// Path as listed (relative to `root`).
        public var path: String
        public var label: Int?
        public init(path: String, label: Int?) { self.path = path; self.label = label }
    }

    public var root: String
    public var items: [Item]

    /// The labels file read from the image folder when no other is named.
    public static let labelsFileName = "labels.txt"
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png", "jpe"]

    /// Builds the list. `labels` wins when given, then a `labels.txt` in `root` (the layout ImageNet validation
    /// folders ship in); otherwise class folders under `root` are labelled through `classes` (one name per line,
    /// line number = index) or their sorted order; loose images get no label.
    public init(root: String, labels: String? = nil, classes: String? = nil) throws {
        self.root = root
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir) else { throw ImageError(path: root, reason: "no such folder") }
        guard isDir.boolValue else { throw ImageError(path: root, reason: "is a file, not a folder of images") }
        let beside = "\(root)/\(Self.labelsFileName)"
        if let labels = labels ?? (classes == nil && FileManager.default.fileExists(atPath: beside) ? beside : nil) {
            let text = try Self.text(labels, what: "labels file")
            var items: [Item] = []
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if parts.isEmpty || parts[0].hasPrefix("#") { continue }
                guard parts.count >= 2, let label = Int(parts[1]), label >= 0 else {
                    throw ImageError(path: labels, reason: "line \(n + 1): expected 'path class_index', got '\(line)'")
                }
                items.append(Item(path: String(parts[0]), label: label))
            }
            self.items = items
            return
        }
        var classIndex: [String: Int] = [:]
        if let classes {
            let text = try Self.text(classes, what: "classes file")
            for (i, name) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let n = name.split(separator: " ").first.map(String.init) ?? ""
                if !n.isEmpty && classIndex[n] == nil { classIndex[n] = i }
            }
            if classIndex.isEmpty { throw ImageError(path: classes, reason: "lists no classes (one name per line expected)") }
        }
        let fm = FileManager.default
        let entries = (try? fm.contentsOfDirectory(atPath: root))?.sorted() ?? []
        let folders = entries.filter { var d: ObjCBool = false; return fm.fileExists(atPath: "\(root)/\($0)", isDirectory: &d) && d.boolValue }
        if classes == nil { for (i, f) in folders.enumerated() { classIndex[f] = i } }
        var items: [Item] = []
        for e in entries where Self.isImage(e) && !folders.contains(e) { items.append(Item(path: e, label: nil)) }
        for f in folders {
            let files = ((try? fm.contentsOfDirectory(atPath: "\(root)/\(f)")) ?? []).sorted().filter(Self.isImage)
            for file in files { items.append(Item(path: "\(f)/\(file)", label: classIndex[f])) }
        }
        self.items = items
    }

    /// A list file (labels, classes, calibration list) as UTF-8 text, read as every input file is (`FileBytes`).
    public static func text(_ path: String, what: String) throws -> String {
        let data: Data
        do { data = try FileBytes.read(path, maxBytes: 1 << 30) } catch { throw ImageError(path: path, reason: "cannot read the \(what): \(error)") }
        guard let text = String(data: data, encoding: .utf8) else { throw ImageError(path: path, reason: "the \(what) is not UTF-8 text") }
        return text
    }

    static func isImage(_ name: String) -> Bool { imageExtensions.contains((name as NSString).pathExtension.lowercased()) }

    public func fullPath(_ item: Item) -> String { item.path.hasPrefix("/") ? item.path : "\(root)/\(item.path)" }
}

/// Items 0..<count worked on by `workers` background threads, each taking the next item not yet started, and handed
/// to one consumer in index order (`take`). At most `depth` finished or started items wait ahead of the consumer.
public final class OrderedWorkers<Output>: @unchecked Sendable {
    private let lock = NSCondition()
    private var ready: [Int: Output] = [:]
    private var started = 0
    private var next = 0
    private var cancelled = false
    private let depth: Int
    private let count: Int
    private var workNanoseconds: UInt64 = 0
    private var waitNanoseconds: UInt64 = 0
    /// The job, until the last thread ends (then what it holds is let go, before `cancel` returns).
    private var work: (@Sendable (_ worker: Int, _ item: Int) -> Output)?
    /// Threads that have not ended yet.
    private var running: Int

    /// Starts the threads; `work(worker, i)` makes item `i` on worker `worker` (0 ..< workers); each thread calls
    /// `threadExit` as it ends (to free what it kept per thread).
    public init(count: Int, workers: Int, depth: Int, stackSize: Int = 1 << 22, threadExit: @escaping @Sendable () -> Void = {},
                work: @escaping @Sendable (_ worker: Int, _ item: Int) -> Output) {
        self.count = count
        self.depth = max(depth, workers)
        self.work = work
        running = max(1, workers)
        for w in 0..<max(1, workers) {
            // The thread holds this object, not `work`: the last thread to end drops `work` itself.
            let thread = Thread { [self] in
                defer {
                    threadExit()
                    lock.lock()
                    running -= 1
                    if running == 0 { self.work = nil }
                    lock.broadcast()
                    lock.unlock()
                }
                while true {
                    lock.lock()
                    while !cancelled && started < count && started - next >= self.depth { lock.wait() }
                    let i = started
                    let stop = cancelled || i >= count
                    if !stop { started += 1 }
                    let job = stop ? nil : self.work   // none held on the way out
                    lock.unlock()
                    guard !stop, let job else { return }
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    let r = job(w, i)
                    let spent = DispatchTime.now().uptimeNanoseconds - t0
                    lock.lock()
                    workNanoseconds += spent
                    ready[i] = r
                    lock.broadcast()
                    lock.unlock()
                }
            }
            thread.stackSize = stackSize
            thread.start()
        }
    }

    /// Item `i` (call with 0, 1, 2, … in order); waits until it is ready.
    public func take(_ i: Int) -> Output {
        lock.lock()
        defer { lock.unlock() }
        if ready[i] == nil {
            let t0 = DispatchTime.now().uptimeNanoseconds
            while ready[i] == nil { lock.wait() }
            waitNanoseconds += DispatchTime.now().uptimeNanoseconds - t0
        }
        let r = ready.removeValue(forKey: i)!
        next = i + 1
        lock.broadcast()
        return r
    }

    /// Seconds the workers spent on items so far (summed over workers), and seconds `take` waited for an item that
    /// was not ready yet (the consumer starved).
    public var seconds: (working: Double, waiting: Double) {
        lock.lock()
        defer { lock.unlock() }
        return (Double(workNanoseconds) / 1e9, Double(waitNanoseconds) / 1e9)
    }

    /// Stops the workers after the items they are on (items not started are never made) and waits until every
    /// thread has ended and the job is let go: nothing it holds outlives the call (LeakSanitizer found a process
    /// exiting while a worker still held the model). Call it from the consumer, never from `work`.
    public func cancel() {
        lock.lock()
        cancelled = true
        lock.broadcast()
        while running > 0 { lock.wait() }
        lock.unlock()
    }
}

/// Decodes and preprocesses images on a background thread, a few ahead of the consumer.
public final class Prefetcher: @unchecked Sendable {
    public enum Result: Sendable {
        /// The input's values and shape.
        case tensor([Float], [Int])
        case failed(String)
    }

    private let workers: OrderedWorkers<Result>

    /// Starts decoding `paths` in order with `prepare`, keeping at most `depth` results waiting.
    public init(paths: [String], depth: Int = 4, prepare: @escaping @Sendable (String) throws -> (pixels: [Float], shape: [Int])) {
        workers = OrderedWorkers(count: paths.count, workers: 1, depth: depth) { _, i in
            do { let t = try prepare(paths[i]); return .tensor(t.pixels, t.shape) } catch { return .failed("\(error)") }
        }
    }

    /// The result for image `i` (call with 0, 1, 2, … in order); waits until it is ready.
    public func take(_ i: Int) -> Result { workers.take(i) }

    /// Seconds spent decoding and preprocessing so far (on the background thread), and seconds `take` waited for
    /// an image that was not ready yet (the consumer starved).
    public var seconds: (preparing: Double, waiting: Double) {
        let s = workers.seconds
        return (s.working, s.waiting)
    }

    public func cancel() { workers.cancel() }
}
