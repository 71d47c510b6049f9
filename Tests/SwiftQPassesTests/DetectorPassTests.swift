import SwiftQCore
import SwiftQPasses
import XCTest

/// The rewrites exporters' detectors need: constant affine ops folded into layers, spelled-out HardSigmoid and
/// HardSwish made single ops, Div and Sub by constants made Mul and Add; each keeps the float outputs.
final class DetectorPassTests: PassTestCase {
    func scalar(_ name: String, _ v: Float) -> Initializer { Initializer(name: name, tensor: Tensor(floats: [v], shape: [])) }

    func testAffineAfterConvAndConvTransposeFolds() throws {
        // Conv → Mul(scalar) → Add([1, C, 1, 1]) → ConvTranspose → Add(bias [C, 1, 1]) → Div(scalar) → Sub([C])... Sub by
        // [C] broadcasts along W, not channels: it must stay.
        let g = Graph(nodes: [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["c"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "mul", opType: "Mul", inputs: ["k", "c"], outputs: ["m"]),
            Node(name: "add", opType: "Add", inputs: ["m", "shift"], outputs: ["a"]),
            Node(name: "up", opType: "ConvTranspose", inputs: ["a", "w2"], outputs: ["t"], attributes: [Attribute(name: "strides", value: .ints([2, 2]))]),
            Node(name: "bias", opType: "Add", inputs: ["t", "b2"], outputs: ["u"]),
            Node(name: "div", opType: "Div", inputs: ["u", "six"], outputs: ["v"]),
            Node(name: "sub", opType: "Sub", inputs: ["v", "row"], outputs: ["y"]),
        ], inputs: [input([1, 3, 5, 5])], outputs: [output()],
           initializers: [tensor("w1", [4, 3, 3, 3]), tensor("b1", [4]), scalar("k", 0.7), tensor("shift", [1, 4, 1, 1]), tensor("w2", [4, 2, 2, 2]),
                          tensor("b2", [2, 1, 1]), scalar("six", 6), tensor("row", [10])])
        let (m, log) = try rewrite(Model(graph: g), [FoldAffine()], input: [1, 3, 5, 5])
        XCTAssertEqual(opTypes(m), ["Conv", "ConvTranspose", "Sub"], log.joined(separator: "\n"))
        XCTAssertEqual(log.count, 4)
    }

    /// Mul (and Add) by per-channel constants before a Conv fold into it; the Add only where the Conv pads nothing.
    func testAffineBeforeConvFolds() throws {
        let g = Graph(nodes: [
            Node(name: "hs", opType: "HardSwish", inputs: ["x"], outputs: ["h"]),
            Node(name: "mul", opType: "Mul", inputs: ["k", "h"], outputs: ["m"]),
            Node(name: "add", opType: "Add", inputs: ["m", "shift"], outputs: ["a"]),
            Node(name: "pw", opType: "Conv", inputs: ["a", "w1", "b1"], outputs: ["c"]),
            Node(name: "mul2", opType: "Mul", inputs: ["c", "k2"], outputs: ["m2"]),
            Node(name: "add2", opType: "Add", inputs: ["m2", "shift2"], outputs: ["a2"]),
            Node(name: "dw", opType: "Conv", inputs: ["a2", "w2"], outputs: ["y"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1])), Attribute(name: "group", value: .int(4))]),
        ], inputs: [input([1, 3, 5, 5])], outputs: [output()],
           initializers: [scalar("k", 0.6), tensor("shift", [3, 1, 1]), tensor("w1", [4, 3, 1, 1]), tensor("b1", [4]), tensor("k2", [1, 4, 1, 1], 0.5, 2),
                          scalar("shift2", 0.3), tensor("w2", [4, 1, 3, 3])])
        let (m, log) = try rewrite(Model(opsetImports: [OpsetID(domain: "", version: 14)], graph: g), [FoldAffineIntoNext()], input: [1, 3, 5, 5])
        // The first pair folds into the 1x1 Conv; before the padded depthwise Conv only a lone Mul could.
        XCTAssertEqual(opTypes(m), ["HardSwish", "Conv", "Mul", "Add", "Conv"], log.joined(separator: "\n"))
    }

    func testAffineStaysWhenTheLayerHasAnotherReader() throws {
        let g = Graph(nodes: [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w1"], outputs: ["c"]),
            Node(name: "mul", opType: "Mul", inputs: ["c", "k"], outputs: ["m"]),
            Node(name: "add", opType: "Add", inputs: ["m", "c"], outputs: ["y"]),
        ], inputs: [input([1, 3, 4, 4])], outputs: [output()], initializers: [tensor("w1", [2, 3, 1, 1]), scalar("k", 2)])
        XCTAssertEqual(opTypes(try rewrite(Model(graph: g), [FoldAffine()], input: [1, 3, 4, 4]).0), ["Conv", "Mul", "Add"])
    }

    /// x · Clip(x + 3, 0, 6) / 6 as paddle2onnx writes it, the same with the Div first, x · HardSigmoid(x) as PyTorch
    /// wrote it before opset 14, and a lone Clip(x + 3, 0, 6) / 6.
    func testSpelledActivations() throws {
        let g = Graph(nodes: [
            Node(name: "a1", opType: "Add", inputs: ["x", "three"], outputs: ["t1"]),
            Node(name: "c1", opType: "Clip", inputs: ["t1", "zero", "six"], outputs: ["t2"]),
            Node(name: "m1", opType: "Mul", inputs: ["x", "t2"], outputs: ["t3"]),
            Node(name: "d1", opType: "Div", inputs: ["t3", "six"], outputs: ["s1"]),
            Node(name: "a2", opType: "Add", inputs: ["three", "s1"], outputs: ["u1"]),
            Node(name: "c2", opType: "Clip", inputs: ["u1", "zero", "six"], outputs: ["u2"]),
            Node(name: "d2", opType: "Div", inputs: ["u2", "six"], outputs: ["u3"]),
            Node(name: "m2", opType: "Mul", inputs: ["u3", "s1"], outputs: ["s2"]),
            Node(name: "h", opType: "HardSigmoid", inputs: ["s2"], outputs: ["h1"],
                 attributes: [Attribute(name: "alpha", value: .float(1 / 6)), Attribute(name: "beta", value: .float(0.5))]),
            Node(name: "m3", opType: "Mul", inputs: ["s2", "h1"], outputs: ["s3"]),
            Node(name: "a4", opType: "Add", inputs: ["s3", "three"], outputs: ["v1"]),
            Node(name: "c4", opType: "Clip", inputs: ["v1", "zero", "six"], outputs: ["v2"]),
            Node(name: "d4", opType: "Mul", inputs: ["v2", "sixth"], outputs: ["y"]),
        ], inputs: [input([2, 3, 4, 4])], outputs: [output()],
           initializers: [scalar("three", 3), scalar("zero", 0), scalar("six", 6), scalar("sixth", 1 / 6)])
        let model = Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g)
        let (m, _) = try rewrite(model, [FuseSpelledActivations()], input: [2, 3, 4, 4])
        XCTAssertEqual(opTypes(m), ["HardSwish", "HardSwish", "HardSwish", "HardSigmoid"])
        XCTAssertEqual(m.opset, 14)
        // Below opset 13 nothing becomes HardSwish (the lone HardSigmoid spelling still folds).
        let old = try Rewriter([FuseSpelledActivations()]).run(Model(opsetImports: [OpsetID(domain: "", version: 11)], graph: g)).model
        XCTAssertFalse(opTypes(old).contains("HardSwish"))
        XCTAssertEqual(old.opset, 11)
    }

    func testSpelledHardSwishNeedsTheSameX() throws {
        // x · Clip(z + 3, 0, 6) / 6 with z ≠ x is not HardSwish.
        let g = Graph(nodes: [
            Node(name: "n", opType: "Neg", inputs: ["x"], outputs: ["z"]),
            Node(name: "a1", opType: "Add", inputs: ["z", "three"], outputs: ["t1"]),
            Node(name: "c1", opType: "Clip", inputs: ["t1", "zero", "six"], outputs: ["t2"]),
            Node(name: "m1", opType: "Mul", inputs: ["x", "t2"], outputs: ["t3"]),
            Node(name: "d1", opType: "Div", inputs: ["t3", "six"], outputs: ["y"]),
        ], inputs: [input([1, 4])], outputs: [output()], initializers: [scalar("three", 3), scalar("zero", 0), scalar("six", 6)])
        let (m, _) = try rewrite(Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g), [FuseSpelledActivations()], input: [1, 4])
        XCTAssertFalse(opTypes(m).contains("HardSwish"))
    }

    func testDivAndSubByConstantsBecomeMulAndAdd() throws {
        let g = Graph(nodes: [
            Node(name: "d", opType: "Div", inputs: ["x", "c"], outputs: ["a"]),
            Node(name: "s", opType: "Sub", inputs: ["a", "c"], outputs: ["b"]),
            Node(name: "r", opType: "Sub", inputs: ["c", "b"], outputs: ["y"]),   // constant first: stays
        ], inputs: [input([2, 3])], outputs: [output()], initializers: [tensor("c", [3], 0.5, 2)])
        let (m, _) = try rewrite(Model(graph: g), [ConstantDivToMul()], input: [2, 3])
        XCTAssertEqual(opTypes(m), ["Mul", "Add", "Sub"])
    }

    /// A tf2onnx-style NHWC block: Transpose around the Conv, BatchNormalization as Sub/Mul/Add on the last axis,
    /// Relu, a residual Add in NHWC, ReduceMean over H and W, MatMul + bias. After the passes: one Transpose at
    /// the input, the affine ops in the Conv, GlobalAveragePool and Gemm.
    func testKerasLayoutBecomesNCHW() throws {
        let toNCHW = Attribute(name: "perm", value: .ints([0, 3, 1, 2])), toNHWC = Attribute(name: "perm", value: .ints([0, 2, 3, 1]))
        let g = Graph(nodes: [
            Node(name: "t0", opType: "Transpose", inputs: ["x"], outputs: ["a0"], attributes: [toNCHW]),
            Node(name: "conv0", opType: "Conv", inputs: ["a0", "w0"], outputs: ["c0"]),
            Node(name: "t00", opType: "Transpose", inputs: ["c0"], outputs: ["d0"], attributes: [toNHWC]),
            Node(name: "relu0", opType: "Relu", inputs: ["d0"], outputs: ["r0"]),
            Node(name: "t1", opType: "Transpose", inputs: ["r0"], outputs: ["a"], attributes: [toNCHW]),
            Node(name: "conv", opType: "Conv", inputs: ["a", "w", "b"], outputs: ["c"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "t2", opType: "Transpose", inputs: ["c"], outputs: ["d"], attributes: [toNHWC]),
            Node(name: "sub", opType: "Sub", inputs: ["d", "mean"], outputs: ["e"]),
            Node(name: "mul", opType: "Mul", inputs: ["e", "k"], outputs: ["f"]),
            Node(name: "add", opType: "Add", inputs: ["f", "beta"], outputs: ["h"]),
            Node(name: "relu", opType: "Relu", inputs: ["h"], outputs: ["r"]),
            Node(name: "res", opType: "Add", inputs: ["r", "r0"], outputs: ["s"]),
            Node(name: "gap", opType: "ReduceMean", inputs: ["s"], outputs: ["p"], attributes: [Attribute(name: "axes", value: .ints([1, 2])), Attribute(name: "keepdims", value: .int(0))]),
            Node(name: "dense", opType: "MatMul", inputs: ["p", "dw"], outputs: ["q"]),
            Node(name: "bias", opType: "Add", inputs: ["q", "db"], outputs: ["y"]),
        ], inputs: [input([1, 5, 6, 4])], outputs: [output()],
           initializers: [tensor("w0", [4, 4, 1, 1]), tensor("w", [4, 4, 3, 3]), tensor("b", [4]), tensor("mean", [4]), tensor("k", [4], 0.5, 2), tensor("beta", [4]),
                          tensor("dw", [4, 3]), tensor("db", [3])])
        let (m, log) = try rewrite(Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g),
                                   [PushTransposes(), ReduceMeanToPool(), MatMulAddToGemm(), FoldAffine()], input: [1, 5, 6, 4])
        XCTAssertEqual(opTypes(m).filter { $0 == "Transpose" }.count, 1, log.joined(separator: "\n"))
        XCTAssertEqual(Set(opTypes(m)), ["Transpose", "Conv", "Relu", "Add", "GlobalAveragePool", "Flatten", "Gemm"], log.joined(separator: "\n"))
        XCTAssertEqual(m.graph.nodes.first { $0.opType == "Transpose" }?.inputs, ["x"])
        XCTAssertEqual(opTypes(m).filter { $0 == "Conv" }.count, 2)
    }

    /// A constant moved past a Transpose keeps its element type (a float16 scale stays float16).
    func testPermutedConstantsKeepTheirType() throws {
        let half = Tensor(dtype: .float16, shape: [4], bytes: [Float(0.5), 2, -1, 3].flatMap { withUnsafeBytes(of: halfBitsFromFloat($0).littleEndian) { Array($0) } })!
        let g = Graph(nodes: [
            Node(name: "t1", opType: "Transpose", inputs: ["x"], outputs: ["a"], attributes: [Attribute(name: "perm", value: .ints([0, 2, 3, 1]))]),
            Node(name: "mul", opType: "Mul", inputs: ["a", "k"], outputs: ["b"]),
            Node(name: "t2", opType: "Transpose", inputs: ["b"], outputs: ["y"], attributes: [Attribute(name: "perm", value: .ints([0, 3, 1, 2]))]),
        ], inputs: [input([1, 4, 2, 3])], outputs: [output()], initializers: [Initializer(name: "k", tensor: half)])
        let (m, _) = try rewrite(Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g), [PushTransposes()], input: [1, 4, 2, 3])
        XCTAssertEqual(opTypes(m), ["Mul", "Transpose"])   // the last keeps the graph output's name
        let k = try XCTUnwrap(m.graph.initializers.first { $0.name == m.graph.nodes[0].inputs[1] }).tensor
        XCTAssertEqual(k.dtype, .float16)
        XCTAssertEqual(k.shape, [1, 4, 1, 1])
        XCTAssertEqual(k.floats(), [0.5, 2, -1, 3])
    }

    func testTransposesThatDoNotCancelStay() throws {
        // A Transpose feeding a graph output keeps the output's layout; a permutation followed by a different one composes.
        let g = Graph(nodes: [
            Node(name: "t1", opType: "Transpose", inputs: ["x"], outputs: ["a"], attributes: [Attribute(name: "perm", value: .ints([0, 2, 1]))]),
            Node(name: "relu", opType: "Relu", inputs: ["a"], outputs: ["b"]),
            Node(name: "t2", opType: "Transpose", inputs: ["b"], outputs: ["y"], attributes: [Attribute(name: "perm", value: .ints([1, 0, 2]))]),
        ], inputs: [input([2, 3, 4])], outputs: [output()], initializers: [])
        let (m, _) = try rewrite(Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g), [PushTransposes()], input: [2, 3, 4])
        XCTAssertEqual(opTypes(m), ["Relu", "Transpose"])
    }
}
