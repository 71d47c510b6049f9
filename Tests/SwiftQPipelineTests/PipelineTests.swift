import SwiftQCore
import SwiftQImages
import SwiftQPipeline
import XCTest

final class PipelineTests: XCTestCase {
    func top(_ v: [Float], _ k: Int) -> [Int] { v.withUnsafeBufferPointer { topK($0, k) } }

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

    func testPreprocessingRoundTripsThroughModelMetadata() {
        let p = Preprocessing.preset("caffe", size: 200)!
        var m = Model(graph: Graph())
        XCTAssertNil(Preprocessing(metadataOf: m))
        m.metadataProps = [(key: Preprocessing.metadataKey, value: p.metadataValue)]
        XCTAssertEqual(Preprocessing(metadataOf: m), p)
        m.metadataProps = [(key: Preprocessing.metadataKey, value: "{not json")]
        XCTAssertNil(Preprocessing(metadataOf: m), "unreadable metadata is ignored, not trusted")
    }
}
