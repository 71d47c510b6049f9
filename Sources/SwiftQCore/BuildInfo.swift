import CSupport

/// The git commit this build came from (abbreviated; "-dirty" when the tree had uncommitted changes), or nil when the
/// build did not record one (a plain `swift build`; `make build` records it).
public let buildCommit: String? = {
    let c = String(cString: sq_build_commit())
    return c.isEmpty ? nil : c
}()

/// swiftq's release; `--version` adds the commit (`buildCommit`). Output files record only this.
public let swiftqVersion = "0.1.0"

/// The release and the commit: "0.1.0 (commit 59b9171cfdcd)".
public var swiftqVersionLine: String { swiftqVersion + (buildCommit.map { " (commit \($0))" } ?? "") }
