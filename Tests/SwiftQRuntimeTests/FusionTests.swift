import CKernels
import SwiftQCore
import SwiftQKernels
import SwiftQRuntime
import TestSupport
import XCTest

/// The runtime's build-time folds (Pad into Conv, BatchNormalization and Relu/Clip into Conv, Constant nodes
/// as initializers) must leave the outputs unchanged and really remove the folded nodes.
final class FusionTests: XCTestCase {
    var values = SeededRandom(seed: 42)
    func random(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] { values.floats(n, lo, hi) }

    func input(_ c: Int, _ h: Int, _ w: Int) -> ValueInfo { ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(c), .value(h), .value(w)]) }

    /// Runs the model with and without fusion; returns the number of steps each executes.
    func compare(_ model: Model, _ x: [Float], _ shape: [Int], file: StaticString = #filePath, line: UInt = #line) throws -> (fused: Int, plain: Int) {
        var on = Interpreter.Options(threads: 1), off = Interpreter.Options(threads: 1, fuse: false)
        on.profile = true
        off.profile = true
        let a = try Interpreter(model: model, options: on), b = try Interpreter(model: model, options: off)
        let feed = ["x": RTensor(floats: x, shape: shape)]
        let ya = try a.run(feed).values.first!.floatArray(), yb = try b.run(feed).values.first!.floatArray()
        XCTAssertEqual(ya.count, yb.count, file: file, line: line)
        for i in ya.indices where abs(ya[i] - yb[i]) > 1e-4 * max(1, abs(yb[i])) {
            XCTFail("output \(i): fused \(ya[i]) vs unfused \(yb[i])", file: file, line: line)
            break
        }
        return (a.nodeProfile.count, b.nodeProfile.count)
    }

    func testConvBatchNormClipFromConstantNodes() throws {
        let c = 3, m = 4
        let nodes = [
            Node(name: "w", opType: "Constant", inputs: [], outputs: ["w"], attributes: [Attribute(name: "value", value: .tensor(Tensor(floats: random(m * c * 9), shape: [m, c, 3, 3])))]),
            Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "bn", opType: "BatchNormalization", inputs: ["c", "s", "b", "mean", "var"], outputs: ["n"]),
            Node(name: "clip", opType: "Clip", inputs: ["n", "lo", "hi"], outputs: ["y"]),
        ]
        let inits = [
            Initializer(name: "s", tensor: Tensor(floats: random(m, 0.5, 2), shape: [m])),
            Initializer(name: "b", tensor: Tensor(floats: random(m), shape: [m])),
            Initializer(name: "mean", tensor: Tensor(floats: random(m), shape: [m])),
            Initializer(name: "var", tensor: Tensor(floats: random(m, 0.1, 2), shape: [m])),
            Initializer(name: "lo", tensor: Tensor(floats: [0], shape: [])),
            Initializer(name: "hi", tensor: Tensor(floats: [0.5], shape: [])),
        ]
        let g = Graph(nodes: nodes, inputs: [input(c, 6, 7)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: inits)
        let (fused, plain) = try compare(Model(graph: g), random(c * 42), [1, c, 6, 7])
        XCTAssertEqual(fused, 1, "Conv+BN+Clip should run as one step")
        XCTAssertEqual(plain, 3)
    }

    /// A batch-1 classifier over 1 MiB (1000 x 320 weights) has the convolution before it fetch its weights into cache:
    /// the nearest Conv of the 4 steps before the Gemm starts the fetch (a smaller Gemm gets none), the outputs are those
    /// of the unfused interpreter, and nothing is left pending after a run.
    func testClassifierWeightsAreFetchedAheadByTheConvBeforeIt() throws {
        for (classes, fetched) in [(1000, true), (100, false)] {
            let nodes = [
                Node(name: "head", opType: "Conv", inputs: ["x", "w"], outputs: ["h"]),
                Node(name: "pool", opType: "GlobalAveragePool", inputs: ["h"], outputs: ["p"]),
                Node(name: "flat", opType: "Flatten", inputs: ["p"], outputs: ["f"]),
                Node(name: "fc", opType: "Gemm", inputs: ["f", "fw", "fb"], outputs: ["y"], attributes: [Attribute(name: "transB", value: .int(1))]),
            ]
            let inits = [
                Initializer(name: "w", tensor: Tensor(floats: random(320 * 64), shape: [320, 64, 1, 1])),
                Initializer(name: "fw", tensor: Tensor(floats: random(classes * 320), shape: [classes, 320])),
                Initializer(name: "fb", tensor: Tensor(floats: random(classes), shape: [classes])),
            ]
            let model = Model(graph: Graph(nodes: nodes, inputs: [input(64, 7, 7)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
                                           initializers: inits))
            let plan = try Interpreter(model: model, options: Interpreter.Options(threads: 1)).fetchesAhead
            XCTAssertEqual(plan.map(\.step), fetched ? ["head"] : [])
            XCTAssertEqual(plan.map(\.bytes), fetched ? [classes * 320 * 4] : [])
            _ = try compare(model, random(64 * 49), [1, 64, 7, 7])
            XCTAssertEqual(Fast.fetchAheadPending, 0)
        }
    }

    /// A 1x1 Conv + Clip feeding a depthwise Conv + Clip, with an expanded tensor big enough to be fused (64 x 112 x 112
    /// floats, 3.2 MB): one step, the same output as unfused, and an observer still sees the value between them (the
    /// pair then runs unfused) with the same final output.
    func testExpandDepthwiseRunsAsOneStepAndStaysObservable() throws {
        let c = 4, m = 64, h = 112, w = 112
        let nodes = [
            Node(name: "expand", opType: "Conv", inputs: ["x", "we", "be"], outputs: ["e"]),
            Node(name: "clip1", opType: "Clip", inputs: ["e", "lo", "hi"], outputs: ["e6"]),
            Node(name: "dw", opType: "Conv", inputs: ["e6", "wd", "bd"], outputs: ["d"],
                 attributes: [Attribute(name: "group", value: .int(Int64(m))), Attribute(name: "strides", value: .ints([2, 2])),
                              Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "clip2", opType: "Clip", inputs: ["d", "lo", "hi"], outputs: ["y"]),
        ]
        let inits = [
            Initializer(name: "we", tensor: Tensor(floats: random(m * c), shape: [m, c, 1, 1])),
            Initializer(name: "be", tensor: Tensor(floats: random(m), shape: [m])),
            Initializer(name: "wd", tensor: Tensor(floats: random(m * 9), shape: [m, 1, 3, 3])),
            Initializer(name: "bd", tensor: Tensor(floats: random(m), shape: [m])),
            Initializer(name: "lo", tensor: Tensor(floats: [0], shape: [])),
            Initializer(name: "hi", tensor: Tensor(floats: [6], shape: [])),
        ]
        let g = Graph(nodes: nodes, inputs: [input(c, h, w)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: inits)
        let (fused, plain) = try compare(Model(graph: g), random(c * h * w), [1, c, h, w])
        XCTAssertEqual(fused, sq_cpu_level() >= 2 ? 1 : 2, "expand+clip and depthwise+clip as one step where AVX2 or AVX-512 runs it")
        XCTAssertEqual(plain, 4)

        let interpreter = try Interpreter(model: Model(graph: g), options: .init(threads: 2))
        let feed = ["x": RTensor(floats: random(c * h * w), shape: [1, c, h, w])]
        let quiet = try interpreter.run(feed)["y"]!.floatArray()
        var seen: [String: [Int]] = [:]
        let observed = try interpreter.run(feed) { name, t in seen[name] = t.shape }["y"]!.floatArray()
        XCTAssertEqual(seen["e6"], [1, m, h, w], "the expanded value reaches the observer")
        XCTAssertEqual(observed, quiet)
    }

    /// A 1x1 Conv (+ Clip) whose only reader is an Add of another value of its shape runs as one step with it, the
    /// threads of the product adding that value: the same bits as the two steps, with the Conv's output as the Add's
    /// first or second operand, on 7x7 maps (the product along rows, 49 columns), 14x14 (tiles, the last 4 columns with
    /// the rows in the lanes) and 28x28 with 300 input channels (two blocks of the sums: the residual joins the last), at
    /// 1 and 2 threads and batch 2, at every instruction level; an observer still sees the Conv's output. An Add that
    /// broadcasts (a per-channel value) runs unfused.
    func testConvAddRunsAsOneStepBitForBit() throws {
        defer { _ = sq_set_cpu_level(-1) }
        let top = sq_set_cpu_level(-1)
        for level in [3, 2, 0].filter({ $0 <= top }) {
            _ = sq_set_cpu_level(level)
            for (m, hw, c, convFirst, broadcast) in [(96, 7, 24, true, false), (40, 14, 24, false, false), (64, 14, 24, true, true), (40, 28, 150, true, false)] {
                let other = broadcast ? [1, m, 1, 1] : [1, m, hw, hw]
                let nodes = [
                    Node(name: "r", opType: "Conv", inputs: ["x", "wr"], outputs: ["res"]),
                    Node(name: "expand", opType: "Conv", inputs: ["x", "we", "be"], outputs: ["e"]),
                    Node(name: "clip", opType: "Clip", inputs: ["e", "lo", "hi"], outputs: ["e6"]),
                    Node(name: "project", opType: "Conv", inputs: ["e6", "wp", "bp"], outputs: ["p"]),
                    Node(name: "add", opType: "Add", inputs: convFirst ? ["p", broadcast ? "k" : "res"] : [broadcast ? "k" : "res", "p"], outputs: ["y"]),
                ]
                let inits = [
                    Initializer(name: "wr", tensor: Tensor(floats: random(m * c), shape: [m, c, 1, 1])),
                    Initializer(name: "we", tensor: Tensor(floats: random(2 * c * c), shape: [2 * c, c, 1, 1])),
                    Initializer(name: "be", tensor: Tensor(floats: random(2 * c), shape: [2 * c])),
                    Initializer(name: "wp", tensor: Tensor(floats: random(m * 2 * c), shape: [m, 2 * c, 1, 1])),
                    Initializer(name: "bp", tensor: Tensor(floats: random(m), shape: [m])),
                    Initializer(name: "k", tensor: Tensor(floats: random(other.reduce(1, *)), shape: other)),
                    Initializer(name: "lo", tensor: Tensor(floats: [0], shape: [])),
                    Initializer(name: "hi", tensor: Tensor(floats: [6], shape: [])),
                ]
                let g = Graph(nodes: nodes, inputs: [input(c, hw, hw)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: inits)
                for threads in [1, 2] {
                    var options = Interpreter.Options(threads: threads)
                    options.profile = true
                    let fused = try Interpreter(model: Model(graph: g), options: options)
                    let plain = try Interpreter(model: Model(graph: g), options: .init(threads: threads, fuse: false))
                    for batch in [1, 2] {
                        let feed = ["x": RTensor(floats: random(batch * c * hw * hw), shape: [batch, c, hw, hw])]
                        let want = try plain.run(feed)["y"]!.floatArray(), got = try fused.run(feed)["y"]!.floatArray()
                        XCTAssertEqual(fused.nodeProfile.map(\.node).contains("project+add"), true, "the pair is one step (\(m) x \(hw)x\(hw))")
                        XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "level \(level): \(m) x \(hw)x\(hw) conv first \(convFirst) threads \(threads) batch \(batch)")
                        var seen: [String: [Int]] = [:]
                        let observed = try fused.run(feed) { name, t in seen[name] = t.shape }["y"]!.floatArray()
                        XCTAssertEqual(seen["p"], [batch, m, hw, hw], "the Conv's output reaches the observer")
                        XCTAssertEqual(observed.map(\.bitPattern), want.map(\.bitPattern))
                    }
                }
            }
        }
    }

    /// SiLU (Sigmoid and Mul, either operand order, after a Conv or a Conv + BatchNormalization) and HardSwish run as
    /// the Conv's activation: the same bits as the separate ops on the fast kernels (every level, 1 and 2 threads) and
    /// on the reference kernels. Not fused: a SiLU whose Conv output or Sigmoid has another reader, or with the
    /// activations turned off (`fuseActivations`, as calibration runs).
    func testSmoothActivationsRunInTheConvBitForBit() throws {
        let c = 8, m = 16, hw = 13
        func w(_ name: String, _ shape: [Int]) -> Initializer { Initializer(name: name, tensor: Tensor(floats: random(shape.reduce(1, *), -2, 2), shape: shape)) }
        let pads = Attribute(name: "pads", value: .ints([1, 1, 1, 1]))
        let nodes = [
            Node(name: "c1", opType: "Conv", inputs: ["x", "w1"], outputs: ["a"], attributes: [pads]),
            Node(name: "bn", opType: "BatchNormalization", inputs: ["a", "s", "b", "mean", "var"], outputs: ["an"]),
            Node(name: "sig1", opType: "Sigmoid", inputs: ["an"], outputs: ["as"]),
            Node(name: "mul1", opType: "Mul", inputs: ["an", "as"], outputs: ["a1"]),
            Node(name: "c2", opType: "Conv", inputs: ["a1", "w2", "b2"], outputs: ["p"]),
            Node(name: "hs", opType: "HardSwish", inputs: ["p"], outputs: ["p1"]),
            Node(name: "c3", opType: "Conv", inputs: ["p1", "w3", "b3"], outputs: ["d"], attributes: [pads, Attribute(name: "group", value: .int(Int64(m)))]),
            Node(name: "sig3", opType: "Sigmoid", inputs: ["d"], outputs: ["ds"]),
            Node(name: "mul3", opType: "Mul", inputs: ["ds", "d"], outputs: ["d1"]),
            // Not fused: c4's output has a third reader; c5's Sigmoid has a second one.
            Node(name: "c4", opType: "Conv", inputs: ["d1", "w4"], outputs: ["e"]),
            Node(name: "sig4", opType: "Sigmoid", inputs: ["e"], outputs: ["es"]),
            Node(name: "mul4", opType: "Mul", inputs: ["e", "es"], outputs: ["e1"]),
            Node(name: "add4", opType: "Add", inputs: ["e1", "e"], outputs: ["e2"]),
            Node(name: "c5", opType: "Conv", inputs: ["e2", "w5"], outputs: ["f"]),
            Node(name: "sig5", opType: "Sigmoid", inputs: ["f"], outputs: ["fs"]),
            Node(name: "mul5", opType: "Mul", inputs: ["f", "fs"], outputs: ["f1"]),
            Node(name: "add5", opType: "Add", inputs: ["f1", "fs"], outputs: ["y"]),
        ]
        let inits = [w("w1", [m, c, 3, 3]), w("w2", [m, m, 1, 1]), w("b2", [m]), w("w3", [m, 1, 3, 3]), w("b3", [m]), w("w4", [m, m, 1, 1]),
                     w("w5", [m, m, 1, 1]),
                     Initializer(name: "s", tensor: Tensor(floats: random(m, 0.5, 1.5), shape: [m])),
                     Initializer(name: "b", tensor: Tensor(floats: random(m), shape: [m])),
                     Initializer(name: "mean", tensor: Tensor(floats: random(m), shape: [m])),
                     Initializer(name: "var", tensor: Tensor(floats: random(m, 0.5, 2), shape: [m]))]
        let model = Model(graph: Graph(nodes: nodes, inputs: [input(c, hw, hw)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: inits))
        // Mostly moderate values, with spikes that take some far out on both sides, where the Sigmoid's exponent is clamped.
        let pixels = random(c * hw * hw, -1, 1).enumerated().map { $0.offset % 211 == 0 ? 300 * $0.element : $0.element }
        let feed = ["x": RTensor(floats: pixels, shape: [1, c, hw, hw])]
        func opTypes(_ i: Interpreter) -> [String] { i.nodeProfile.map(\.opType).filter { $0 != "Conv" && $0 != "Add" } }
        defer { _ = sq_set_cpu_level(-1) }
        let top = sq_set_cpu_level(-1)
        for reference in [false, true] {
            for level in reference ? [top] : [3, 2, 0].filter({ $0 <= top }) {
                _ = sq_set_cpu_level(level)
                for threads in [1, 2] {
                    // Against the same folds (BatchNormalization into the Conv) without the activations fused.
                    var on = Interpreter.Options(threads: threads, referenceOnly: reference)
                    on.profile = true
                    var noSmooth = on
                    noSmooth.fuseActivations = false
                    let fused = try Interpreter(model: model, options: on), kept = try Interpreter(model: model, options: noSmooth)
                    let want = try kept.run(feed)["y"]!.floatArray(), got = try fused.run(feed)["y"]!.floatArray()
                    XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "reference \(reference) level \(level) threads \(threads)")
                    // The activations' own outputs too (tiny values far left vanish in the next Conv's sums).
                    var a: [String: [UInt32]] = [:], b: [String: [UInt32]] = [:]
                    _ = try kept.run(feed) { name, t in a[name] = t.floatArray().map(\.bitPattern) }
                    _ = try fused.run(feed) { name, t in b[name] = t.floatArray().map(\.bitPattern) }
                    for name in ["a1", "p1", "d1"] { XCTAssertEqual(b[name], a[name], "\(name): reference \(reference) level \(level) threads \(threads)") }
                    var before: [Float] = []
                    _ = try kept.run(feed) { name, t in if name == "an" { before = t.floatArray() } }
                    XCTAssertTrue(before.contains { $0 > 88 } && before.contains { $0 < -88 }, "the first SiLU's inputs reach the clamped exponents")
                    XCTAssertGreaterThan(before.filter { abs($0) < 8 }.count, before.count / 3, "and most of them the curve between")
                    XCTAssertEqual(opTypes(fused), ["Sigmoid", "Mul", "Sigmoid", "Mul"], "only the SiLUs with other readers stay")
                    XCTAssertEqual(opTypes(kept), ["Sigmoid", "Mul", "HardSwish", "Sigmoid", "Mul", "Sigmoid", "Mul", "Sigmoid", "Mul"])
                }
            }
        }
    }

    /// Convs whose outputs only a channel Concat reads write into their slices of it: the same bits as the ordinary
    /// steps (a run with an observer takes those), with the producers apart in the order, at batch 1 and 2 (which takes
    /// the ordinary steps), and the Concat's own error when the maps do not fit. A Concat with an input read twice, or
    /// one not made by a Conv, is not assembled.
    func testConcatOfConvsIsAssembledInPlace() throws {
        let c = 4, h = 9, w = 11
        func conv(_ name: String, _ input: String, _ m: Int, _ k: Int, stride: Int = 1) -> (Node, Initializer) {
            (Node(name: name, opType: "Conv", inputs: [input, name + "_w"], outputs: [name],
                  attributes: [Attribute(name: "pads", value: .ints(Array(repeating: Int64(k / 2), count: 4))), Attribute(name: "strides", value: .ints([Int64(stride), Int64(stride)]))]),
             Initializer(name: name + "_w", tensor: Tensor(floats: random(m * c * k * k), shape: [m, c, k, k])))
        }
        func model(strideOfB: Int = 1) -> Model {
            let parts = [conv("a", "x", 3, 1), conv("s", "x", c, 1), conv("b", "x", 5, 3, stride: strideOfB), conv("d", "s", 2, 3),
                         conv("e", "x", 6, 1), conv("f", "x", 2, 3)]
            let nodes = [parts[0].0, Node(name: "relu", opType: "Relu", inputs: ["a"], outputs: ["ar"]), parts[1].0, parts[2].0, parts[3].0,
                         // Assembled: a (its Relu fused), b and d, with s between them in the order.
                         Node(name: "cat", opType: "Concat", inputs: ["b", "ar", "d"], outputs: ["y"], attributes: [Attribute(name: "axis", value: .int(1))]),
                         // Not assembled: e is read twice, and x is no Conv's output.
                         parts[4].0, parts[5].0,
                         Node(name: "cat2", opType: "Concat", inputs: ["e", "f", "e"], outputs: ["z"], attributes: [Attribute(name: "axis", value: .int(-3))]),
                         Node(name: "cat3", opType: "Concat", inputs: ["x", "z"], outputs: ["z2"], attributes: [Attribute(name: "axis", value: .int(1))])]
            return Model(graph: Graph(nodes: nodes, inputs: [input(c, h, w)], outputs: ["y", "z2"].map { ValueInfo(name: $0, dtype: .float, shape: nil) },
                                      initializers: parts.map(\.1)))
        }
        let interpreter = try Interpreter(model: model(), options: .init(threads: 2))
        XCTAssertEqual(interpreter.concatsAssembledInPlace, 1)
        for batch in [1, 2] {
            let feed = ["x": RTensor(floats: random(batch * c * h * w), shape: [batch, c, h, w])]
            let inPlace = try interpreter.run(feed), ordinary = try interpreter.run(feed) { _, _ in }
            XCTAssertEqual(inPlace["y"]!.shape, [batch, 10, h, w])
            for name in ["y", "z2"] { XCTAssertTrue(inPlace[name]!.floatArray() == ordinary[name]!.floatArray(), "\(name) differs at batch \(batch)") }
        }
        let broken = try Interpreter(model: model(strideOfB: 2), options: .init(threads: 1))
        let feed = ["x": RTensor(floats: random(c * h * w), shape: [1, c, h, w])]
        var errors: [String] = []
        for observe in [false, true] {
            do {
                _ = observe ? try broken.run(feed) { _, _ in } : try broken.run(feed)
                XCTFail("maps of different sizes must not concatenate")
            } catch { errors.append("\(error)") }
        }
        XCTAssertEqual(errors.first, errors.last)
        XCTAssertTrue(errors.first?.contains("do not fit along axis 1") ?? false, errors.first ?? "")
    }

    /// The profile counts each weighted node's multiply-accumulates: a grouped, strided Conv (fused with its Relu), a
    /// Gemm with transA, a MatMul; 0 for the rest.
    func testProfileCountsMultiplyAccumulates() throws {
        let nodes = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: [Attribute(name: "group", value: .int(2)),
                                                                                                  Attribute(name: "strides", value: .ints([2, 2]))]),
            Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"]),
            Node(name: "flat", opType: "Flatten", inputs: ["r"], outputs: ["f"]),
            Node(name: "gemm", opType: "Gemm", inputs: ["ft", "b"], outputs: ["g"], attributes: [Attribute(name: "transA", value: .int(1))]),
            Node(name: "t", opType: "Transpose", inputs: ["f"], outputs: ["ft"]),
            Node(name: "mm", opType: "MatMul", inputs: ["g", "m"], outputs: ["y"]),
        ]
        // x 1x4x9x9, w 6x2x3x3 (2 groups), stride 2: output 1x6x4x4, 16 x 6 x 18 MACs; flatten 1x96, Gemm 96 → 5
        // (transA: A is 96x1), MatMul 5 → 3.
        let inits = [
            Initializer(name: "w", tensor: Tensor(floats: random(6 * 2 * 9), shape: [6, 2, 3, 3])),
            Initializer(name: "b", tensor: Tensor(floats: random(96 * 5), shape: [96, 5])),
            Initializer(name: "m", tensor: Tensor(floats: random(5 * 3), shape: [5, 3])),
        ]
        let g = Graph(nodes: [nodes[0], nodes[1], nodes[2], nodes[4], nodes[3], nodes[5]], inputs: [input(4, 9, 9)],
                      outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: inits)
        var o = Interpreter.Options(threads: 1)
        o.profile = true
        let interp = try Interpreter(model: Model(graph: g), options: o)
        _ = try interp.run(["x": RTensor(floats: random(4 * 81), shape: [1, 4, 9, 9])])
        let macs = Dictionary(interp.nodeProfile.map { ($0.opType, $0.macs) }, uniquingKeysWith: +)
        XCTAssertEqual(macs["Conv"], 6 * 16 * 18)
        XCTAssertEqual(macs["Gemm"], 5 * 96)
        XCTAssertEqual(macs["MatMul"], 3 * 5)
        XCTAssertEqual(macs["Transpose"], 0)
    }

    /// The peak probe really runs its multiply-adds: a figure between 1 GFLOP/s and 10 TFLOP/s per thread (a
    /// probe the compiler folded away reported 1.7e16).
    func testPeakThroughputIsPlausible() {
        let one = PeakThroughput.measure(threads: 1, seconds: 0.02, trials: 1)
        XCTAssertGreaterThan(one, 1e9)
        XCTAssertLessThan(one, 1e13)
    }

    func testPadFoldsIntoConvInBothForms() throws {
        let c = 2, m = 3
        let w = Initializer(name: "w", tensor: Tensor(floats: random(m * c * 9), shape: [m, c, 3, 3]))
        // Opset 13: pads as an input; asymmetric, added to the Conv's own pads.
        let pads = Initializer(name: "pads", tensor: Tensor(int64s: [0, 0, 0, 1, 0, 0, 1, 2], shape: [8]))
        let g13 = Graph(nodes: [
            Node(name: "pad", opType: "Pad", inputs: ["x", "pads"], outputs: ["p"]),
            Node(name: "conv", opType: "Conv", inputs: ["p", "w"], outputs: ["y"], attributes: [Attribute(name: "pads", value: .ints([1, 0, 0, 1])),
                                                                                                   Attribute(name: "strides", value: .ints([2, 2]))]),
        ], inputs: [input(c, 9, 8)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: [w, pads])
        var r = try compare(Model(graph: g13), random(c * 72), [1, c, 9, 8])
        XCTAssertEqual(r.fused, 1)
        XCTAssertEqual(r.plain, 2)
        // Opset 10: pads as an attribute.
        let g10 = Graph(nodes: [
            Node(name: "pad", opType: "Pad", inputs: ["x"], outputs: ["p"], attributes: [Attribute(name: "pads", value: .ints([0, 0, 2, 1, 0, 0, 0, 1]))]),
            Node(name: "conv", opType: "Conv", inputs: ["p", "w"], outputs: ["y"]),
        ], inputs: [input(c, 9, 8)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: [w])
        r = try compare(Model(opsetImports: [OpsetID(domain: "", version: 10)], graph: g10), random(c * 72), [1, c, 9, 8])
        XCTAssertEqual(r.fused, 1)
        // A non-zero pad value must not fold.
        let g13v = Graph(nodes: [
            Node(name: "pad", opType: "Pad", inputs: ["x", "pads", "v"], outputs: ["p"]),
            Node(name: "conv", opType: "Conv", inputs: ["p", "w"], outputs: ["y"]),
        ], inputs: [input(c, 9, 8)], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
           initializers: [w, pads, Initializer(name: "v", tensor: Tensor(floats: [0.5], shape: []))])
        r = try compare(Model(graph: g13v), random(c * 72), [1, c, 9, 8])
        XCTAssertEqual(r.fused, 2)
    }
}
