import Foundation
import Testing
import Classification
import ResNet
import TorchCheckpoint
import TorchportCore
import _TestSupport

@Suite("Class labels from files and checkpoints")
struct ClassLabelsTests {
    @Test("Checkpoint lookups: list, idx_to_class; none in a plain state dict")
    func lookups() throws {
        let withList = try Checkpoint(contentsOf: fixturePath("images/tiny-classes.pth"))
        #expect(ClassLabels.stored(in: withList)?.key == "classes")
        #expect(ClassLabels.stored(in: withList)?.names.count == 5)
        let withDict = try Checkpoint(contentsOf: fixturePath("images/tiny-idx-to-class.pth"))
        #expect(ClassLabels.stored(in: withDict)?.names == ["airplane", "automobile", "bird", "cat", "deer"])
        #expect(ClassLabels.stored(in: try Checkpoint(contentsOf: fixturePath("models/tiny-basic-r18ish.pth"))) == nil)
        let resolved = try ClassLabels.resolve(classes: 5, checkpointPath: fixturePath("images/tiny-classes.pth"))
        #expect(resolved.source == .checkpoint && resolved[3] == "cat")
        // A stored list of the wrong length is ignored.
        #expect(try ClassLabels.resolve(classes: 7, checkpointPath: fixturePath("images/tiny-classes.pth")).source == .indices)
        #expect(try ClassLabels.resolve(classes: 1000).source == .imageNet)
        #expect(ClassLabels.indices[12] == "class 12")
    }

    @Test("Softmax top-K: most probable first, probabilities sum to 1 over all classes")
    func topK() {
        let p = Prediction.top(3, logits: [1, 3, 2, 3], labels: .indices)
        #expect(p.map(\.index) == [1, 3, 2])
        let all = Prediction.top(4, logits: [1, 3, 2, 3], labels: .indices)
        #expect(abs(all.map(\.probability).reduce(0, +) - 1) < 1e-12)
        #expect(Prediction.top(5, logits: [Float](), labels: .indices).isEmpty)
    }
}

@Suite("Labels files and typed label errors")
struct LabelsFileTests {
    @Test("A labels file of the wrong length, a missing file and a non-UTF-8 file fail by case, naming the file")
    func errors() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("torchport-labels-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let three = folder.appendingPathComponent("three.txt")
        try Data("a\nb\nc\n\n".utf8).write(to: three)
        #expect(try ClassLabels.read(contentsOf: three) == ["a", "b", "c"])
        do {
            _ = try ClassLabels.resolve(classes: 5, labelsFile: three.path)
            Issue.record("3 labels accepted for 5 classes")
        } catch let error as LabelsError {
            #expect(error.kind == .countMismatch(labels: 3, classes: 5))
            #expect(error.location.file == three.path)
        }
        let latin1 = folder.appendingPathComponent("latin1.txt")
        try Data([0x63, 0x61, 0x66, 0xE9, 0x0A]).write(to: latin1)
        #expect(throws: LabelsError(.notUTF8, file: latin1.path)) { try ClassLabels.read(contentsOf: latin1) }
        let missing = folder.appendingPathComponent("missing.txt")
        #expect(throws: LabelsError(.noSuchFile, file: missing.path)) { try ClassLabels.read(contentsOf: missing) }
    }

    @Test("Predictions come from the model output's own top-k and softmax")
    func predictionsFromOutput() throws {
        let output = try #require(ModelOutput(batch: 2, width: 3, values: [0, 1, 2, 5, 4, 3]))
        let second = Prediction.top(2, of: output, row: 1, labels: ClassLabels(names: ["x", "y", "z"], source: .file))
        #expect(second.map(\.label) == ["x", "y"])
        #expect(abs(second[0].probability - output.softmax()[1][0]) < 1e-15)
        #expect(Prediction.top(2, of: output, row: 2, labels: .indices).isEmpty)
    }
}
