import Foundation

/// Where the repository's Fixtures and the optional ../shared material are.
public enum Paths {
    public static let repo: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    public static func fixture(_ name: String) -> String { "\(repo)/Fixtures/\(name)" }

    /// ../shared or $SWIFTQ_SHARED, or nil (tests that need it skip and say so).
    public static let shared: String? = {
        let p = ProcessInfo.processInfo.environment["SWIFTQ_SHARED"] ?? "\(repo)/../shared"
        return FileManager.default.fileExists(atPath: "\(p)/models") ? (p as NSString).standardizingPath : nil
    }()

    public static func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "swiftq-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}
