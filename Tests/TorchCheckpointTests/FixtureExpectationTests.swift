import Foundation
import Testing
@testable import TorchCheckpoint
import TorchportCore

/// What torch itself reported for each fixture (written by `Fixtures/generate.py`).
struct Expectation: Decodable {
    struct Tensor: Decodable {
        let name: String
        let dtype: String
        let shape: [Int]
        let stride: [Int]
        let storage_offset: Int
        let storage_key: String?
        let numel: Int
        let sha256: String
    }
    let file: String
    let format: String
    let prefix: String?
    let byteorder: String
    let tensors: [Tensor]
}

@Suite("Fixtures written by real torch")
struct FixtureExpectationTests {
    @Test("There is a fixture for every feature the reader claims")
    func fixtureSetIsComplete() {
        let names = Set(FixturePaths.expectationFiles)
        #expect(names.count >= 16)  // the parameterised test below runs over these
        for required in ["tiny-resnet-basic", "tiny-resnet-basic-legacy", "protocol4", "protocol5", "dtypes", "views",
                         "shared-storage", "cuda-tagged", "training-checkpoint", "dataparallel", "compiled",
                         "torchscript-tiny", "big-endian", "custom-prefix", "untyped-storage", "deflated"] {
            #expect(names.contains("\(required).expected.json"), "missing fixture \(required)")
        }
    }

    @Test("Every tensor matches torch: name, dtype, shape, strides, offset, storage and every value",
          arguments: FixturePaths.expectationFiles)
    func matchesTorch(expectationFile: String) throws {
        let url = FixturePaths.checkpoints.appendingPathComponent(expectationFile)
        let expected = try JSONDecoder().decode(Expectation.self, from: Data(contentsOf: url))
        let checkpoint = try Checkpoint(contentsOf: FixturePaths.checkpoint(expected.file))

        #expect(checkpoint.format.rawValue == expected.format)
        #expect(checkpoint.prefix == expected.prefix)
        #expect(checkpoint.byteOrder.rawValue == expected.byteorder)
        // Order is the pickle's traversal order; TorchScript expectations come from torch's own
        // parameter/buffer listing, whose order differs, so there names are compared as a set.
        if expected.format == "torchscript" {
            #expect(Set(checkpoint.tensors.map(\.name)) == Set(expected.tensors.map(\.name)))
        } else {
            #expect(checkpoint.tensors.map(\.name) == expected.tensors.map(\.name))
        }
        let byName = Dictionary(checkpoint.tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        for want in expected.tensors {
            guard let t = byName[want.name] else { continue }
            #expect(t.dtype.rawValue == want.dtype, "\(want.name)")
            #expect(t.shape == want.shape, "\(want.name)")
            #expect(t.strides == want.stride, "\(want.name)")
            #expect(t.storageOffset == want.storage_offset, "\(want.name)")
            if let key = want.storage_key { #expect(t.storageKey == key, "\(want.name)") }
            #expect(t.numel == want.numel, "\(want.name)")
            let digest = t.withContiguousBytes { SHA256.hex($0) }
            #expect(digest == want.sha256, "values of \(want.name) differ from torch's")
        }
    }
}
