import CSupport

/// The git commit this build came from (abbreviated; "-dirty" when the tree had uncommitted changes), or nil when the
/// build did not record one (a plain `swift build`; `make build` records it).
public let buildCommit: String? = {
    let c = String(cString: sq_build_commit())
    return c.isEmpty ? nil : c
}()
