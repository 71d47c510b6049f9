import SwiftQCore

/// Relu, and Clip with constant bounds starting at 0 (ReLU6), right after a quantized Conv, ConvTranspose
/// or Gemm that is their producer's only reader: for quantization the pair is one op. The producer's output
/// gets no Q/DQ; the activation's output carries the one pair, whose range starts at 0, so runtimes fold the
/// activation into the quantized producer (its clamp is the quantized range).
public func fusedActivations(_ g: Graph, quantized: Set<Int>) -> [Int: Int] {
    let consumers = g.consumers()
    let inits = g.initializerTable
    let outputs = Set(g.outputs.map(\.name))
    var fused: [Int: Int] = [:]
    for (i, n) in g.nodes.enumerated() where quantized.contains(i) && ["Conv", "ConvTranspose", "Gemm"].contains(n.opType) {
        guard let out = n.outputs.first, !outputs.contains(out), let next = consumers[out], next.count == 1, quantized.contains(next[0]) else { continue }
        let a = g.nodes[next[0]]
        if a.opType == "Relu" || (a.opType == "Clip" && clipLowerBound(a, inits) == 0) { fused[i] = next[0] }
    }
    return fused
}

/// The constant lower bound of a Clip (attribute before opset 11, input after), nil when not constant.
func clipLowerBound(_ n: Node, _ inits: [String: Tensor]) -> Float? {
    if let v = n.float("min") { return v }
    guard let name = n.input(1) else { return -.infinity }
    return inits[name]?.floats().first
}
