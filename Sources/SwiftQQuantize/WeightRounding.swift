import Foundation
import SwiftQCore
import SwiftQKernels
import SwiftQPasses

/// Whether node `n`'s weight gets one scale per output channel under `options`: MatMul has one scale for B
/// (runtimes fuse per-tensor B; it has no bias to take a per-channel scale); a grouped ConvTranspose too
/// (DequantizeLinear's axis 1 holds M/group channels, not M).
func weightPerChannel(_ n: Node, options: QuantizeOptions) -> Bool {
    options.perChannel && n.opType != "MatMul" && !(n.opType == "ConvTranspose" && (n.int("group") ?? 1) != 1)
}

/// The weight-rounding stage: for every quantized weighted layer that `hessians` covers, its weights rounded by
/// `options.weightRounding` (GPTQ: one call per group over that group's input Hessian). Nodes left out (a grouped
/// ConvTranspose, a MatMul by a batch of matrices, a layer calibration never reached) are rounded to nearest by
/// `materialize`. Layers are independent and split between `threads`, largest first; `progress` is told each
/// layer as it is done (done, total, node name), from whichever thread finished it, one call at a time.
public func roundWeights(_ model: Model, plan: QuantizationPlan, hessians: [Int: LayerHessian], options: QuantizeOptions, threads: Int,
                         progress: (Int, Int, String) -> Void = { _, _, _ in }) -> [Int: RoundedWeight] {
    guard options.weightRounding == .gptq else { return [:] }
    let g = model.graph
    let inits = g.initializerTable
    let todo = plan.quantized.filter { hessians[$0] != nil }.sorted { (hessians[$0]!.columns, $1) > (hessians[$1]!.columns, $0) }
    var results = [RoundedWeight?](repeating: nil, count: g.nodes.count)
    let lock = NSLock()
    var taken = 0, done = 0
    results.withUnsafeMutableBufferPointer { results in
        parallelFor(max(1, min(threads, todo.count)), threads: threads) { _ in
            while true {
                lock.lock()
                let k = taken
                taken += 1
                lock.unlock()
                guard k < todo.count else { return }
                let i = todo[k], n = g.nodes[i]
                results[i] = inits[n.inputs[1]].flatMap { roundLayer(n, weight: $0, hessian: hessians[i]!, options: options) }
                lock.lock()
                done += 1
                progress(done, todo.count, n.reportName)
                lock.unlock()
            }
        }
    }
    var out: [Int: RoundedWeight] = [:]
    for i in todo { if let r = results[i] { out[i] = r } }
    return out
}

/// One layer's weights by GPTQ, group by group; nil when the Hessian does not fit the weight or is not finite (inputs
/// that overflowed float32: the layer is then rounded to nearest).
func roundLayer(_ n: Node, weight w: Tensor, hessian h: LayerHessian, options: QuantizeOptions) -> RoundedWeight? {
    guard h.rows > 0, h.sums.allSatisfy(\.isFinite) else { return nil }
    let perChannel = weightPerChannel(n, options: options)
    let bits = options.weightBits(of: n)
    let qmax = Int32((1 << (bits - 1)) - 1)
    let weights = w.floats()
    // Rows are output channels, columns the layer's input features in the Hessian's order: `at[r * k + c]` is where
    // row r, column c sits in the weight tensor (K × N for a Gemm without transB and a MatMul; C × M × KH × KW for
    // a ConvTranspose, whose columns are (input channel, tap)).
    let rows: Int, at: [Int]?
    switch n.opType {
    case "Gemm" where (n.int("transB") ?? 0) == 0, "MatMul":
        rows = w.shape[1]
        let k = w.shape[0]
        at = (0..<(rows * k)).map { ($0 % k) * rows + $0 / k }
    case "ConvTranspose":
        rows = w.shape[1]
        let taps = w.shape[2] * w.shape[3], k = w.shape[0] * taps
        at = (0..<(rows * k)).map { v in
            let r = v / k, col = v % k
            return ((col / taps) * rows + r) * taps + col % taps
        }
    default:
        rows = w.shape[0]
        at = nil
    }
    let k = weights.count / max(rows, 1)
    guard rows > 0, rows % h.groups == 0, k == h.columns else { return nil }
    let values = at.map { $0.map { weights[$0] } } ?? weights
    var scales: [Float] = [], q: [Int32] = [], error = RoundingError(nearest: 0, rounded: 0, energy: 0)
    let perGroup = rows / h.groups
    // One scale for the tensor: every group's grid is the tensor's absolute maximum.
    let tensorMax = perChannel ? nil : values.reduce(Float(0)) { max($0, abs($1)) }
    for grp in 0..<h.groups {
        let sub = Array(values[(grp * perGroup * k)..<((grp + 1) * perGroup * k)])
        let r = GPTQ.round(sub, rows: perGroup, columns: k, hessian: h.matrix(grp), qmax: qmax, tensorMax: tensorMax, options: options.gptq, threads: 1)
        scales += r.scales
        q += r.q
        error = error + r.error
    }
    if let at {
        var inPlace = q
        for (v, o) in at.enumerated() { inPlace[o] = q[v] }
        q = inPlace
    }
    return RoundedWeight(scales: perChannel ? scales : [scales[0]], values: q, bits: bits, error: error)
}
