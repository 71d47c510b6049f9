import SwiftQCore
import SwiftQInteger
import SwiftQONNX
import SwiftQPasses
import SwiftQQuantize
import SwiftQRuntime
import TestSupport
import XCTest

/// The CNN kinds users bring, as the committed fixtures (Fixtures/model_kinds.py): an EfficientNet-B0-shaped net
/// (SiLU, squeeze-excitation), a YOLOv8-shaped detector (C2f, SPPF, Resize, DFL head, anchor grid) and an NHWC
/// Keras ResNet. Each: the float runtime equals ONNX Runtime's float output; the rewrites leave it unchanged;
/// quantized through the library, the integer runtime stays within the stated SQNR of the float model and close
/// to the Q/DQ model run as fake quantization, with what must be int8 on integers. (ONNX Runtime on the int8
/// models: scripts/model_kinds.py, part of `make test`.)
final class ModelKindsTests: XCTestCase {
    var values = SeededRandom(seed: 15)

    static func sqnr(_ ref: [Float], _ got: [Float]) -> Double {
        var s = 0.0, n = 0.0
        for (a, b) in zip(ref, got) { s += Double(a) * Double(a); n += Double(a - b) * Double(a - b) }
        return n == 0 ? .infinity : 10 * log10(s / n)
    }

    /// (fixture, int8-vs-float bound in dB, op types the integer runtime must run on integers)
    let kinds: [(String, Double, Set<String>)] = [
        ("effnet_b0_like", 24, ["Conv", "Sigmoid", "Mul", "GlobalAveragePool", "Add"]),
        ("yolov8_like", 27, ["Conv", "Split", "MaxPool", "Resize", "Reshape", "Transpose"]),
        ("keras_resnet_nhwc", 30, ["Conv", "Add", "Gemm", "GlobalAveragePool"]),
    ]

    func testFixturesQuantizeAndRunOnIntegers() throws {
        for (name, bound, integerOps) in kinds {
            let model = try ONNXReader.read(path: Paths.fixture("\(name).onnx"))
            let (inputName, x) = try ONNXReader.readTensor(path: Paths.fixture("\(name).input.pb"))
            let (_, want) = try ONNXReader.readTensor(path: Paths.fixture("\(name).output.pb"))
            let float = try Interpreter(model: model, options: .init(threads: 2))
            let y = try float.run([inputName: RTensor(x)])[float.outputNames[0]]!.floatArray()
            let ref = want.floats()
            for i in ref.indices where abs(y[i] - ref[i]) > 1e-4 * max(1, abs(ref[i])) {
                XCTFail("\(name): float output [\(i)] \(y[i]) vs ONNX Runtime \(ref[i])"); break
            }
            let (prepared, _) = try Rewriter.quantizationPreparation.run(model)
            let py = try Interpreter(model: prepared, options: .init(threads: 2)).run([inputName: RTensor(x)]).values.first!.floatArray()
            XCTAssertGreaterThan(Self.sqnr(ref, py), 80, "\(name): the rewrites changed the float outputs")
            let inputs = (0..<8).map { _ in RTensor(floats: values.floats(x.elementCount, -2, 2), shape: x.shape) }
            var (plan, _, q) = try calibrateAndQuantize(prepared, inputs: inputs, options: QuantizeOptions(), inputName: inputName)
            // Nothing ONNX Runtime could run in int8 stays float, bar the graph-output tails (yolo's boxes and scores).
            let floatOps = Set(plan.float.compactMap { i, why in why.hasPrefix("no int8 form") ? prepared.graph.nodes[i].opType : nil })
            XCTAssertTrue(floatOps.isSubset(of: ["Sub"]), "\(name): float without an int8 form: \(floatOps)")
            let bytes = try Int8WeightFile.serialize(q.weightRecords)
            q.model.metadataProps.append((Int8WeightFile.metadataKey, Int8WeightFile.metadataValue(bytes)))
            let program = try IntegerProgram(model: q.model, weights: bytes, weightsPath: "\(name).swq")
            program.threads = 2
            let fake = try Interpreter(model: q.model, options: .init(threads: 2))
            var f: [Float] = [], i8: [Float] = [], fq: [Float] = []
            for t in inputs.prefix(4) + [RTensor(x)] {
                f += try float.run([inputName: t])[float.outputNames[0]]!.floatArray()
                i8 += try program.run([inputName: t])[float.outputNames[0]]!.floatArray()
                fq += try fake.run([inputName: t])[float.outputNames[0]]!.floatArray()
            }
            let vsFloat = Self.sqnr(f, i8), vsFake = Self.sqnr(fq, i8)
            print("\(name): int8 (integer runtime) vs float \(String(format: "%.1f", vsFloat)) dB, vs the Q/DQ model \(String(format: "%.1f", vsFake)) dB; float islands \(program.floatOps)")
            XCTAssertGreaterThanOrEqual(vsFloat, bound, "\(name)")
            XCTAssertGreaterThanOrEqual(vsFake, 30, "\(name)")
            XCTAssertTrue(integerOps.isDisjoint(with: program.floatOps.keys), "\(name): \(program.floatOps) ran in float")
            // The only float islands: nodes the plan keeps float (with the reason in the summary), and Softmax.
            var kept: [String: Int] = [:]
            for i in plan.float.keys { kept[prepared.graph.nodes[i].opType, default: 0] += 1 }
            for (op, count) in program.floatOps where op != "Softmax" {
                XCTAssertLessThanOrEqual(count, kept[op] ?? 0, "\(name): \(count) \(op) in float, the plan keeps \(kept[op] ?? 0)")
            }
        }
    }

    /// Linear and cubic Resize between quantized layers run on integers and track the Q/DQ model (ONNX Runtime
    /// runs them in float between DequantizeLinear and QuantizeLinear): at most one step apart, mostly equal.
    func testLinearAndCubicResizeRunOnIntegers() throws {
        for (mode, coordinates) in [("linear", "half_pixel"), ("cubic", "half_pixel"), ("linear", "align_corners"), ("linear", "asymmetric")] {
            let g = Graph(nodes: [
                Node(name: "c1", opType: "Conv", inputs: ["x", "w1"], outputs: ["a"]),
                Node(name: "up", opType: "Resize", inputs: ["a", "", "scales"], outputs: ["u"],
                     attributes: [Attribute(name: "mode", value: .string(mode)), Attribute(name: "coordinate_transformation_mode", value: .string(coordinates))]),
                Node(name: "c2", opType: "Conv", inputs: ["u", "w2"], outputs: ["y"]),
            ], inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(3), .value(5), .value(7)])],
               outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)],
               initializers: [Initializer(name: "w1", tensor: Tensor(floats: values.floats(24, -1, 1), shape: [8, 3, 1, 1])),
                              Initializer(name: "w2", tensor: Tensor(floats: values.floats(16, -1, 1), shape: [2, 8, 1, 1])),
                              Initializer(name: "scales", tensor: Tensor(floats: [1, 1, 2, 1.5], shape: [4]))])
            let model = Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g)
            let inputs = (0..<4).map { _ in RTensor(floats: values.floats(105, -2, 2), shape: [1, 3, 5, 7]) }
            var (_, _, q) = try calibrateAndQuantize(model, inputs: inputs, options: QuantizeOptions())
            let bytes = try Int8WeightFile.serialize(q.weightRecords)
            q.model.metadataProps.append((Int8WeightFile.metadataKey, Int8WeightFile.metadataValue(bytes)))
            let program = try IntegerProgram(model: q.model, weights: bytes, weightsPath: "r.swq")
            let fake = try Interpreter(model: q.model, options: .init(threads: 1))
            var a: [Float] = [], b: [Float] = []
            for x in inputs {
                a += try fake.run(["x": x])["y"]!.floatArray()
                b += try program.run(["x": x])["y"]!.floatArray()
            }
            XCTAssertNil(program.floatOps["Resize"], "\(mode) \(coordinates): \(program.floatOps)")
            XCTAssertGreaterThan(Self.sqnr(a, b), 35, "\(mode) \(coordinates)")
        }
    }
}
