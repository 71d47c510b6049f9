import CKernels
import SwiftQCore
import SwiftQInteger
import SwiftQONNX
import SwiftQQuantize
import SwiftQRuntime
import TestSupport
import XCTest

final class GPTQTests: XCTestCase {
    var values = SeededRandom(seed: 77)

    /// Σ x xᵀ of `rows` correlated inputs of `k` features (a shared component makes the columns correlated, as
    /// neighbouring pixels and channels are).
    func hessian(rows: Int, k: Int) -> [Double] {
        var h = [Double](repeating: 0, count: k * k)
        for _ in 0..<rows {
            let common = values.floats(1)[0]
            let x = values.floats(k).map { Double($0 + 0.8 * common) }
            for a in 0..<k { for b in 0..<k { h[a * k + b] += x[a] * x[b] } }
        }
        return h
    }

    /// The dense reference GPTQ is a fast form of: quantize the columns one at a time in GPTQ's order, and after
    /// each, move the not yet quantized columns by the optimal update through the exact inverse of H restricted to
    /// them (recomputed from scratch at every step).
    func referenceRound(_ w: [Float], rows: Int, k: Int, h: [Double], scales: [Float], qmax: Float, options: GPTQOptions) -> [Int32] {
        var hd = h
        for c in 0..<k where hd[c * k + c] <= 0 { hd[c * k + c] = 1 }
        let damp = options.dampening * (0..<k).reduce(0.0) { $0 + hd[$1 * k + $1] } / Double(k)
        for c in 0..<k { hd[c * k + c] += damp }
        let order = options.activationOrder ? (0..<k).sorted { hd[$0 * k + $0] > hd[$1 * k + $1] } : Array(0..<k)
        var q = [Int32](repeating: 0, count: rows * k)
        for r in 0..<rows {
            var wr = (0..<k).map { Double(w[r * k + $0]) }
            for (t, c) in order.enumerated() {
                let s = Double(scales[r])
                let qc = min(max((wr[c] / s).rounded(.toNearestOrEven), -Double(qmax)), Double(qmax))
                q[r * k + c] = Int32(qc)
                let rest = Array(order[t...])
                let inv = invert(rest.flatMap { a in rest.map { b in hd[a * k + b] } }, rest.count)
                let err = (wr[c] - qc * s) / inv[0]
                for (j, f) in rest.enumerated().dropFirst() { wr[f] -= err * inv[j] }
            }
        }
        return q
    }

    /// Gauss-Jordan inverse of an n × n matrix.
    func invert(_ m: [Double], _ n: Int) -> [Double] {
        var a = m, inv = (0..<(n * n)).map { $0 / n == $0 % n ? 1.0 : 0.0 }
        for col in 0..<n {
            let p = (col..<n).max { abs(a[$0 * n + col]) < abs(a[$1 * n + col]) }!
            for j in 0..<n { a.swapAt(col * n + j, p * n + j); inv.swapAt(col * n + j, p * n + j) }
            let d = a[col * n + col]
            for j in 0..<n { a[col * n + j] /= d; inv[col * n + j] /= d }
            for i in 0..<n where i != col {
                let f = a[i * n + col]
                for j in 0..<n { a[i * n + j] -= f * a[col * n + j]; inv[i * n + j] -= f * inv[col * n + j] }
            }
        }
        return inv
    }

    func testGPTQEqualsTheDenseReference() {
        for (rows, k, order) in [(5, 12, true), (3, 20, false), (4, 33, true)] {
            let h = hessian(rows: 4 * k, k: k)
            let w = values.floats(rows * k)
            var options = GPTQOptions()
            options.activationOrder = order
            options.smallestRange = 1
            options.refitSteps = false
            let r = GPTQ.round(w, rows: rows, columns: k, hessian: h, qmax: 7, options: options, threads: 2)
            let absMax = (0..<rows).map { row in (0..<k).map { abs(w[row * k + $0]) }.max()! / 7 }
            XCTAssertEqual(r.scales, absMax)
            let want = referenceRound(w, rows: rows, k: k, h: h, scales: r.scales, qmax: 7, options: options)
            XCTAssertEqual(r.q, want, "rows \(rows), columns \(k)")
            // The reported output error is Δwᵀ H Δw of the result, to 1e-5 relative.
            var e = 0.0
            for row in 0..<rows {
                let d = (0..<k).map { Double(Float(r.q[row * k + $0]) * r.scales[row] - w[row * k + $0]) }
                for a in 0..<k { for b in 0..<k { e += d[a] * h[a * k + b] * d[b] } }
            }
            XCTAssertEqual(r.error.rounded, e, accuracy: 1e-5 * e)
            XCTAssertLessThan(r.error.rounded, r.error.nearest, "GPTQ's output error is below nearest rounding's on correlated inputs")
        }
    }

    /// The Cholesky factor and the triangular inverse GPTQ's U comes from, at sizes on both sides of their 32-row
    /// blocks: L Lᵀ = A and L · L⁻¹ = I to 1e-9, both lower triangular; a matrix that is not positive definite
    /// (a negative eigenvalue, found in a later block) is refused.
    func testCholeskyAndLowerInverse() {
        for n in [1, 2, 7, 31, 32, 33, 64, 65, 97] {
            let a = hessian(rows: 2 * n + 3, k: n).enumerated().map { $0.element + ($0.offset % (n + 1) == 0 ? 0.1 : 0) }
            var l = [Double](repeating: 0, count: n * n), m = l
            XCTAssertEqual(sq_cholesky(a, Int32(n), &l), 1, "n \(n)")
            sq_lower_inverse(l, Int32(n), &m)
            let scale = a.map(abs).max()!
            for i in 0..<n {
                for j in 0..<n {
                    var llt = 0.0, lm = 0.0
                    for p in 0..<n { llt += l[i * n + p] * l[j * n + p]; lm += l[i * n + p] * m[p * n + j] }
                    XCTAssertEqual(llt, a[i * n + j], accuracy: 1e-9 * scale, "L Lᵀ, n \(n) (\(i), \(j))")
                    XCTAssertEqual(lm, i == j ? 1 : 0, accuracy: 1e-9, "L L⁻¹, n \(n) (\(i), \(j))")
                    if j > i { XCTAssertEqual(l[i * n + j], 0); XCTAssertEqual(m[i * n + j], 0) }
                }
            }
            if n > 40 {
                var b = a
                b[40 * n + 40] = -1
                XCTAssertEqual(sq_cholesky(b, Int32(n), &l), 0, "not positive definite, n \(n)")
            }
        }
    }

    /// The refitted steps keep GPTQ's integers and give each row the step at which its output error
    /// (w − s·q)ᵀ H (w − s·q) is least: the closed form in double, and below the error a step 1% either side gives.
    func testRefittedStepsMinimizeEachRowsOutputError() {
        for (rows, k) in [(6, 9), (5, 40), (3, 70)] {
            let h = hessian(rows: 3 * k, k: k)
            let w = values.floats(rows * k)
            var plain = GPTQOptions()
            plain.refitSteps = false
            let r0 = GPTQ.round(w, rows: rows, columns: k, hessian: h, qmax: 7, options: plain, threads: 2)
            let r = GPTQ.round(w, rows: rows, columns: k, hessian: h, qmax: 7, threads: 2)
            XCTAssertEqual(r.q, r0.q, "the refit changes steps, not integers")
            func error(_ row: Int, _ s: Double) -> Double {
                let d = (0..<k).map { Double(r.q[row * k + $0]) * s - Double(w[row * k + $0]) }
                var e = 0.0
                for a in 0..<k { for b in 0..<k { e += d[a] * h[a * k + b] * d[b] } }
                return e
            }
            for row in 0..<rows {
                let q = (0..<k).map { Double(r.q[row * k + $0]) }, x = (0..<k).map { Double(w[row * k + $0]) }
                var num = 0.0, den = 0.0
                for a in 0..<k { for b in 0..<k { num += q[a] * h[a * k + b] * x[b]; den += q[a] * h[a * k + b] * q[b] } }
                XCTAssertEqual(Double(r.scales[row]), num / den, accuracy: 1e-5 * num / den, "row \(row) of \(rows) x \(k)")
                let s = Double(r.scales[row])
                XCTAssertLessThan(error(row, s), error(row, s * 1.01))
                XCTAssertLessThan(error(row, s), error(row, s * 0.99))
                XCTAssertLessThanOrEqual(error(row, s), error(row, Double(r0.scales[row])))
            }
            XCTAssertLessThan(r.error.rounded, r0.error.rounded)
        }
    }

    /// The range search keeps the step whose diag(H)-weighted error is least; with a weight far out of line,
    /// clipping it wins.
    func testRangeSearchClipsAnOutlier() {
        let k = 16
        var w = values.floats(k, -0.1, 0.1)
        w[3] = 1
        var h = [Double](repeating: 0, count: k * k)
        for c in 0..<k { h[c * k + c] = c == 3 ? 0.01 : 1 }
        let r = GPTQ.round(w, rows: 1, columns: k, hessian: h, qmax: 7)
        XCTAssertLessThan(r.scales[0], 1 / 7 * 0.99)
        XCTAssertLessThan(r.error.rounded, r.error.nearest)
    }

    /// The streamed Hessians equal Σ x xᵀ over im2col rows computed directly: a padded, strided 3x3 Conv (GEMM
    /// path), a grouped one and a depthwise one (the direct path), and a Gemm over a batch.
    func testHessianCollectorMatchesDirectSums() throws {
        let pad = Attribute(name: "pads", value: .ints([1, 1, 1, 1]))
        let cases: [(Node, [Int], [Int])] = [
            (Node(name: "c", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: [pad, Attribute(name: "strides", value: .ints([2, 2]))]), [2, 6, 7, 9], [4, 6, 3, 3]),
            (Node(name: "g", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: [pad, Attribute(name: "group", value: .int(2))]), [1, 4, 5, 5], [6, 2, 3, 3]),
            (Node(name: "d", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: [pad, Attribute(name: "group", value: .int(3))]), [1, 3, 6, 4], [3, 1, 3, 3]),
            (Node(name: "f", opType: "Gemm", inputs: ["x", "w"], outputs: ["y"], attributes: [Attribute(name: "transB", value: .int(1))]), [5, 40], [3, 40]),
        ]
        for (node, xShape, wShape) in cases {
            let g = Graph(nodes: [node], inputs: [ValueInfo(name: "x", dtype: .float, shape: xShape.map { .value($0) })],
                          outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
                          initializers: [Initializer(name: "w", tensor: Tensor(floats: values.floats(wShape.reduce(1, *)), shape: wShape))])
            let collector = HessianCollector(graph: g, opset: 13, nodes: [0], threads: 2)
            let x = values.floats(xShape.reduce(1, *))
            collector.observe("x", RTensor(floats: x, shape: xShape))
            let h = try XCTUnwrap(collector.hessians[0])
            // Rows of the layer's input as the weights see them.
            var rows: [[[Double]]] = []  // per group
            if node.opType == "Gemm" {
                rows = [(0..<xShape[0]).map { r in (0..<xShape[1]).map { Double(x[r * xShape[1] + $0]) } }]
            } else {
                let groups = Int(node.int("group") ?? 1), cpg = xShape[1] / groups, stride = node.opType == "Conv" && node.name == "c" ? 2 : 1
                let (hh, ww) = (xShape[2], xShape[3]), oh = (hh + 2 - 3) / stride + 1, ow = (ww + 2 - 3) / stride + 1
                rows = (0..<groups).map { grp in
                    (0..<xShape[0]).flatMap { b in
                        (0..<(oh * ow)).map { p in
                            (0..<(cpg * 9)).map { col -> Double in
                                let c = grp * cpg + col / 9, ky = col % 9 / 3, kx = col % 3
                                let iy = (p / ow) * stride - 1 + ky, ix = (p % ow) * stride - 1 + kx
                                guard iy >= 0, iy < hh, ix >= 0, ix < ww else { return 0 }
                                return Double(x[((b * xShape[1] + c) * hh + iy) * ww + ix])
                            }
                        }
                    }
                }
            }
            XCTAssertEqual(h.groups, rows.count)
            XCTAssertEqual(h.rows, Double(rows[0].count))
            for (grp, rs) in rows.enumerated() {
                let k = rs[0].count, m = h.matrix(grp)
                XCTAssertEqual(h.columns, k)
                for a in 0..<k {
                    for b in 0..<k {
                        let want = rs.reduce(0.0) { $0 + $1[a] * $1[b] }
                        XCTAssertEqual(m[a * k + b], want, accuracy: 1e-4 * max(1, abs(want)), "\(node.name) group \(grp) [\(a), \(b)]")
                    }
                }
            }
        }
    }

    /// A ConvTranspose's Hessian is Σ over output pixels of the column of input values its taps read: the reference
    /// columns come from the float runtime's ConvTranspose with one-hot weights (strides, pads, dilations and an
    /// output padding that no tap reaches), whole and in chunks of a few output rows. A MatMul's rows are its
    /// input's leading dimensions. On an identity Hessian GPTQ is nearest rounding on each output channel's grid,
    /// which checks that both layouts (C × M × KH × KW; K × N) go in and out of GPTQ's rows in place.
    func testTransposedAndMatMulLayers() throws {
        let attributes = [Attribute(name: "strides", value: .ints([2, 2])), Attribute(name: "pads", value: .ints([1, 0, 0, 1])),
                          Attribute(name: "dilations", value: .ints([2, 1])), Attribute(name: "output_padding", value: .ints([1, 0]))]
        let xShape = [2, 3, 5, 4], wShape = [3, 2, 3, 2]
        let x = RTensor(floats: values.floats(xShape.reduce(1, *)), shape: xShape)
        func graph(_ op: String, _ w: Tensor, x shape: [Int], attributes: [Attribute] = []) -> Graph {
            Graph(nodes: [Node(name: "t", opType: op, inputs: ["x", "w"], outputs: ["y"], attributes: attributes)],
                  inputs: [ValueInfo(name: "x", dtype: .float, shape: shape.map { .value($0) })],
                  outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: [Initializer(name: "w", tensor: w)])
        }
        // Column (ci, ky, kx) over every output pixel of both images: the output of a one-hot weight.
        let k = 3 * 3 * 2
        var columns: [[Float]] = []
        for col in 0..<k {
            var onehot = [Float](repeating: 0, count: 3 * 1 * 3 * 2)
            onehot[col] = 1
            let g = graph("ConvTranspose", Tensor(floats: onehot, shape: [3, 1, 3, 2]), x: xShape, attributes: attributes)
            let y = try Interpreter(model: Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g), options: .init(threads: 1, fuse: false)).run(["x": x])["y"]!
            XCTAssertEqual(y.shape, [2, 1, 13, 7])
            columns.append(y.floatArray())
        }
        let weight = Tensor(floats: values.floats(wShape.reduce(1, *)), shape: wShape)
        for chunk in [16384, 7] {
            let collector = HessianCollector(graph: graph("ConvTranspose", weight, x: xShape, attributes: attributes), opset: 13, nodes: [0], threads: 1)
            collector.transposedChunk = chunk
            collector.observe("x", x)
            let h = try XCTUnwrap(collector.hessians[0])
            XCTAssertEqual(h.columns, k)
            XCTAssertEqual(h.rows, 2 * 13 * 7)
            for a in 0..<k {
                for b in 0..<k {
                    let want = zip(columns[a], columns[b]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    XCTAssertEqual(h.sums[a * k + b], want, accuracy: 1e-4 * max(1, abs(want)), "chunk \(chunk) [\(a), \(b)]")
                }
            }
        }
        let mx = RTensor(floats: values.floats(2 * 3 * 6), shape: [2, 3, 6])
        let matmul = HessianCollector(graph: graph("MatMul", Tensor(floats: values.floats(24), shape: [6, 4]), x: [2, 3, 6]), opset: 13, nodes: [0], threads: 1)
        matmul.observe("x", mx)
        let hm = try XCTUnwrap(matmul.hessians[0])
        XCTAssertEqual(hm.rows, 6)
        for a in 0..<6 {
            for b in 0..<6 {
                let want = (0..<6).reduce(0.0) { $0 + Double(mx.f[$1 * 6 + a]) * Double(mx.f[$1 * 6 + b]) }
                XCTAssertEqual(hm.sums[a * 6 + b], want, accuracy: 1e-4 * max(1, abs(want)))
            }
        }

        // Identity Hessians, no range search, no refit: GPTQ's integers are nearest rounding in the weight's own layout.
        var options = QuantizeOptions()
        options.weightBits = 4
        options.weightRounding = .gptq
        options.gptq.smallestRange = 1
        options.gptq.refitSteps = false
        func identity(_ k: Int) -> LayerHessian {
            LayerHessian(columns: k, groups: 1, sums: (0..<(k * k)).map { $0 / k == $0 % k ? 1 : 0 }, rows: 1)
        }
        // Output channel m's weights scaled by 1 + 4m: a row that gathered another channel's weights gets another grid.
        let graded = Tensor(floats: weight.floats().enumerated().map { $0.element * Float(1 + 4 * ($0.offset / 6 % 2)) }, shape: wShape)
        for (op, w, xs, perChannel) in [("ConvTranspose", graded, xShape, true), ("MatMul", Tensor(floats: values.floats(24), shape: [6, 4]), [2, 3, 6], false)] {
            let g = graph(op, w, x: xs, attributes: op == "ConvTranspose" ? attributes : [])
            let model = Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g)
            let plan = QuantizationPlan(g, exclude: [], floatTypes: { _ in true })
            XCTAssertEqual(plan.quantized, [0])
            let k = w.shape.count == 4 ? w.shape[0] * w.shape[2] * w.shape[3] : w.shape[0]
            let r = try XCTUnwrap(roundWeights(model, plan: plan, hessians: [0: identity(k)], options: options, threads: 1)[0], op)
            let v = w.floats(), m = w.shape[1], taps = w.shape.count == 4 ? w.shape[2] * w.shape[3] : 1
            // The output channel of element e: axis 1 of both layouts.
            let channel = { (e: Int) in (e / taps) % m }
            let absMax = (0..<m).map { c in v.indices.filter { channel($0) == c }.map { abs(v[$0]) }.max()! }
            let tensorMax = absMax.max()!
            for e in v.indices {
                let step = (perChannel ? absMax[channel(e)] : tensorMax) / 7
                XCTAssertEqual(r.values[e], Int32((v[e] / step).rounded()), "\(op) element \(e)")
            }
            XCTAssertEqual(r.scales.count, perChannel ? m : 1)
        }
    }

    func testNibblesRoundTrip() {
        let v: [Int8] = [-8, -1, 0, 7, 3, -5, 1]
        let packed = Nibbles.pack(v.map { UInt8(bitPattern: $0) })
        XCTAssertEqual(packed.count, 4)
        XCTAssertEqual(packed[0], 0xF8, "first value in the low nibble")
        XCTAssertEqual(Nibbles.unpack(packed, count: v.count, signed: true).map { Int8(bitPattern: $0) }, v)
        XCTAssertEqual(Nibbles.unpack(Nibbles.pack([0, 15, 9]), count: 3, signed: false), [0, 15, 9])
    }

    /// INT4 tensors survive the ONNX writer and reader (packed two per byte in the file) and the weight file.
    func testInt4TensorsRoundTripThroughFiles() throws {
        let values: [Int8] = [-7, 7, 0, -1, 3, -8, 5]
        let t = Tensor(integers: values, dtype: .int4, shape: [7])
        let g = Graph(nodes: [Node(name: "dq", opType: "DequantizeLinear", inputs: ["q", "s"], outputs: ["y"])], inputs: [],
                      outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
                      initializers: [Initializer(name: "q", tensor: t), Initializer(name: "s", tensor: Tensor(floats: [0.5], shape: []))])
        let bytes = try ONNXWriter.serialize(Model(opsetImports: [OpsetID(domain: "", version: 21)], graph: g))
        let back = try bytes.withUnsafeBytes { try ONNXReader.read(bytes: $0, path: "m.onnx", baseDirectory: nil) }
        XCTAssertEqual(back.graph.initializerTable["q"], t)
        let y = try Interpreter(model: back, options: .init(threads: 1)).run([:])["y"]!.floatArray()
        XCTAssertEqual(y, values.map { Float($0) * 0.5 })
        let record = Int8WeightFile.Record(name: "q", dtype: .int4, bits: 4, axis: nil, shape: [7], scales: [0.5], zeroPoints: [0], values: values.map(Int32.init))
        XCTAssertEqual(try Int8WeightFile.read(try Int8WeightFile.serialize([record])), [record])
        var wide = record
        wide.values[0] = 9
        XCTAssertThrowsError(try Int8WeightFile.serialize([wide]), "9 does not fit int4")
    }
}

extension IntegerProgramTests {
    /// Hessians that break the factorization: one scaled far out of Float's range for the inverse factor gives the
    /// result of the unscaled one; one that no dampening makes positive definite (a NaN off the diagonal) ends in
    /// rounding to nearest instead of dampening forever; a layer whose Hessian is not finite (its inputs overflowed
    /// float32) is left to nearest rounding.
    func testHessiansPastDampeningOrNotFiniteFallBackToNearest() throws {
        let k = 6
        let w = values.floats(2 * k)
        var h = [Double](repeating: 0.8, count: k * k)
        for c in 0..<k { h[c * k + c] = 1 + 0.1 * Double(c) }
        var options = GPTQOptions()
        options.smallestRange = 1
        // The steps stay the absolute-maximum grid `nearest` below rounds on.
        options.refitSteps = false
        let plain = GPTQ.round(w, rows: 2, columns: k, hessian: h, qmax: 7, options: options)
        let nearest = (0..<(2 * k)).map { i in Int32((w[i] / plain.scales[i / k]).rounded()) }
        XCTAssertNotEqual(plain.q, nearest, "GPTQ moves some weights on these correlated columns")
        for factor in [1e300, 1e-300] {
            XCTAssertEqual(GPTQ.round(w, rows: 2, columns: k, hessian: h.map { $0 * factor }, qmax: 7, options: options).q, plain.q, "H x \(factor)")
        }
        // In one triangle, either one (the factorization reads one of them), and in both.
        for spots in [[1], [k], [1, k]] {
            var broken = h
            for i in spots { broken[i] = .nan }
            XCTAssertEqual(GPTQ.round(w, rows: 2, columns: k, hessian: broken, qmax: 7, options: options).q, nearest, "NaN at \(spots)")
        }

        let model = fireNet()
        let plan = QuantizationPlan(model.graph, exclude: [], floatTypes: { _ in true })
        let float = try Interpreter(model: model, options: .init(threads: 1, fuse: false))
        let hessians = HessianCollector(graph: model.graph, opset: model.opset, nodes: plan.quantized.sorted(), threads: 1)
        for _ in 0..<4 {
            let x = RTensor(floats: values.floats(3 * 225), shape: [1, 3, 15, 15])
            hessians.observe("x", x)
            _ = try float.run(["x": x]) { hessians.observe($0, $1) }
        }
        var sums = hessians.hessians
        let overflowed = sums.keys.sorted()[2]
        sums[overflowed]!.sums[1] = Double.nan
        var q = QuantizeOptions()
        q.weightBits = 4
        q.weightRounding = .gptq
        let rounded = roundWeights(model, plan: plan, hessians: sums, options: q, threads: 1)
        XCTAssertEqual(Set(rounded.keys), Set(sums.keys).subtracting([overflowed]))
    }

    /// 4-bit weights rounded by GPTQ on the fire net (grouped, depthwise, 1x1 and 3x3 Conv): the model moves to
    /// opset 21 with INT4 weights; its integer program gives exactly the outputs of the same weights in INT8
    /// containers (the integer kernels, equal to their reference bit for bit, see the same values); the float
    /// interpreter runs the INT4 Q/DQ model; GPTQ's layer reports show it beating nearest rounding.
    func testInt4WeightsByGPTQRunOnIntegers() throws {
        let model = fireNet()
        let inputs = (0..<16).map { _ in RTensor(floats: values.floats(3 * 225), shape: [1, 3, 15, 15]) }
        let plan = QuantizationPlan(model.graph, exclude: [], floatTypes: { _ in true })
        let float = try Interpreter(model: model, options: .init(threads: 1, fuse: false))
        let collector = ActivationCollector(names: plan.measured, channelStatistics: plan.weightedInputs)
        let hessians = HessianCollector(graph: model.graph, opset: model.opset, nodes: plan.quantized.sorted(), threads: 1)
        for x in inputs {
            collector.observe("x", x)
            hessians.observe("x", x)
            _ = try float.run(["x": x]) { collector.observe($0, $1); hessians.observe($0, $1) }
        }
        XCTAssertEqual(hessians.hessians.count, 6, "every Conv")
        let table = CalibrationTable(model: "fire", images: inputs.count, skipped: 0, preprocessing: nil, tensors: collector.statistics)
        let ranges = table.ranges(method: .max, percentile: 99.99, bits: 8)
        var options = QuantizeOptions()
        options.weightBits = 4
        options.weightRounding = .gptq
        let rounded = roundWeights(model, plan: plan, hessians: hessians.hessians, options: options, threads: 2)
        XCTAssertEqual(rounded.count, 6)
        func build(packed: Bool, cast: Bool = true) throws -> (QuantizedModel, IntegerProgram) {
            var o = options
            o.packedWeights = packed
            o.int4ThroughCast = cast
            var q = try materialize(model, plan: plan, ranges: ranges, channelMeans: table.tensors.compactMapValues(\.channelMeans), rounded: rounded, options: o)
            let bytes = try recordWeightFile(&q)
            return (q, try IntegerProgram(model: q.model, weights: bytes, weightsPath: "fire.swq"))
        }
        // INT4 through a Cast to INT8 (the default), INT4 read directly by DequantizeLinear, INT8 containers.
        let (q4, p4) = try build(packed: true), (qd, pd) = try build(packed: true, cast: false), (q8, p8) = try build(packed: false)
        XCTAssertEqual(q4.model.opset, 21)
        XCTAssertEqual(qd.model.opset, 21)
        XCTAssertEqual(q8.model.opset, model.opset)
        for q in [q4, qd] {
            let weights = q.tensors.filter { $0.params.bits == 4 }
            XCTAssertEqual(weights.count, 6)
            XCTAssertTrue(weights.allSatisfy { $0.params.dtype == .int4 && q.model.graph.initializerTable[$0.name]?.dtype == .int4 })
        }
        let casts = q4.model.graph.nodes.filter { $0.opType == "Cast" }
        XCTAssertEqual(casts.count, 6, "one Cast per INT4 weight")
        XCTAssertTrue(casts.allSatisfy { $0.int("to") == Int64(DType.int8.rawValue) && q4.model.graph.initializerTable[$0.inputs[0]]?.dtype == .int4 })
        let readers = q4.model.graph.consumers()
        XCTAssertTrue(casts.allSatisfy { c in readers[c.outputs[0]]?.map { q4.model.graph.nodes[$0].opType } == ["DequantizeLinear"] })
        XCTAssertFalse(qd.model.graph.nodes.contains { $0.opType == "Cast" })
        let fake = try Interpreter(model: q4.model, options: .init(threads: 1)), fakeDirect = try Interpreter(model: qd.model, options: .init(threads: 1))
        for x in inputs {
            let a = try p4.run(["x": x])["y"]!.floatArray(), b = try p8.run(["x": x])["y"]!.floatArray()
            XCTAssertEqual(a, b)
            XCTAssertEqual(try pd.run(["x": x])["y"]!.floatArray(), b)
            let f = try fake.run(["x": x])["y"]!.floatArray()
            XCTAssertEqual(f, try fakeDirect.run(["x": x])["y"]!.floatArray(), "the Cast changes no value")
            for i in a.indices { XCTAssertEqual(a[i], f[i], accuracy: 0.02) }
        }
        // Every Conv ran on integers in all three forms (the plans exist after the first run).
        XCTAssertGreaterThanOrEqual(p8.integerNodes, 6)
        XCTAssertEqual(p4.integerNodes, p8.integerNodes + casts.count, "the Casts are absorbed too")
        XCTAssertEqual(pd.integerNodes, p8.integerNodes)
        XCTAssertEqual(p4.floatOps, p8.floatOps, "the Cast and the weights' DequantizeLinear are read once, not run")
        XCTAssertEqual(q4.layers.count, 6)
        for l in q4.layers {
            XCTAssertEqual(l.rounding, .gptq)
            XCTAssertEqual(l.bits, 4)
            XCTAssertGreaterThanOrEqual(l.outputSQNRRounded!, l.outputSQNRNearest! - 0.01, l.node)
        }
    }
}
