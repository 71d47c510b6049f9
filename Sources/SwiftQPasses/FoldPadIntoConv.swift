import SwiftQCore
import SwiftQRuntime

/// A zero-constant Pad of the spatial dimensions feeding only a Conv becomes part of the Conv's `pads` (the
/// runtime's own fold, as a pass), so no float Pad sits between quantized layers of TF-"same" exports.
public struct FoldPadIntoConv: Pass {
    public let name = "fold-pad"
    public init() {}

    public func patches(_ model: Model) throws -> [Patch] {
        padFolds(model.graph, opset: model.opset).map { f in
            Patch("Pad '\(model.graph.nodes[f.pad].displayName)' folded into Conv '\(f.folded.displayName)'",
                  [.remove(node: f.pad), .replace(node: f.conv, with: f.folded)])
        }
    }
}
