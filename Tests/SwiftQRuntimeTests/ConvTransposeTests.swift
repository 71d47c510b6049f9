import SwiftQCore
import SwiftQRuntime
import TestSupport
import XCTest

/// The fast ConvTranspose (GEMM + col2im) against the reference scatter over strides, pads, dilations, groups,
/// output padding, output_shape, auto_pad and a weight that is not a constant.
final class ConvTransposeTests: XCTestCase {
    var values = SeededRandom(seed: 7)

    func testFastEqualsReference() throws {
        // (The last two run on larger inputs: their columns go in several bands of input rows, overlapping in the
        // output when the kernel is wider than the stride; rows of 33 leave the 2x2 stride's vector loop a tail.)
        let cases: [(c: Int, m: Int, group: Int, k: Int, attributes: [Attribute], constantWeight: Bool)] = [
            (4, 3, 1, 2, [Attribute(name: "strides", value: .ints([2, 2]))], true),
            (6, 4, 2, 3, [Attribute(name: "strides", value: .ints([2, 1])), Attribute(name: "pads", value: .ints([1, 0, 1, 1]))], true),
            (3, 5, 1, 3, [Attribute(name: "dilations", value: .ints([2, 2])), Attribute(name: "output_padding", value: .ints([1, 0])),
                          Attribute(name: "strides", value: .ints([3, 2]))], false),
            (4, 4, 4, 4, [Attribute(name: "strides", value: .ints([2, 2])), Attribute(name: "output_shape", value: .ints([11, 13]))], true),
            (2, 2, 1, 3, [Attribute(name: "auto_pad", value: .string("SAME_UPPER")), Attribute(name: "strides", value: .ints([2, 2]))], true),
            (4, 8, 1, 3, [Attribute(name: "strides", value: .ints([2, 2])), Attribute(name: "pads", value: .ints([1, 1, 0, 0]))], true),
            (6, 24, 1, 2, [Attribute(name: "strides", value: .ints([2, 2]))], true),
        ]
        for (i, t) in cases.enumerated() {
            let (h, wd) = i < cases.count - 2 ? (5, 6) : i == cases.count - 2 ? (70, 30) : (45, 33)
            let wShape = [t.c, t.m / t.group, t.k, t.k]
            let w = Tensor(floats: values.floats(wShape.reduce(1, *), -1, 1), shape: wShape)
            let b = Tensor(floats: values.floats(t.m, -1, 1), shape: [t.m])
            var inputs = [ValueInfo(name: "x", dtype: .float, shape: [.value(2), .value(t.c), .value(h), .value(wd)])]
            var inits = [Initializer(name: "b", tensor: b)]
            if t.constantWeight { inits.append(Initializer(name: "w", tensor: w)) } else { inputs.append(ValueInfo(name: "w", dtype: .float, shape: wShape.map { .value($0) })) }
            let g = Graph(nodes: [Node(name: "ct", opType: "ConvTranspose", inputs: ["x", "w", "b"], outputs: ["y"],
                                       attributes: t.attributes + [Attribute(name: "group", value: .int(Int64(t.group)))])],
                          inputs: inputs, outputs: [ValueInfo(name: "y", dtype: .float, shape: nil)], initializers: inits)
            let model = Model(opsetImports: [OpsetID(domain: "", version: 13)], graph: g)
            var feed = ["x": RTensor(floats: values.floats(2 * t.c * h * wd, -1, 1), shape: [2, t.c, h, wd])]
            if !t.constantWeight { feed["w"] = RTensor(w) }
            let fast = try Interpreter(model: model, options: .init(threads: 2)).run(feed)["y"]!
            let reference = try Interpreter(model: model, options: .init(threads: 1, referenceOnly: true)).run(feed)["y"]!
            XCTAssertEqual(fast.shape, reference.shape, "case \(i)")
            let a = fast.floatArray(), r = reference.floatArray()
            for k in r.indices where abs(a[k] - r[k]) > 1e-4 * max(1, abs(r[k])) { XCTFail("case \(i) [\(k)]: \(a[k]) vs \(r[k])"); break }
        }
    }
}
