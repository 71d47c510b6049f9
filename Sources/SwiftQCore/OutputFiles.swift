import CSupport
import Foundation

/// Every file one run writes, as one transaction: all appear under their final names, or none does.
///
/// `reserve` checks each output before any work is done (it must not be an input file or another output,
/// compared by device and inode rather than spelling, must not be a folder, and its folder must exist and
/// take a new file) and creates its temporary file, `.swiftq-tmp-…` in the same folder, right away: an
/// unwritable folder is found before the calibration, not after it. `write` fills a temporary file;
/// `commit` renames them all, in the order they were reserved (reserve the file others depend on last).
/// Until then any failure, `abort`, the object's end, or SIGINT/SIGTERM/SIGHUP removes every temporary file;
/// during the renames those signals wait until the last is done. A SIGKILL can leave a temporary file, never a
/// partial file under a final name (one in the microseconds of the renames can leave some outputs in place).
public final class OutputFiles: @unchecked Sendable {
    /// Why an output cannot be used; `description` is one line naming the file.
    public struct Refusal: Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public static let temporaryPrefix = ".swiftq-tmp-"

    private enum Identity: Equatable {
        case existing(dev: UInt64, ino: UInt64)
        case new(dirDev: UInt64, dirIno: UInt64, name: String)
    }

    private struct Entry {
        let path: String
        let role: String
        let temporary: String
        let slot: Int32
        let identity: Identity
    }

    private var inputs: [(path: String, dev: UInt64, ino: UInt64)] = []
    private var entries: [Entry] = []
    private var finished = false

    /// `inputs`: files the run reads, which no output may replace (missing ones are ignored).
    public init(inputs: [String] = []) {
        sq_tmp_install_signal_handlers()
        for p in inputs { addInput(p) }
    }

    deinit { abort() }

    /// Adds a file the run reads (a model's external data, a labels file…).
    public func addInput(_ path: String) {
        var st = stat()
        if stat(path, &st) == 0 { inputs.append((path, UInt64(st.st_dev), UInt64(st.st_ino))) }
    }

    /// Checks `path` and creates its temporary file now. `role` names it in messages ("--output", "--json").
    /// Returns the temporary path, for writers that stream into a file themselves.
    @discardableResult
    public func reserve(_ path: String, role: String) throws -> String {
        func refuse(_ why: String) -> Refusal { Refusal("\(role) \(path): \(why)") }
        if path.isEmpty { throw Refusal("\(role): empty file name") }
        let name = PathNames.name(of: path)
        let dir = PathNames.folder(of: path)
        if path.hasSuffix("/") || name == "." || name == ".." { throw refuse("is a folder") }
        var dst = stat()
        guard stat(dir, &dst) == 0 else { throw refuse("folder '\(dir)' does not exist") }
        guard (dst.st_mode & S_IFMT) == S_IFDIR else { throw refuse("'\(dir)' is not a folder") }
        var st = stat()
        let identity: Identity
        if stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { throw refuse("is a folder") }
            if (st.st_mode & S_IFMT) != S_IFREG { throw refuse("exists and is not a regular file") }
            identity = .existing(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
            if let input = inputs.first(where: { $0.dev == UInt64(st.st_dev) && $0.ino == UInt64(st.st_ino) }) {
                throw refuse(input.path == path ? "is an input of this run; it would be overwritten" : "is the same file as the input '\(input.path)'; it would be overwritten")
            }
        } else {
            identity = .new(dirDev: UInt64(dst.st_dev), dirIno: UInt64(dst.st_ino), name: name)
        }
        if let other = entries.first(where: { $0.identity == identity }) {
            throw refuse("is the same file as \(other.role) \(other.path)")
        }
        let temporary = PathNames.join(dir,
            Self.temporaryPrefix + String(name.prefix(180)) + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 36))
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw refuse("cannot write in folder '\(dir)': \(String(cString: strerror(errno)))") }
        close(fd)
        let slot = sq_tmp_remember(temporary)
        entries.append(Entry(path: path, role: role, temporary: temporary, slot: slot, identity: identity))
        return temporary
    }

    /// Writes `bytes` as the whole content of `path`'s temporary file (reserved first).
    public func write<Bytes: ContiguousBytes>(_ bytes: Bytes, to path: String) throws {
        guard let e = entries.first(where: { $0.path == path }) else { throw Refusal("\(path): written without being reserved") }
        let fd = open(e.temporary, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw Refusal("\(e.role) \(path): cannot write: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let err: Int32 = bytes.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let n = Foundation.write(fd, b.baseAddress! + done, min(b.count - done, 1 << 30))
                if n < 0 { if errno == EINTR { continue }; return errno }
                done += n
            }
            return 0
        }
        if err != 0 { throw Refusal("\(e.role) \(path): cannot write: \(String(cString: strerror(err)))") }
    }

    /// Renames every temporary file to its final name, in the order reserved.
    public func commit() throws {
        guard !finished else { return }
        // An interrupt that arrives now waits until every rename is done (then the process ends as it would
        // have): the outputs appear together or not at all.
        sq_tmp_begin_commit()
        defer { sq_tmp_end_commit() }
        for (i, e) in entries.enumerated() {
            if rename(e.temporary, e.path) != 0 {
                let why = String(cString: strerror(errno))
                for later in entries[i...] { unlink(later.temporary); sq_tmp_forget(later.slot) }
                finished = true
                throw Refusal("\(e.role) \(e.path): cannot write: \(why)")
            }
            sq_tmp_forget(e.slot)
        }
        finished = true
    }

    /// Removes every temporary file; nothing is written. Safe to call more than once.
    public func abort() {
        guard !finished else { return }
        for e in entries {
            unlink(e.temporary)
            sq_tmp_forget(e.slot)
        }
        finished = true
    }
}
