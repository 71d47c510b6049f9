import SwiftQCalibrate
import SwiftQCore
import SwiftQONNX
import SwiftQPasses
import SwiftQQuantize
import SwiftQRuntime
import TestSupport
import XCTest
import CKernels

/// Calibrates `model` on `inputs` (fed as "x") with every statistic, then quantizes it by `options` (thresholds
/// only: no bias correction): the plan, the statistics and the Q/DQ model.
func calibrateAndQuantize(_ model: Model, inputs: [RTensor], options: QuantizeOptions, inputName: String = "x") throws -> (QuantizationPlan, CalibrationTable, QuantizedModel) {
    let plan = QuantizationPlan(model.graph, exclude: options.exclude, floatTypes: { _ in true })
    let float = try Interpreter(model: model, options: .init(threads: 1, fuse: false))
    let collector = ActivationCollector(names: plan.measured, channelStatistics: plan.weightedInputs)
    for x in inputs {
        collector.observe(inputName, x)
        _ = try float.run([inputName: x], observe: collector.observe)
    }
    let table = CalibrationTable(model: "net", images: inputs.count, skipped: 0, preprocessing: nil, tensors: collector.statistics)
    let ranges = table.ranges(method: options.method, percentile: options.percentile, bits: options.activationBits)
    return (plan, table, try materialize(model, plan: plan, ranges: ranges, options: options))
}

final class QuantizeTests: XCTestCase {
    var values = SeededRandom(seed: 9)
    func random(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] { values.floats(n, lo, hi) }
    func tensor(_ name: String, _ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> Initializer {
        Initializer(name: name, tensor: Tensor(floats: random(shape.reduce(1, *), lo, hi), shape: shape))
    }

    /// x → Conv → Relu → MaxPool ─┬→ Conv → Clip(0,6) → Concat → GlobalAveragePool → Softmax → y
    ///                            └──────────────────────┘
    func smallNet() -> Model {
        let g = Graph(nodes: [
            Node(name: "conv1", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["c1"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "relu", opType: "Relu", inputs: ["c1"], outputs: ["r1"]),
            Node(name: "pool", opType: "MaxPool", inputs: ["r1"], outputs: ["p1"], attributes: [Attribute(name: "kernel_shape", value: .ints([2, 2])), Attribute(name: "strides", value: .ints([2, 2]))]),
            Node(name: "conv2", opType: "Conv", inputs: ["p1", "w2", "b2"], outputs: ["c2"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "clip", opType: "Clip", inputs: ["c2", "zero", "six"], outputs: ["r2"]),
            Node(name: "cat", opType: "Concat", inputs: ["p1", "r2"], outputs: ["k"], attributes: [Attribute(name: "axis", value: .int(1))]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["k"], outputs: ["g"]),
            Node(name: "softmax", opType: "Softmax", inputs: ["g"], outputs: ["y"], attributes: [Attribute(name: "axis", value: .int(1))]),
        ], inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(3), .value(8), .value(8)])],
           outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
           initializers: [tensor("w1", [6, 3, 3, 3]), tensor("b1", [6], -0.2, 0.2), tensor("w2", [5, 6, 3, 3], -0.3, 0.3), tensor("b2", [5]),
                          Initializer(name: "zero", tensor: Tensor(floats: [0], shape: [])), Initializer(name: "six", tensor: Tensor(floats: [6], shape: []))])
        return Model(graph: g)
    }

    func testPlanFusesActivationsAndKeepsFloatTailsFloat() {
        let g = smallNet().graph
        let plan = QuantizationPlan(g, exclude: [], floatTypes: { _ in true })
        let names = { (s: Set<Int>) in Set(s.map { g.nodes[$0].name }) }
        // GAP feeds only Softmax (float), so GAP stays float, and then so does the Concat feeding only it.
        XCTAssertEqual(names(plan.quantized), ["conv1", "relu", "pool", "conv2", "clip"])
        XCTAssertEqual(plan.fused.count, 2)
        XCTAssertEqual(plan.tensors, ["x", "r1", "p1", "r2"])
        XCTAssertEqual(plan.derived, ["p1"], "MaxPool hands its input's range on")
        let excluded = QuantizationPlan(g, exclude: ["conv2"], floatTypes: { _ in true })
        XCTAssertFalse(names(excluded.quantized).contains("conv2"))
        XCTAssertEqual(excluded.float[3], "excluded")
    }

    /// Calibrates on random images, quantizes, and runs the Q/DQ model in the float runtime (fake quantization).
    func quantized(_ model: Model, options: QuantizeOptions, images: Int = 16) throws -> (QuantizedModel, Interpreter, Interpreter) {
        let inputs = (0..<images).map { _ in RTensor(floats: random(3 * 64), shape: [1, 3, 8, 8]) }
        let (plan, table, q) = try calibrateAndQuantize(model, inputs: inputs, options: options)
        // Every weighted layer's input has channel means, also one whose range is derived (conv2 reads MaxPool's output).
        XCTAssertEqual(Set(table.tensors.compactMapValues(\.channelMeans).keys), plan.weightedInputs)
        XCTAssertTrue(plan.weightedInputs.contains("p1"))
        return (q, try Interpreter(model: model, options: .init(threads: 1, fuse: false)), try Interpreter(model: q.model, options: .init(threads: 1)))
    }

    func testQDQModelTracksTheFloatModel() throws {
        for perChannel in [true, false] {
            var options = QuantizeOptions()
            options.method = .max
            options.perChannel = perChannel
            let (q, float, fake) = try quantized(smallNet(), options: options)
            let ops = q.model.graph.nodes.map(\.opType)
            XCTAssertEqual(ops.filter { $0 == "QuantizeLinear" }.count, 4)
            XCTAssertEqual(ops.filter { $0 == "DequantizeLinear" }.count, 8, "4 activations, 2 weights, 2 biases")
            // Concat's first input and MaxPool share one scale with what they pass along.
            XCTAssertEqual(q.activations["p1"], q.activations["r1"])
            var signal = 0.0, noise = 0.0
            for _ in 0..<8 {
                let x = RTensor(floats: random(3 * 64), shape: [1, 3, 8, 8])
                let a = try float.run(["x": x])["y"]!.floatArray(), b = try fake.run(["x": x])["y"]!.floatArray()
                for i in a.indices { signal += Double(a[i] * a[i]); noise += Double((a[i] - b[i]) * (a[i] - b[i])) }
            }
            let sqnr = 10 * log10(signal / max(noise, 1e-30))
            XCTAssertGreaterThan(sqnr, 30, "per-channel \(perChannel): SQNR \(sqnr) dB")
            XCTAssertLessThan(sqnr, 200, "the Q/DQ model should not be exactly the float model")
        }
    }

    func testNarrowBitsAndSymmetricActivations() throws {
        var options = QuantizeOptions()
        options.weightBits = 4
        options.activationBits = 6
        options.symmetricActivations = true
        let (q, _, _) = try quantized(smallNet(), options: options)
        for t in q.tensors where t.params.dtype == .int8 {
            XCTAssertEqual(t.params.qmax, 7)
            XCTAssertTrue(t.values.allSatisfy { (-7...7).contains($0) })
        }
        for p in q.activations.values {
            XCTAssertEqual(p.dtype, .int8)
            XCTAssertEqual(p.zeroPoints, [0])
            XCTAssertEqual(p.qmax, 31)
        }
    }

    /// The deployment note for CPUs whose ONNX Runtime int8 kernels saturate: CPUID's answer equals the kernel's flags
    /// in /proc/cpuinfo (avx512_vnni or avx_vnni), the note appears exactly on such a CPU with 8-bit weights, and 7-bit
    /// weights stay within |w| <= 64, where byte pairs cannot saturate (255 * 128 < 32768).
    func testNoteForCPUsWithoutInt8Dot() throws {
        let dot = sq_cpu_has_int8_dot() != 0
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8), info.contains(" avx2") {
            XCTAssertEqual(dot, info.contains("avx512_vnni") || info.contains("avx_vnni"))
        }
        let (q8, _, _) = try quantized(smallNet(), options: QuantizeOptions())
        XCTAssertEqual(q8.notes.count, dot ? 0 : 1, "\(q8.notes)")
        var options = QuantizeOptions()
        options.weightBits = 7
        let (q7, _, _) = try quantized(smallNet(), options: options)
        XCTAssertEqual(q7.notes, [])
        for t in q7.tensors where t.params.dtype == .int8 { XCTAssertTrue(t.values.allSatisfy { abs(Int($0)) <= 64 }) }
    }

    func testBiasUsesInputTimesWeightScale() throws {
        let (q, _, _) = try quantized(smallNet(), options: QuantizeOptions())
        let w = q.tensors.first { $0.name.hasPrefix("w1") }!, b = q.tensors.first { $0.name.hasPrefix("b1") }!
        let sIn = q.activations["x"]!.scales[0]
        for c in 0..<6 { XCTAssertEqual(b.params.scales[c], sIn * w.params.scales[c], accuracy: 1e-12) }
        XCTAssertEqual(b.params.dtype, .int32)
        XCTAssertEqual(w.params.axis, 0)
    }

    func testWeightFileRoundTripAndCorruption() throws {
        let (q, _, _) = try quantized(smallNet(), options: QuantizeOptions())
        let records = q.weightRecords
        let bytes = try Int8WeightFile.serialize(records)
        XCTAssertEqual(try Int8WeightFile.read(bytes), records)
        // The int8 data equals the Q/DQ graph's initializers.
        let inits = q.model.graph.initializerTable
        for r in records { XCTAssertEqual(inits[r.name]?.int64s().map { Int32($0) }, r.values, r.name) }
        var damaged = bytes
        damaged[40] ^= 0x10
        XCTAssertThrowsError(try Int8WeightFile.read(damaged))
        XCTAssertThrowsError(try Int8WeightFile.read(Array(bytes.prefix(bytes.count / 2))))
        XCTAssertThrowsError(try Int8WeightFile.read(Array("not a weight file at all".utf8)))
    }

    func testQuantParamsConvention() {
        let p = QuantParams.activation(lo: -1, hi: 3, bits: 8, symmetric: false)
        XCTAssertEqual(p.scales[0], 4 / 255, accuracy: 1e-7)
        XCTAssertEqual(p.zeroPoints, [64])
        XCTAssertEqual(p.quantize(0), 64, "real 0 is exact")
        XCTAssertEqual(p.quantize(100), 255)
        // Round half to even, as QuantizeLinear: 0.5 and 1.5 steps.
        let unit = QuantParams(scales: [1], zeroPoints: [0], axis: nil, dtype: .int8, bits: 8, qmin: -127, qmax: 127)
        XCTAssertEqual(unit.quantize(0.5), 0)
        XCTAssertEqual(unit.quantize(1.5), 2)
        XCTAssertEqual(unit.quantize(-2.5), -2)
        let bias = QuantParams(scales: [1e-12], zeroPoints: [0], axis: nil, dtype: .int32, bits: 32, qmin: Int32.min + 1, qmax: Int32.max)
        XCTAssertEqual(bias.quantize(1), Int32.max, "out-of-range biases saturate instead of trapping")
    }
}

import SwiftQInteger

final class IntegerProgramTests: XCTestCase {
    var values = SeededRandom(seed: 21)
    func tensor(_ name: String, _ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> Initializer {
        Initializer(name: name, tensor: Tensor(floats: values.floats(shape.reduce(1, *), lo, hi), shape: shape))
    }

    /// x → Conv → Relu ─┬→ Conv → Add → GlobalAveragePool → Flatten → Gemm → y
    ///                  └──────────┘
    func residualNet() -> Model {
        let g = Graph(nodes: [
            Node(name: "conv1", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["c1"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "relu", opType: "Relu", inputs: ["c1"], outputs: ["r1"]),
            Node(name: "conv2", opType: "Conv", inputs: ["r1", "w2", "b2"], outputs: ["c2"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "add", opType: "Add", inputs: ["r1", "c2"], outputs: ["a"]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["a"], outputs: ["p"]),
            Node(name: "flat", opType: "Flatten", inputs: ["p"], outputs: ["f"]),
            Node(name: "fc", opType: "Gemm", inputs: ["f", "wf", "bf"], outputs: ["y"], attributes: [Attribute(name: "transB", value: .int(1))]),
        ], inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(3), .value(8), .value(8)])],
           outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
           initializers: [tensor("w1", [6, 3, 3, 3]), tensor("b1", [6], -0.2, 0.2), tensor("w2", [6, 6, 3, 3], -0.3, 0.3), tensor("b2", [6]),
                          tensor("wf", [10, 6]), tensor("bf", [10])])
        return Model(graph: g)
    }

    /// The serialized weight file of `q`, its CRC recorded in the model as `swiftq quantize` records it.
    func recordWeightFile(_ q: inout QuantizedModel) throws -> [UInt8] {
        let bytes = try Int8WeightFile.serialize(q.weightRecords)
        q.model.metadataProps.append((Int8WeightFile.metadataKey, Int8WeightFile.metadataValue(bytes)))
        return bytes
    }

    /// A Conv read only by HardSwish needs no range below −3, nor one read only by HardSigmoid(1/6, 1/2) beyond ±3:
    /// the Q/DQ range stops there (same outputs, finer steps).
    func testRangesStopWhereActivationsSaturate() throws {
        let g = Graph(nodes: [
            Node(name: "c1", opType: "Conv", inputs: ["x", "w1"], outputs: ["a"]),
            Node(name: "hs", opType: "HardSwish", inputs: ["a"], outputs: ["h"]),
            Node(name: "c2", opType: "Conv", inputs: ["h", "w2"], outputs: ["b"]),
            Node(name: "gate", opType: "HardSigmoid", inputs: ["b"], outputs: ["s"], attributes: [Attribute(name: "alpha", value: .float(1 / 6))]),
            Node(name: "c3", opType: "Conv", inputs: ["s", "w3"], outputs: ["y"]),
        ], inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(3), .value(4), .value(4)])],
           outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
           initializers: [tensor("w1", [4, 3, 1, 1], -20, 20), tensor("w2", [2, 4, 1, 1], -20, 20), tensor("w3", [2, 2, 1, 1])])
        let inputs = (0..<4).map { _ in RTensor(floats: values.floats(48), shape: [1, 3, 4, 4]) }
        let (_, table, q) = try calibrateAndQuantize(Model(graph: g), inputs: inputs, options: QuantizeOptions())
        XCTAssertLessThan(table.tensors["a"]!.min, -3)
        let a = q.activations["a"]!, b = q.activations["b"]!
        XCTAssertEqual(Float(a.qmin - a.zeroPoints[0]) * a.scales[0], -3, accuracy: a.scales[0])
        XCTAssertEqual(Float(b.qmin - b.zeroPoints[0]) * b.scales[0], -3, accuracy: b.scales[0])
        XCTAssertEqual(Float(b.qmax - b.zeroPoints[0]) * b.scales[0], 3, accuracy: b.scales[0])
    }

    /// A Concat joining a tensor in [-0.5, 0.5] with one 500 times wider: the shared scale leaves the first a few
    /// levels, and the result says so (never silently).
    func testConcatOfVeryDifferentRangesIsReported() throws {
        func net(_ big: Float) -> Model {
            Model(graph: Graph(nodes: [
                Node(name: "small", opType: "Conv", inputs: ["x", "ws"], outputs: ["s"]),
                Node(name: "big", opType: "Conv", inputs: ["x", "wb"], outputs: ["b"]),
                Node(name: "join", opType: "Concat", inputs: ["s", "b"], outputs: ["k"], attributes: [Attribute(name: "axis", value: .int(1))]),
                Node(name: "head", opType: "Conv", inputs: ["k", "wh"], outputs: ["y"]),
            ], inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(3), .value(4), .value(4)])],
               outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
               initializers: [tensor("ws", [2, 3, 1, 1], -0.1, 0.1), tensor("wb", [2, 3, 1, 1], -big, big), tensor("wh", [2, 4, 1, 1])]))
        }
        let inputs = (0..<4).map { _ in RTensor(floats: values.floats(48), shape: [1, 3, 4, 4]) }
        let (_, _, q) = try calibrateAndQuantize(net(50), inputs: inputs, options: QuantizeOptions())
        XCTAssertEqual(q.warnings.count, 1, "\(q.warnings)")
        XCTAssertTrue(q.warnings.first?.contains("'s'") ?? false, "\(q.warnings)")
        XCTAssertEqual(try calibrateAndQuantize(net(0.1), inputs: inputs, options: QuantizeOptions()).2.warnings, [])
    }

    func testIntegerRuntimeTracksTheQDQModel() throws {
        let model = residualNet()
        let inputs = (0..<12).map { _ in RTensor(floats: values.floats(3 * 64), shape: [1, 3, 8, 8]) }
        var (_, _, q) = try calibrateAndQuantize(model, inputs: inputs, options: QuantizeOptions())
        let bytes = try recordWeightFile(&q)
        let program = try IntegerProgram(model: q.model, weights: bytes, weightsPath: "net.swq")
        let fake = try Interpreter(model: q.model, options: .init(threads: 1))
        var worst: Float = 0, range: Float = 0
        for x in inputs {
            let a = try fake.run(["x": x])["y"]!.floatArray(), b = try program.run(["x": x])["y"]!.floatArray()
            for i in a.indices { worst = max(worst, abs(a[i] - b[i])); range = max(range, abs(a[i])) }
        }
        // Conv, Conv, Add and Gemm run on integers; the fixed-point requantization may differ from Q/DQ's float
        // rounding by one step in places, so the logits agree closely but not bit for bit.
        print("integer runtime: \(program.integerNodes) integer nodes, \(program.floatNodes) float; largest difference \(worst), outputs up to \(range)")
        XCTAssertGreaterThanOrEqual(program.integerNodes, 6)
        XCTAssertLessThan(worst, 0.02 * range, "largest difference \(worst) for outputs up to \(range)")
        // A weight file that is not the model's is refused.
        var other = q.weightRecords
        other[0].values[0] = other[0].values[0] == 1 ? 2 : 1
        let otherBytes = try Int8WeightFile.serialize(other)
        XCTAssertThrowsError(try IntegerProgram(model: q.model, weights: otherBytes, weightsPath: "other.swq"))
    }

    /// x → Conv → Relu → MaxPool ─┬→ Conv 1x1 ─┬→ Concat → Conv (2 groups) → Conv (depthwise) → AveragePool → GlobalAveragePool → Conv → Softmax
    ///                            └→ Conv 3x3 ─┘
    func fireNet() -> Model {
        let pad1 = Attribute(name: "pads", value: .ints([1, 1, 1, 1]))
        let g = Graph(nodes: [
            Node(name: "conv1", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["c1"], attributes: [pad1]),
            Node(name: "relu", opType: "Relu", inputs: ["c1"], outputs: ["r1"]),
            Node(name: "pool", opType: "MaxPool", inputs: ["r1"], outputs: ["m"], attributes: [Attribute(name: "kernel_shape", value: .ints([3, 3])),
                                                                                             Attribute(name: "strides", value: .ints([2, 2]))]),
            Node(name: "e1", opType: "Conv", inputs: ["m", "we1", "be1"], outputs: ["e1"]),
            Node(name: "e3", opType: "Conv", inputs: ["m", "we3", "be3"], outputs: ["e3"], attributes: [pad1]),
            Node(name: "cat", opType: "Concat", inputs: ["e1", "e3"], outputs: ["cat"], attributes: [Attribute(name: "axis", value: .int(1))]),
            Node(name: "grouped", opType: "Conv", inputs: ["cat", "wg", "bg"], outputs: ["g"], attributes: [pad1, Attribute(name: "group", value: .int(2))]),
            Node(name: "dw", opType: "Conv", inputs: ["g", "wd", "bd"], outputs: ["d"], attributes: [pad1, Attribute(name: "group", value: .int(8))]),
            Node(name: "avg", opType: "AveragePool", inputs: ["d"], outputs: ["a"], attributes: [Attribute(name: "kernel_shape", value: .ints([2, 2]))]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["a"], outputs: ["p"]),
            Node(name: "head", opType: "Conv", inputs: ["p", "wh", "bh"], outputs: ["h"]),
            Node(name: "softmax", opType: "Softmax", inputs: ["h"], outputs: ["y"], attributes: [Attribute(name: "axis", value: .int(1))]),
        ], inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(3), .value(15), .value(15)])],
           outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
           initializers: [tensor("w1", [8, 3, 3, 3]), tensor("b1", [8], -0.2, 0.2), tensor("we1", [4, 8, 1, 1]), tensor("be1", [4]),
                          tensor("we3", [4, 8, 3, 3], -0.3, 0.3), tensor("be3", [4]), tensor("wg", [8, 4, 3, 3], -0.3, 0.3), tensor("bg", [8]),
                          tensor("wd", [8, 1, 3, 3]), tensor("bd", [8]), tensor("wh", [5, 8, 1, 1]), tensor("bh", [5])])
        return Model(graph: g)
    }

    /// x ─┬→ Conv (4 channels) ──────────────────────┬→ Mul → Conv → y
    ///    └→ Conv (1 channel) → GlobalAveragePool ─┘    (a gate of one value, computed from the input)
    func scalarGateNet() -> Model {
        let g = Graph(nodes: [
            Node(name: "c1", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["a"]),
            Node(name: "c2", opType: "Conv", inputs: ["x", "w2"], outputs: ["b"]),
            Node(name: "gap", opType: "GlobalAveragePool", inputs: ["b"], outputs: ["g"]),
            Node(name: "gate", opType: "Mul", inputs: ["a", "g"], outputs: ["m"]),
            Node(name: "head", opType: "Conv", inputs: ["m", "wh"], outputs: ["y"]),
        ], inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(3), .value(6), .value(6)])],
           outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
           initializers: [tensor("w1", [4, 3, 1, 1]), tensor("b1", [4]), tensor("w2", [1, 3, 1, 1]), tensor("wh", [3, 4, 1, 1])])
        return Model(graph: g)
    }

    /// x → Conv → Relu → MaxPool → p (a graph output, also read by) → Conv → Relu → Conv → Relu → Conv → y
    func poolOutputNet() -> Model {
        let g = Graph(nodes: [
            Node(name: "c1", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["a"]),
            Node(name: "r1", opType: "Relu", inputs: ["a"], outputs: ["r"]),
            Node(name: "pool", opType: "MaxPool", inputs: ["r"], outputs: ["p"], attributes: [Attribute(name: "kernel_shape", value: .ints([2, 2])),
                                                                                            Attribute(name: "strides", value: .ints([2, 2]))]),
            Node(name: "c2", opType: "Conv", inputs: ["p", "w2"], outputs: ["c"]),
            Node(name: "r2", opType: "Relu", inputs: ["c"], outputs: ["s"]),
            Node(name: "c3", opType: "Conv", inputs: ["s", "w3"], outputs: ["t"]),
            Node(name: "r3", opType: "Relu", inputs: ["t"], outputs: ["u"]),
            Node(name: "c4", opType: "Conv", inputs: ["u", "w4"], outputs: ["y"]),
        ], inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(3), .value(8), .value(8)])],
           outputs: [ValueInfo(name: "y", dtype: .float, shape: nil), ValueInfo(name: "p", dtype: .float, shape: nil)],
           initializers: [tensor("w1", [4, 3, 1, 1]), tensor("b1", [4]), tensor("w2", [4, 4, 1, 1]), tensor("w3", [4, 4, 1, 1]), tensor("w4", [2, 4, 1, 1])])
        return Model(graph: g)
    }

    /// A plan's buffers share memory where their steps do not overlap, and a program that ran other inputs
    /// before (its shared buffers holding their values) gives the same bytes as a new program with buffers of
    /// its own, at 1 and 2 threads, on every input; keeping activations keeps every buffer apart.
    func testSharedBuffersGiveTheSameOutputs() throws {
        for (name, model, shape) in [("fire", fireNet(), [1, 3, 15, 15]), ("residual", residualNet(), [1, 3, 8, 8]), ("gate", scalarGateNet(), [1, 3, 6, 6]),
                                      ("pool", poolOutputNet(), [1, 3, 8, 8])] {
            let inputs = (0..<6).map { _ in RTensor(floats: values.floats(shape.reduce(1, *), -2, 2), shape: shape) }
            var (_, _, q) = try calibrateAndQuantize(model, inputs: inputs, options: QuantizeOptions())
            let bytes = try recordWeightFile(&q)
            for threads in [1, 2] {
                let shared = try IntegerProgram(model: q.model, weights: bytes, weightsPath: "\(name).swq")
                shared.threads = threads
                for (k, x) in inputs.enumerated() {
                    let own = try IntegerProgram(model: q.model, weights: bytes, weightsPath: "\(name).swq")
                    own.threads = threads
                    own.keepsActivations = true
                    let want = try own.run(["x": x]), got = try shared.run(["x": x])
                    XCTAssertEqual(Set(got.keys), Set(q.model.graph.outputs.map(\.name)))
                    for (output, value) in want {
                        XCTAssertEqual(got[output]?.floatArray(), value.floatArray(), "\(name) output \(output), \(threads) threads, input \(k)")
                    }
                    XCTAssertLessThan(shared.activationBytes, own.activationBytes, name)
                    XCTAssertTrue(shared.activations().isEmpty, "activations are not kept unless asked")
                    XCTAssertFalse(own.activations().isEmpty)
                }
            }
        }
    }

    /// MaxPool, Concat, grouped and depthwise Conv, AveragePool and GlobalAveragePool run on integers; Softmax
    /// stays a float island; the result tracks the Q/DQ model run as fake quantization.
    func testPoolingConcatAndGroupsRunOnIntegers() throws {
        let model = fireNet()
        let inputs = (0..<12).map { _ in RTensor(floats: values.floats(3 * 225), shape: [1, 3, 15, 15]) }
        var (_, _, q) = try calibrateAndQuantize(model, inputs: inputs, options: QuantizeOptions())
        let bytes = try recordWeightFile(&q)
        let program = try IntegerProgram(model: q.model, weights: bytes, weightsPath: "fire.swq")
        program.threads = 2
        program.keepsActivations = true
        let fake = try Interpreter(model: q.model, options: .init(threads: 1))
        var worst: Float = 0
        for x in inputs {
            let a = try fake.run(["x": x])["y"]!.floatArray(), b = try program.run(["x": x])["y"]!.floatArray()
            XCTAssertEqual(b.count, 5)
            for i in a.indices { worst = max(worst, abs(a[i] - b[i])) }
        }
        XCTAssertEqual(program.floatNodes, 1, "only Softmax runs in float")
        XCTAssertGreaterThanOrEqual(program.integerNodes, 10)
        XCTAssertLessThan(worst, 0.02, "largest probability difference \(worst)")
        XCTAssertFalse(program.activations().isEmpty)
    }
}
