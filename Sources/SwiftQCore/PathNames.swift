/// File-path pieces without Foundation's NSString path methods: on Linux, `deletingLastPathComponent` traps
/// on a one-character path ("m"), which made `swiftq inspect m` crash.
public enum PathNames {
    /// The folder part of `path` ("." when there is none, "/" for a file in the root).
    public static func folder(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        let dir = p[..<slash]
        return dir.isEmpty ? "/" : String(dir)
    }

    /// The last component of `path` (trailing slashes ignored).
    public static func name(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return String(p) }
        return String(p[p.index(after: slash)...])
    }

    /// A file beside `path`: its name without `.onnx`, plus `suffix` ("m.onnx", ".swq" -> "m.swq").
    public static func sibling(of path: String, suffix: String) -> String {
        (path.hasSuffix(".onnx") ? String(path.dropLast(5)) : path) + suffix
    }

    /// `folder`/`name`.
    public static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }
}
