import Foundation

/// Why a file could not be read, in words for a one-line message (no Foundation error domains or codes).
public struct FileReadError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
    public init(_ reason: String) { self.reason = reason }
}

/// Reads whole input files the careful way: a folder, a FIFO or a device is refused before it is opened (a
/// FIFO named like an image would block the read forever), a file larger than the caller's bound is refused
/// before it is read, and failures are the system's own words ("Permission denied"), not
/// "NSCocoaErrorDomain Code=257".
public enum FileBytes {
    public static func read(_ path: String, maxBytes: Int) throws -> Data {
        var st = stat()
        guard stat(path, &st) == 0 else { throw FileReadError(errno == ENOENT ? "no such file" : String(cString: strerror(errno))) }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw FileReadError("is a folder, not a file")
        default: throw FileReadError("is not a regular file (a pipe, socket or device)")
        }
        guard Int(st.st_size) <= maxBytes else {
            throw FileReadError("is \(st.st_size) bytes, more than the \(maxBytes) allowed for it")
        }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FileReadError(String(cString: strerror(errno))) }
        defer { close(fd) }
        var data = Data(count: Int(st.st_size))
        var done = 0
        let failure: Int32 = data.withUnsafeMutableBytes { b in
            while done < b.count {
                let n = Foundation.read(fd, b.baseAddress! + done, b.count - done)
                if n < 0 { if errno == EINTR { continue }; return errno }
                if n == 0 { break }  // the file shrank while being read
                done += n
            }
            return 0
        }
        if failure != 0 { throw FileReadError(String(cString: strerror(failure))) }
        if done < data.count { data.removeSubrange(done...) }
        return data
    }
}
