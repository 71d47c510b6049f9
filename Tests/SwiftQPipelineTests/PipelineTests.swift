import CKernels
import SwiftQCore
import SwiftQImages
import SwiftQInteger
import SwiftQONNX
import SwiftQPipeline
import SwiftQQuantize
import SwiftQRuntime
import TestSupport
import XCTest

final class PipelineTests: XCTestCase {
    func top(_ v: [Float], _ k: Int) -> [Int] { v.withUnsafeBufferPointer { topK($0, k) } }

    /// The float runtime's model: an opset-12 Conv + BatchNormalization + spelled-out HardSwish (Add 3, Clip 0..6, Mul,
    /// Div 6) becomes Conv + HardSwish with the same outputs (up to float rounding); a Q/DQ model stays as written.
    func testExecutionModelFoldsAndFusesWithTheSameResults() throws {
        var rng = SeededRandom(seed: 3)
        let c = 3, m = 4
        let scalar = { (name: String, v: Float) in Initializer(name: name, tensor: Tensor(floats: [v], shape: [])) }
        let nodes = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
            Node(name: "bn", opType: "BatchNormalization", inputs: ["c", "s", "b", "mean", "var"], outputs: ["n"]),
            Node(name: "add", opType: "Add", inputs: ["n", "three"], outputs: ["a"]),
            Node(name: "clip", opType: "Clip", inputs: ["a", "zero", "six"], outputs: ["r"]),
            Node(name: "mul", opType: "Mul", inputs: ["n", "r"], outputs: ["p"]),
            Node(name: "div", opType: "Div", inputs: ["p", "six"], outputs: ["y"]),
        ]
        let inits = [
            Initializer(name: "w", tensor: Tensor(floats: rng.floats(m * c * 9), shape: [m, c, 3, 3])),
            Initializer(name: "s", tensor: Tensor(floats: rng.floats(m, 0.5, 2), shape: [m])),
            Initializer(name: "b", tensor: Tensor(floats: rng.floats(m), shape: [m])),
            Initializer(name: "mean", tensor: Tensor(floats: rng.floats(m), shape: [m])),
            Initializer(name: "var", tensor: Tensor(floats: rng.floats(m, 0.1, 2), shape: [m])),
            scalar("three", 3), scalar("zero", 0), scalar("six", 6),
        ]
        let g = Graph(nodes: nodes, inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(c), .value(8), .value(9)])],
                      outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: inits)
        let model = Model(opsetImports: [OpsetID(domain: "", version: 12)], graph: g)
        let run = executionModel(model)
        XCTAssertEqual(run.graph.nodes.map(\.opType).filter { $0 != "Constant" }, ["Conv", "HardSwish"])
        let feed = ["x": RTensor(floats: rng.floats(c * 72, -3, 3), shape: [1, c, 8, 9])]
        let want = try Interpreter(model: model, options: .init(threads: 1, fuse: false)).run(feed)["y"]!.floatArray()
        let got = try Interpreter(model: run, options: .init(threads: 2)).run(feed)["y"]!.floatArray()
        XCTAssertEqual(got.count, want.count)
        for i in want.indices where abs(got[i] - want[i]) > 1e-5 * max(1, abs(want[i])) { XCTFail("[\(i)] \(got[i]) vs \(want[i])"); break }

        var qdq = model
        qdq.graph.nodes.insert(Node(name: "q", opType: "QuantizeLinear", inputs: ["x", "six"], outputs: ["xq"]), at: 0)
        XCTAssertEqual(executionModel(qdq).graph.nodes.count, qdq.graph.nodes.count, "a quantized model runs as written")
    }

    func testTopKOrdersBestFirstAndBreaksTiesByIndex() {
        XCTAssertEqual(top([0.1, 0.9, 0.3, 0.9, 0.5], 3), [1, 3, 4])
        XCTAssertEqual(top([2, 1], 5), [0, 1])
        XCTAssertEqual(top([], 5), [])
        // Against a full stable sort on random scores with many ties.
        var g = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let v = (0..<200).map { _ in Float(Int.random(in: 0..<20, using: &g)) }
            let want = v.indices.sorted { v[$0] != v[$1] ? v[$0] > v[$1] : $0 < $1 }.prefix(5)
            XCTAssertEqual(top(v, 5), Array(want))
        }
    }

    /// The fidelity report: tensor SQNR, cosine, largest error, the crushed channel a tensor-wide SQNR hides, and
    /// top-1 agreement only for classifier-shaped outputs.
    func testOutputFidelity() {
        var f = OutputFidelity()
        // A [1, 2, 1, 3] "head": channel 0 large boxes (exact), channel 1 small scores (all wrong by 0.5).
        let boxes = RTensor(floats: [100, 200, 300, 0.5, 0.5, 0.5], shape: [1, 2, 1, 3])
        let noisy = RTensor(floats: [100, 200, 300, 0, 1, 0], shape: [1, 2, 1, 3])
        let logits = RTensor(floats: [1, 3, 2], shape: [1, 3]), other = RTensor(floats: [3, 1, 2], shape: [1, 3])
        f.add(float: ["head": boxes, "cls": logits], quantized: ["head": noisy, "cls": logits], order: ["head", "cls"])
        f.add(float: ["head": boxes, "cls": logits], quantized: ["head": boxes, "cls": other], order: ["head", "cls"])
        XCTAssertEqual(f.images, 2)
        let rows = Dictionary(uniqueKeysWithValues: f.rows.map { ($0.name, $0) })
        let head = rows["head"]!
        // Σ f² = 2 · (100² + 200² + 300² + 3 · 0.25), Σ (f − q)² = 3 · 0.25.
        XCTAssertEqual(head.sqnr, 10 * log10(2 * (140_000 + 0.75) / 0.75), accuracy: 1e-9)
        XCTAssertEqual(head.maxAbsError, 0.5)
        XCTAssertEqual(head.worstChannel?.index, 1)
        XCTAssertEqual(head.worstChannel!.sqnr, 10 * log10(1.5 / 0.75), accuracy: 1e-9)
        XCTAssertNil(head.top1Agreement)
        XCTAssertEqual(rows["cls"]!.top1Agreement, 50)
        XCTAssertEqual(f.lowestSQNR, min(head.sqnr, rows["cls"]!.sqnr))
        XCTAssertEqual(f.json.count, 2)
        XCTAssertTrue(f.lines.contains { $0.contains("head") && $0.contains("(#1)") })
    }

    /// NHWC and grey inputs: the layout a model's declared input asks for, the tensor order, Pillow's luma, and
    /// the shape checks naming the axis.
    func testLayoutAndGreyInputs() throws {
        func model(_ dims: [Int]) -> Model {
            Model(graph: Graph(nodes: [Node(name: "id", opType: "Identity", inputs: ["x"], outputs: ["y"])],
                               inputs: [ValueInfo(name: "x", dtype: .float, shape: dims.map { .value($0) })], outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)]))
        }
        XCTAssertEqual(ImageInput.declared(model([1, 224, 224, 3])).layout, .nhwc)
        XCTAssertEqual(ImageInput.declared(model([1, 3, 224, 224])).layout, .nchw)
        XCTAssertEqual(ImageInput.declared(model([1, 3, 32, 3])).layout, .nchw)     // ambiguous: the second dimension wins
        XCTAssertEqual(ImageInput.declared(model([1, 28, 28, 1])).channels, 1)
        XCTAssertEqual(ImageInput.declared(model([1, 1, 28, 28])).channels, 1)
        var p = Preprocessing(size: 2, resize: 2, divisor: 1)
        let image = RGBImage(width: 2, height: 2, pixels: [10, 20, 30, 40, 50, 60, 70, 80, 90, 200, 100, 0])
        let nchw = p.tensor(image)
        p.layout = .nhwc
        XCTAssertEqual(p.inputShape, [1, 2, 2, 3])
        let nhwc = p.tensor(image)
        for c in 0..<3 { for i in 0..<4 { XCTAssertEqual(nhwc[i * 3 + c], nchw[c * 4 + i]) } }
        p.channels = 1
        XCTAssertEqual(p.inputShape, [1, 2, 2, 1])
        // Pillow's convert('L'): (19595 R + 38470 G + 7471 B + 32768) >> 16.
        XCTAssertEqual(p.tensor(image), [18, 48, 78, 118])
        XCTAssertEqual(try ImageInput.shape(of: model([1, 2, 2, 1]), path: "m.onnx", preprocessing: p), [1, 2, 2, 1])
        p.channels = nil
        XCTAssertThrowsError(try ImageInput.shape(of: model([1, 2, 2, 1]), path: "m.onnx", preprocessing: p)) {
            XCTAssertTrue("\($0)".contains("takes 1 channels at axis 3"), "\($0)")
        }
        XCTAssertEqual(Preprocessing(metadataOf: Model(metadataProps: [(Preprocessing.metadataKey, p.metadataValue)], graph: Graph()))?.layout, .nhwc)
    }

    /// Where each resize mode puts an image: the resized size, the input size, the origin, and letterbox padding.
    func testResizeModes() {
        typealias G = (resized: (w: Int, h: Int), input: (w: Int, h: Int), origin: (x: Int, y: Int))
        func flat(_ g: G) -> [Int] { [g.resized.w, g.resized.h, g.input.w, g.input.h, g.origin.x, g.origin.y] }
        var p = Preprocessing(size: 64, resize: 73)
        XCTAssertEqual(flat(p.geometry(width: 200, height: 100)), [146, 73, 64, 64, -41, -4])
        p.resizeMode = .squash
        XCTAssertEqual(flat(p.geometry(width: 200, height: 100)), [64, 64, 64, 64, 0, 0])
        p.resizeMode = .letterbox
        XCTAssertEqual(flat(p.geometry(width: 200, height: 100)), [64, 32, 64, 64, 0, 16])
        XCTAssertEqual(flat(p.geometry(width: 99, height: 300)), [21, 64, 64, 64, 21, 0])
        p.resizeMode = .fit32
        p.size = 320
        XCTAssertEqual(flat(p.geometry(width: 500, height: 333)), [480, 320, 480, 320, 0, 0])   // 500 · 320/333 = 480.5 → 480
        XCTAssertEqual(flat(p.geometry(width: 10, height: 1000)), [320, 32000, 320, 32000, 0, 0])
        XCTAssertEqual(flat(p.geometry(width: 1, height: 1)), [320, 320, 320, 320, 0, 0])
        // Letterbox pads with the pad value (normalized like a pixel) around the resized image.
        var q = Preprocessing(size: 4, resize: 4, divisor: 1)
        q.resizeMode = .letterbox
        q.padValue = 7
        let image = RGBImage(width: 2, height: 1, pixels: [10, 20, 30, 40, 50, 60])
        let t = q.tensor(image)                 // resized to 4x2, rows 1 and 2 of 4
        XCTAssertEqual(Array(t[0..<4]), [7, 7, 7, 7])
        XCTAssertEqual(Array(t[12..<16]), [7, 7, 7, 7])
        XCTAssertTrue(t[4..<12].allSatisfy { $0 != 7 })
    }

    func testPreprocessingRoundTripsThroughModelMetadata() {
        let p = Preprocessing.preset("caffe", size: 200)!
        var m = Model(graph: Graph())
        XCTAssertNil(Preprocessing(metadataOf: m))
        m.metadataProps = [(key: Preprocessing.metadataKey, value: p.metadataValue)]
        XCTAssertEqual(Preprocessing(metadataOf: m), p)
        m.metadataProps = [(key: Preprocessing.metadataKey, value: "{not json")]
        XCTAssertNil(Preprocessing(metadataOf: m), "unreadable metadata is ignored, not trusted")
    }

    /// The prepared model's interpreter (calibration's) shows every tensor the plan measures in one run: a SiLU's or
    /// HardSwish's input stays a value of its own (the runtime fuses them into the Conv only for plain runs), so
    /// calibration never falls back to an unfused second run.
    func testCalibrationSeesTheInputsOfFusibleActivations() throws {
        for name in ["effnet_b0_like", "yolov8_like"] {
            let model = try ONNXReader.read(path: Paths.fixture(name + ".onnx"))
            let job = try QuantizationJob.prepare(model, path: name, inputShapes: ["images": [1, 3, 64, 64]], exclude: [], threads: 1)
            var values = SeededRandom(seed: 3)
            let feed = ["images": RTensor(floats: values.floats(3 * 64 * 64, -1, 1), shape: [1, 3, 64, 64])]
            func unseen(_ i: Interpreter) throws -> [String] {
                var seen: Set<String> = ["images"]
                _ = try i.run(feed) { n, _ in seen.insert(n) }
                return job.plan.measured.filter { !seen.contains($0) }
            }
            XCTAssertEqual(try unseen(job.interpreter), [], name)
            // A plain run's interpreter hides them.
            XCTAssertFalse(try unseen(Interpreter(model: job.model, options: .init(threads: 1))).isEmpty, name)
        }
    }

    /// Calibration's interpreter runs 3x3 convolutions as the direct form sums them, not by Winograd's F(4x4, 3x3)
    /// (which rounds at about 1e-5 of the layer's scale): the values it measures, and so the quantized model, are those
    /// of the direct kernel bit for bit, while a plain run's interpreter takes Winograd and differs.
    func testCalibrationMeasuresTheDirectConvolution() throws {
        guard sq_cpu_level() == 3 else { throw XCTSkip("Winograd runs where the direct 3x3 kernels do (AVX-512)") }
        var rng = SeededRandom(seed: 5)
        let c = 16, m = 32, hw = 32
        let w = Tensor(floats: rng.floats(m * c * 9), shape: [m, c, 3, 3])
        let nodes = [Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["a"], attributes: [Attribute(name: "pads", value: .ints([1, 1, 1, 1]))]),
                     Node(name: "relu", opType: "Relu", inputs: ["a"], outputs: ["y"])]
        let model = Model(graph: Graph(nodes: nodes, inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(c), .value(hw), .value(hw)])],
                                       outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: [Initializer(name: "w", tensor: w)]))
        let feed = ["x": RTensor(floats: rng.floats(c * hw * hw), shape: [1, c, hw, hw])]
        let job = try QuantizationJob.prepare(model, path: "conv3x3", inputShapes: [:], exclude: [], threads: 1)
        func output(_ i: Interpreter) throws -> [UInt32] { try i.run(feed)["y"]!.floatArray().map(\.bitPattern) }
        var direct = Interpreter.Options(threads: 1)
        direct.winograd = false
        let want = try output(Interpreter(model: job.model, options: direct))
        XCTAssertEqual(try output(job.interpreter), want, "calibration's interpreter runs the direct kernel")
        XCTAssertNotEqual(try output(Interpreter(model: job.model, options: .init(threads: 1))), want, "a plain run takes Winograd")
    }

    /// Calibration and evaluation from Swift in a few library calls, on Fixtures (one image of five is corrupt).
    /// The whole quantize job in a few library calls: prepare, calibrate (arrays, for a model with two inputs),
    /// quantize, the file bytes; the integer runtime loads them and tracks the float model.
    func testQuantizeThroughTheLibrary() throws {
        let model = try ONNXReader.read(path: Paths.fixture("two_inputs.onnx"))
        let arrays = try calibrationArrays(root: Paths.fixture("arrays"), limit: 100)
        XCTAssertEqual(arrays.count, 6)
        let shapes = try arrayInputShapes(model, first: arrays[0], path: "two_inputs.onnx")
        XCTAssertEqual(shapes, ["image": [1, 3, 16, 16], "aux": [1, 8]])
        let job = try QuantizationJob.prepare(model, path: "two_inputs.onnx", inputShapes: shapes, exclude: [], threads: 1)
        let table = try calibrate(job.interpreter, plan: job.plan, modelPath: "two_inputs.onnx", arrays: arrays, threads: 1)
        XCTAssertEqual(table.images, 6)
        let q = try QuantizationJob.quantize(job, table: table, options: QuantizeOptions())
        let (bytes, weights) = try QuantizationJob.files(q, preprocessing: nil, producerVersion: "test")
        let written = try bytes.withUnsafeBytes { try ONNXReader.read(bytes: $0, path: "q.onnx", baseDirectory: nil) }
        XCTAssertEqual(written.producerName, "swiftq")
        XCTAssertNil(Preprocessing(metadataOf: written))
        let program = try IntegerProgram(model: written, weights: weights, weightsPath: "q.swq")
        let feeds = try arrayFeeds(path: arrays[1], inputs: model.graph.dataInputs)
        let want = try Interpreter(model: model, options: .init(threads: 1)).run(feeds).values.first!.floatArray()
        let got = try program.run(feeds).values.first!.floatArray()
        for (a, b) in zip(want, got) { XCTAssertEqual(a, b, accuracy: 0.05 * max(1, abs(a))) }
        XCTAssertEqual(QuantizationJob.summary(job).weighted, 2)
        // A table that does not cover the plan is refused with the count and a tensor named.
        var partial = table
        partial.tensors.removeValue(forKey: job.plan.measured[0])
        XCTAssertThrowsError(try QuantizationJob.quantize(job, table: partial, options: QuantizeOptions())) { XCTAssertTrue("\($0)".contains("lack 1 tensors"), "\($0)") }
    }

    /// `--exclude` and `--bits` names that would do nothing are refused, each with its reason: an unknown name (with
    /// the close one), a node the rewrites fold away (with the layer before it), a node without weights, a node
    /// kept float. A node is named by its name or any of its outputs; an op type the model lacks may be excluded.
    func testNamesThatWouldDoNothingAreRefused() throws {
        var rng = SeededRandom(seed: 5)
        let nodes = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"]),
            Node(name: "bn", opType: "BatchNormalization", inputs: ["c", "s", "b", "mean", "var"], outputs: ["n"]),
            Node(name: "relu", opType: "Relu", inputs: ["n"], outputs: ["r"]),
            Node(name: "", opType: "Conv", inputs: ["r", "w2"], outputs: ["y"]),
        ]
        let inits = [
            Initializer(name: "w", tensor: Tensor(floats: rng.floats(4 * 3), shape: [4, 3, 1, 1])),
            Initializer(name: "s", tensor: Tensor(floats: rng.floats(4, 0.5, 2), shape: [4])),
            Initializer(name: "b", tensor: Tensor(floats: rng.floats(4), shape: [4])),
            Initializer(name: "mean", tensor: Tensor(floats: rng.floats(4), shape: [4])),
            Initializer(name: "var", tensor: Tensor(floats: rng.floats(4, 0.1, 2), shape: [4])),
            Initializer(name: "w2", tensor: Tensor(floats: rng.floats(2 * 4), shape: [2, 4, 1, 1])),
        ]
        let g = Graph(nodes: nodes, inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(3), .value(4), .value(4)])],
                      outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: inits)
        let model = Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g)
        func check(exclude: Set<String> = [], bits: [String: Int] = [:]) -> String? {
            do {
                let job = try QuantizationJob.prepare(model, path: "m.onnx", inputShapes: [:], exclude: exclude, threads: 1)
                var o = QuantizeOptions()
                o.exclude = exclude
                o.nodeWeightBits = bits
                try job.checkNames(o, path: "m.onnx")
                return nil
            } catch { return "\(error)" }
        }
        XCTAssertNil(check(exclude: ["conv", "relu", "y", "MatMul", "Relu", "BatchNormalization"], bits: [:]))
        XCTAssertNil(check(bits: ["conv": 4, "y": 3]))
        XCTAssertNil(check(bits: ["n": 4]), "the folded layer writes the BatchNormalization's output")
        XCTAssertEqual(check(exclude: ["nosuch"]), "m.onnx: --exclude 'nosuch' names no node, output or op type of the model")
        XCTAssertEqual(check(bits: ["cnv": 4]), "m.onnx: --bits 'cnv' names no node, output or op type of the model (did you mean 'conv'?)")
        XCTAssertEqual(check(exclude: ["bn"]), "m.onnx: --exclude 'bn': swiftq's rewrites remove that BatchNormalization node (folded into or merged with a neighbour); the nearest layer before it is 'conv'")
        XCTAssertEqual(check(bits: ["relu": 4]), "m.onnx: --bits 'relu': node 'relu' is a Relu node, which has no weights")
        XCTAssertEqual(check(exclude: ["conv"], bits: ["conv": 4]), "m.onnx: --bits 'conv': node 'conv' (Conv) stays float (excluded), so it has no weight bits")

        // The bits reach the layer named by its output, and the one named by its node name.
        let job = try QuantizationJob.prepare(model, path: "m.onnx", inputShapes: [:], exclude: [], threads: 1)
        var o = QuantizeOptions()
        o.nodeWeightBits = ["y": 3, "conv": 5]
        let weighted = job.model.graph.nodes.filter { $0.opType == "Conv" }
        XCTAssertEqual(weighted.map { o.weightBits(of: $0) }, [5, 3])
        o.nodeWeightBits = ["n": 6]
        XCTAssertEqual(weighted.map { o.weightBits(of: $0) }, [6, 8])
    }

    func testCalibrateAndEvaluateThroughTheLibrary() throws {
        let model = try ONNXReader.read(path: Paths.fixture("tiny_cnn.onnx"))
        let prep = Preprocessing.preset("torch", size: 32)!
        let shape = try ImageInput.shape(of: model, path: "tiny_cnn.onnx", height: 32, width: 32)
        let interpreter = try Interpreter(model: model, options: .init(threads: 1))
        let plan = QuantizationPlan(model.graph, exclude: [], floatTypes: { _ in true })
        let (dataset, items) = try calibrationImages(root: Paths.fixture("images"), list: nil, limit: 4, seed: 0)
        XCTAssertEqual(items.count, 4)
        XCTAssertEqual(try calibrationImages(root: Paths.fixture("images"), list: nil, limit: 4, seed: 0).1, items, "the subset is fixed by the seed")
        var warnings: [String] = [], done: [Int] = []
        let events = ImageJobEvents(warning: { warnings.append($0) }, progress: { n, _ in done.append(n) })
        let table = try calibrate(interpreter, plan: plan, modelPath: "tiny_cnn.onnx", dataset: dataset, items: items, preprocessing: prep,
                                  limits: ImageLimits(), inputShape: shape, threads: 1, events: events)
        XCTAssertEqual(done, [1, 2, 3, 4])
        XCTAssertEqual(table.images + table.skipped, 4)
        XCTAssertEqual(warnings.count, table.skipped)
        XCTAssertTrue(plan.measured.allSatisfy { table.tensors[$0] != nil })

        let runs = [try ClassifierRun(path: "tiny_cnn.onnx", model: model, options: .init(threads: 1))]
        let all = try Dataset(root: Paths.fixture("images"))
        let result = try evaluate(runs, dataset: all, items: all.items, preprocessing: prep, limits: ImageLimits(), keepOutputs: true, sqnrImages: 0)
        XCTAssertEqual(result.skipped, 1, "corrupt.jpg")
        XCTAssertEqual(result.predicted[0].compactMap { $0 }.count, 4)
        XCTAssertEqual(result.outputs[0].compactMap { $0 }.count, 4)
        XCTAssertNil(result.comparison(runs), "a comparison needs two models")
        XCTAssertThrowsError(try calibrationImages(root: Paths.fixture("image-kinds"), list: Paths.fixture("tiny_cnn.onnx"), limit: 4, seed: 0))
    }
}

/// `make demo`'s model (Fixtures/train_digits.py), through the library: its float top-1 on the held-out digits is
/// real, and quantized with the default options on the training split its int8 model loses at most half a point.
final class DemoModelTests: XCTestCase {
    func testTheDigitsModelKeepsItsAccuracyAtEightBits() throws {
        let path = Paths.fixture("digits/digits.onnx")
        let model = try ONNXReader.read(path: path)
        let prep = try XCTUnwrap(Preprocessing(metadataOf: model), "the model records its preprocessing")
        XCTAssertEqual(prep.channels, 1)
        let (train, items) = try calibrationImages(root: Paths.fixture("digits/train"), list: nil, limit: 500, seed: 0)
        let calibrated = try QuantizationJob.calibrated(model, path: path, data: .images(train, items), preprocessing: prep, limits: ImageLimits(),
                                                        maxElements: Model.defaultMaxTensorElements, options: QuantizeOptions(), threads: 2)
        XCTAssertEqual(calibrated.table.images, 500)
        let q = try QuantizationJob.quantize(calibrated.job, table: calibrated.table, options: QuantizeOptions())
        let (bytes, weights) = try QuantizationJob.files(q, preprocessing: prep, producerVersion: "test")
        let dir = try Paths.temporaryDirectory()
        try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/digits.int8.onnx"))
        try Data(weights).write(to: URL(fileURLWithPath: "\(dir)/digits.int8.swq"))
        let runs = [try ClassifierRun(path: path, model: model, options: .init(threads: 2)),
                    try ClassifierRun(path: "\(dir)/digits.int8.onnx", model: try ONNXReader.read(path: "\(dir)/digits.int8.onnx"), options: .init(threads: 2))]
        XCTAssertNotNil(runs[1].integer, "the int8 model runs on the integer runtime")
        let test = try Dataset(root: Paths.fixture("digits/test"))
        let result = try evaluate(runs, dataset: test, items: test.items, preprocessing: prep, limits: ImageLimits(), keepOutputs: false, sqnrImages: 0)
        XCTAssertEqual(result.skipped, 0)
        XCTAssertEqual(runs.map(\.labelled), [360, 360])
        let fp32 = try XCTUnwrap(runs[0].top1Percent), drop = try XCTUnwrap(result.comparison(runs)?.drop)
        XCTAssertGreaterThan(fp32, 90)
        XCTAssertLessThanOrEqual(drop, 0.5, "int8 \(runs[1].top1Percent ?? 0)% against fp32 \(fp32)%")
    }
}

final class ImageWorkerTests: XCTestCase {
    /// A folder of the fixture images copied four times (the corrupt one too): 20 images, 4 of which fail.
    func manyImages() throws -> String {
        let dir = try Paths.temporaryDirectory()
        let fm = FileManager.default
        for folder in ["a", "b"] {
            try fm.createDirectory(atPath: "\(dir)/\(folder)", withIntermediateDirectories: true)
            for name in try fm.contentsOfDirectory(atPath: Paths.fixture("images/\(folder)")) {
                for k in 0..<4 { try fm.copyItem(atPath: Paths.fixture("images/\(folder)/\(name)"), toPath: "\(dir)/\(folder)/\(k)\(name)") }
            }
        }
        return dir
    }

    /// Calibration on two threads runs whole images at once on copies of the network, and every statistic and
    /// Hessian sum takes the images in order: the table and the Hessians are those of one thread, bit for bit.
    /// Then evaluation of the float model against its int8 model (integer runtime): the same predictions, counts,
    /// output fidelity and activation SQNR on one thread and on two.
    func testImageWorkersGiveTheResultsOfOneThread() throws {
        let dir = try manyImages()
        let model = try ONNXReader.read(path: Paths.fixture("tiny_cnn.onnx"))
        let prep = Preprocessing.preset("torch", size: 32)!
        let (dataset, items) = try calibrationImages(root: dir, list: nil, limit: 100, seed: 1)
        XCTAssertEqual(items.count, 20)
        var options = QuantizeOptions()
        options.weightRounding = .gptq
        options.weightBits = 4
        var calibrated: [CalibratedModel] = []
        for threads in [1, 2] {
            var progress: [Int] = [], warnings = 0
            let events = ImageJobEvents(warning: { _ in warnings += 1 }, progress: { n, _ in progress.append(n) })
            calibrated.append(try QuantizationJob.calibrated(model, path: "tiny_cnn.onnx", data: .images(dataset, items), preprocessing: prep,
                                                             limits: ImageLimits(), maxElements: Model.defaultMaxTensorElements, options: options,
                                                             threads: threads, events: events))
            XCTAssertEqual(progress, Array(1...20), "progress in image order")
            XCTAssertEqual(warnings, 4, "the corrupt copies")
        }
        let (one, two) = (calibrated[0], calibrated[1])
        XCTAssertEqual(one.table.images, 16)
        XCTAssertEqual(one.table.tensors.keys.sorted(), two.table.tensors.keys.sorted())
        for (name, s) in one.table.tensors where s != two.table.tensors[name] { XCTFail("tensor \(name): the statistics differ on two threads") }
        XCTAssertFalse(one.hessians.isEmpty)
        XCTAssertEqual(one.hessians.keys.sorted(), two.hessians.keys.sorted())
        for (k, h) in one.hessians { XCTAssertEqual(h.sums, two.hessians[k]!.sums); XCTAssertEqual(h.rows, two.hessians[k]!.rows) }

        let q = try QuantizationJob.quantize(one.job, table: one.table, hessians: one.hessians, options: options)
        let (bytes, weights) = try QuantizationJob.files(q, preprocessing: prep, producerVersion: "test")
        try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/q.onnx"))
        try Data(weights).write(to: URL(fileURLWithPath: "\(dir)/q.swq"))
        let quantized = try ONNXReader.read(path: "\(dir)/q.onnx")
        var results: [(EvaluationResult, [ClassifierRun])] = []
        for threads in [1, 2] {
            let runs = [try ClassifierRun(path: "tiny_cnn.onnx", model: model, options: .init(threads: threads)),
                        try ClassifierRun(path: "\(dir)/q.onnx", model: quantized, options: .init(threads: threads))]
            XCTAssertNotNil(runs[1].integer)
            let all = try Dataset(root: dir)
            results.append((try evaluate(runs, dataset: all, items: all.items, preprocessing: prep, limits: ImageLimits(), keepOutputs: true, sqnrImages: 12), runs))
        }
        let (a, b) = (results[0].0, results[1].0)
        XCTAssertEqual(a.imageWorkers, 1)
        XCTAssertEqual(b.imageWorkers, 2)
        XCTAssertEqual(a.skipped, 4)
        XCTAssertEqual(a.predicted, b.predicted)
        XCTAssertEqual(a.outputs.map { $0.map { $0 ?? [] } }, b.outputs.map { $0.map { $0 ?? [] } })
        XCTAssertEqual(a.fidelity.images, 16)
        XCTAssertEqual(a.fidelity.rows.map(\.sqnr), b.fidelity.rows.map(\.sqnr))
        XCTAssertEqual(a.sqnr.images, b.sqnr.images)
        XCTAssertGreaterThan(a.sqnr.images, 0)
        XCTAssertEqual(a.sqnr.lowest(100).map(\.db), b.sqnr.lowest(100).map(\.db))
        for m in 0..<2 {
            let (r1, r2) = (results[0].1[m], results[1].1[m])
            XCTAssertEqual([r1.images, r1.top1, r1.top5, r1.labelled], [r2.images, r2.top1, r2.top5, r2.labelled])
        }
        XCTAssertEqual(results[1].1[0].images, 16, "the copies' counts are added back")
    }

    /// Array files too: calibration of a two-input model on two threads gives the table of one thread.
    func testArrayCalibrationOnTwoThreadsGivesTheTableOfOne() throws {
        let model = try ONNXReader.read(path: Paths.fixture("two_inputs.onnx"))
        let arrays = try calibrationArrays(root: Paths.fixture("arrays"), limit: 100)
        let shapes = try arrayInputShapes(model, first: arrays[0], path: "two_inputs.onnx")
        let tables = try [1, 2].map { threads in
            let job = try QuantizationJob.prepare(model, path: "two_inputs.onnx", inputShapes: shapes, exclude: [], threads: threads)
            var progress: [Int] = []
            let table = try calibrate(job.interpreter, plan: job.plan, modelPath: "two_inputs.onnx", arrays: arrays, threads: threads,
                                      events: ImageJobEvents(progress: { n, _ in progress.append(n) }))
            XCTAssertEqual(progress, Array(1...arrays.count))
            return table
        }
        XCTAssertEqual(tables[0].images, 6)
        XCTAssertEqual(tables[0].tensors.keys.sorted(), tables[1].tensors.keys.sorted())
        for (name, s) in tables[0].tensors where s != tables[1].tensors[name] { XCTFail("tensor \(name): the statistics differ on two threads") }
    }
}

final class AccuracyControlTests: XCTestCase {
    /// The sensitivity ranking covers every weighted layer, sorted by gain; the budget search does nothing when
    /// the budget already holds, and when it cannot hold moves every layer up one step at a time (2 bits → 8 →
    /// float) before it gives up, counting its evaluations.
    func testSensitivityAndBudgetSearch() throws {
        let model = try ONNXReader.read(path: Paths.fixture("tiny_cnn.onnx"))
        let prep = Preprocessing.preset("torch", size: 32)!
        var options = QuantizeOptions()
        options.weightBits = 2
        options.weightRounding = .gptq
        let (dataset, items) = try calibrationImages(root: Paths.fixture("images"), list: nil, limit: 8, seed: 0)
        let c = try QuantizationJob.calibrated(model, path: "tiny_cnn.onnx", data: .images(dataset, items), preprocessing: prep, limits: ImageLimits(),
                                               maxElements: Model.defaultMaxTensorElements, options: options, threads: 1)
        XCTAssertFalse(c.hessians.isEmpty, "GPTQ asked for Hessians")
        var values = SeededRandom(seed: 5)
        let shape = c.inputShapes.values.first!
        let inputs = (0..<6).map { _ in RTensor(floats: values.floats(shape.reduce(1, *)), shape: shape) }
        let set = try EvaluationSet(c.job.interpreter, inputs: inputs, labels: Array(repeating: nil, count: 6))
        let mixed = MixedPrecision(c, options: options, threads: 1)
        XCTAssertGreaterThan(mixed.layers.count, 1)
        let ranking = try mixed.sensitivity(on: set, limit: 6)
        XCTAssertEqual(Set(ranking.map(\.node)), Set(mixed.layers.map { c.job.model.graph.nodes[$0].reportName }))
        XCTAssertEqual(ranking.map(\.gain), ranking.map(\.gain).sorted(by: >))
        XCTAssertTrue(ranking.allSatisfy { $0.precision == "2-bit" && $0.alone.sqnr > $0.allBut.sqnr - 100 })

        let easy = try mixed.fit(AccuracyBudget(maxDrop: 100), on: set, rankLimit: 6)
        XCTAssertTrue(easy.met)
        XCTAssertTrue(easy.steps.isEmpty)
        let before = mixed.evaluations
        let impossible = try mixed.fit(AccuracyBudget(maxDrop: -1), on: set, rankLimit: 6)
        XCTAssertFalse(impossible.met)
        XCTAssertEqual(impossible.steps.count, 2 * mixed.layers.count, "each layer 2 → 8 bits, then 8 → float")
        XCTAssertTrue(impossible.precisions.values.allSatisfy { $0 == .float })
        XCTAssertEqual(impossible.steps.filter { $0.to == "8-bit" }.count, mixed.layers.count)
        XCTAssertGreaterThan(mixed.evaluations - before, impossible.steps.count)
        // With every weighted layer float the output tracks the float model far better than at 2 bits.
        XCTAssertGreaterThan(impossible.steps.last!.score.sqnr, impossible.base.sqnr)

        // A fidelity budget: met above the 2-bit model's SQNR by moving layers, with the SQNR it asks for.
        let target = impossible.base.sqnr + 3
        let sqnr = try mixed.fit(AccuracyBudget(minSQNR: target), on: set, rankLimit: 6)
        XCTAssertTrue(sqnr.met)
        XCTAssertFalse(sqnr.steps.isEmpty)
        XCTAssertGreaterThanOrEqual(try mixed.score(mixed.quantize(sqnr.precisions), on: set).sqnr, target)
        XCTAssertFalse(try mixed.fit(AccuracyBudget(maxDrop: 100, minSQNR: 1e6), on: set, rankLimit: 6).met, "both must hold")
    }

    /// The evaluation set keeps every float output in graph order; a variant's SQNR is the lowest output's (as
    /// `OutputFidelity` measures each), top-1 and agreement come from the first output when it holds class scores,
    /// and a top-1 budget on a model whose first output is a map is refused.
    func testEvaluationSetComparesEveryOutput() throws {
        var rng = SeededRandom(seed: 9)
        for scoresFirst in [false, true] {
            let nodes = [
                Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["map"]),
                Node(name: "gap", opType: "GlobalAveragePool", inputs: ["map"], outputs: ["pooled"]),
                Node(name: "flat", opType: "Flatten", inputs: ["pooled"], outputs: ["scores"]),
            ]
            let outputs = [ValueInfo(name: "map", dtype: .float, shape: nil), ValueInfo(name: "scores", dtype: .float, shape: nil)]
            let g = Graph(nodes: nodes, inputs: [ValueInfo(name: "x", dtype: .float, shape: [.value(1), .value(3), .value(8), .value(8)])],
                          outputs: scoresFirst ? outputs.reversed() : outputs,
                          initializers: [Initializer(name: "w", tensor: Tensor(floats: rng.floats(5 * 3), shape: [5, 3, 1, 1]))])
            let model = Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g)
            var options = QuantizeOptions()
            options.weightBits = 3
            let (dataset, items) = try calibrationImages(root: Paths.fixture("images"), list: nil, limit: 8, seed: 0)
            let c = try QuantizationJob.calibrated(model, path: "two_outputs", data: .images(dataset, items), preprocessing: Preprocessing.preset("torch", size: 8)!,
                                                   limits: ImageLimits(), maxElements: Model.defaultMaxTensorElements, options: options, threads: 1)
            let inputs = (0..<4).map { _ in RTensor(floats: rng.floats(3 * 64, -2, 2), shape: [1, 3, 8, 8]) }
            let set = try EvaluationSet(c.job.interpreter, inputs: inputs, labels: [1, 0, nil, 3])
            XCTAssertEqual(set.outputNames, scoresFirst ? ["scores", "map"] : ["map", "scores"])
            XCTAssertEqual(set.reference[0].map(\.count), scoresFirst ? [5, 320] : [320, 5])
            XCTAssertEqual(set.classScores, scoresFirst)
            XCTAssertEqual(set.floatTop1 != nil, scoresFirst)
            // Labels past the 5 classes are another model's: dropped, so budgets read the disagreement with float.
            let foreign = try EvaluationSet(c.job.interpreter, inputs: inputs, labels: [1, 7, nil, 3])
            XCTAssertNil(foreign.floatTop1)
            XCTAssertEqual(foreign.labels.compactMap { $0 }, scoresFirst ? [] : [1, 7, 3])

            let mixed = MixedPrecision(c, options: options, threads: 1)
            let q = try mixed.quantize(mixed.initial)
            let score = try mixed.score(q, on: set)
            // The same outputs through the integer runtime, measured by OutputFidelity.
            var m = q.model
            let bytes = try Int8WeightFile.serialize(q.weightRecords)
            m.metadataProps.append((Int8WeightFile.metadataKey, Int8WeightFile.metadataValue(bytes)))
            let program = try IntegerProgram(model: m, weights: bytes, weightsPath: "q.swq")
            let float = c.job.interpreter
            var fidelity = OutputFidelity()
            for x in inputs { fidelity.add(float: try float.run(["x": x]), quantized: try program.run(["x": x]), order: set.outputNames) }
            XCTAssertEqual(fidelity.rows.count, 2)
            XCTAssertEqual(score.sqnr, fidelity.rows.map(\.sqnr).min()!, accuracy: 1e-6)
            XCTAssertLessThan(fidelity.rows.map(\.sqnr).min()!, fidelity.rows.map(\.sqnr).max()! - 0.01, "the outputs differ, so the lowest is picked")
            if scoresFirst {
                XCTAssertEqual(score.agreement!, fidelity.rows.first { $0.name == "scores" }!.top1Agreement!, accuracy: 1e-9)
                XCTAssertNotNil(score.top1Drop)
                XCTAssertNoThrow(try mixed.fit(AccuracyBudget(maxDrop: 100), on: set, rankLimit: 4))
            } else {
                XCTAssertNil(score.agreement)
                XCTAssertNil(score.top1Drop)
                XCTAssertNil(score.drop)
                XCTAssertThrowsError(try mixed.fit(AccuracyBudget(maxDrop: 100), on: set, rankLimit: 4)) {
                    XCTAssertTrue("\($0)".contains("'map' [1, 5, 8, 8] holds no class scores"), "\($0)")
                }
                XCTAssertTrue(try mixed.fit(AccuracyBudget(minSQNR: -100), on: set, rankLimit: 4).met)
            }
        }
    }
}
