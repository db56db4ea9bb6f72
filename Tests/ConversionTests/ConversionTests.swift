import Foundation
import Testing
@testable import Conversion
import Torchport
import TorchportCore
import _TestSupport

/// `convertCheckpoint` on the tiny model fixtures: what it writes, and what it refuses.
@Suite("Conversion to safetensors")
struct ConversionTests {
    /// A fresh empty folder, removed afterwards.
    static func withFolder<R>(_ body: (String) throws -> R) throws -> R {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("torchport-conv-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try body(folder)
    }

    static func sha256(_ t: TensorRecord) -> String {
        t.withContiguousBytes { SHA256.hex($0) }
    }

    static func fileSHA256(_ path: String) throws -> String {
        SHA256.hex(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    static func contents(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }

    /// Each model's checkpoint once (two manifest entries share a checkpoint).
    static var checkpoints: [ModelFixture] {
        var seen: Set<String> = []
        return ModelFixture.all.filter { seen.insert($0.checkpoint).inserted }
    }

    @Test("The models to convert are there (a missing manifest would make the conversion tests run no case)")
    func checkpointsPresent() {
        #expect(Self.checkpoints.count >= 10)
    }

    @Test("Every tiny model converts: every tensor of its state dict (num_batches_tracked too), bytes identical, metadata right",
          arguments: ConversionTests.checkpoints)
    func convertsEachModel(_ f: ModelFixture) throws {
        try Self.withFolder { folder in
            let input = f.path(f.checkpoint)
            let output = folder + "/out.safetensors"
            let summary = try convertCheckpoint(from: input, to: output)
            #expect(Self.contents(folder) == ["out.safetensors"])

            let source = try Checkpoint(contentsOf: input)
            let mapping = try NameMapping.map(source.tensors)
            let arch = try mapping.checkBinding()
            let written = try SafeTensorsFile(contentsOf: output)
            // What `state_dict()` gives: the ResNet's tensors and its BatchNorm counters, so that
            // `load_state_dict(strict=True)` takes the file.
            let expected = StateDictSelection.select(source.tensors, root: mapping.root).stateDict
            let counters = expected.filter { $0.name.hasSuffix("num_batches_tracked") }.count
            #expect(counters == source.tensors.filter { $0.name.hasSuffix("num_batches_tracked") }.count)
            #expect(expected.count == mapping.stateDict.count + counters)
            #expect(Set(written.names) == Set(expected.map(\.name)))
            #expect(written.tensors.count == expected.count)
            #expect(!written.names.contains { $0.hasPrefix("module.") })
            for (name, t) in expected {
                let w = try #require(written.tensor(named: name))
                #expect(w.dtype == t.dtype && w.shape == t.shape && w.isContiguous, "\(name)")
                #expect(Self.sha256(w) == Self.sha256(t), "\(name) bit-identical")
            }

            let m = written.metadata
            #expect(m["format"] == "pt")
            #expect(m["torchport.arch"] == arch.description)
            #expect(m["torchport.num_classes"] == (f.arch.num_classes.map(String.init) ?? "none"))
            #expect(m["torchport.source_sha256"] == (try Self.fileSHA256(input)))
            #expect(m["torchport.source_format"] == "zip")
            #expect(m["torchport.dtype"] == mapping.stateDict[0].tensor.dtype.rawValue)
            #expect(m["torchport.converter_version"] == torchportVersion)
            #expect(m["torchport.mapping"] == summary.decisions.map(\.description).joined(separator: "; "))
            #expect(!(m["torchport.mapping"] ?? "").contains("num_batches_tracked"))
            #expect(m.keys.allSatisfy { $0 == "format" || $0.hasPrefix("torchport.") })
            #expect(summary.metadata == m)
            #expect(summary.tensors == expected.count)
            #expect(summary.fileBytes == (try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int))

            // The converted file binds to the same architecture.
            let reloaded = try ResNetModel(contentsOf: URL(fileURLWithPath: output))
            #expect(reloaded.source?.format == .safetensors)
            #expect(reloaded.architecture == arch)
            #expect(summary.architecture == arch && summary.sourceFormat == .zip)
            #expect(summary.decisions.first == mapping.decisions.first)
        }
    }

    @Test("--dtype float16 / bfloat16 writes exactly FloatCast's bits; float32 widens the half fixtures exactly",
          arguments: [ConversionOptions.TargetDType.float16, .bfloat16, .float32])
    func casts(_ target: ConversionOptions.TargetDType) throws {
        let fixtures = ["tiny-bottleneck.pth", "tiny-half.pth", "tiny-bf16.pth"]
        for name in fixtures {
            try Self.withFolder { folder in
                let input = ModelFixture.folder.appendingPathComponent(name).path
                let output = folder + "/out.safetensors"
                let summary = try convertCheckpoint(from: input, to: output, options: .init(dtype: target))
                let mapping = try NameMapping.map(try Checkpoint(contentsOf: input).tensors)
                let written = try SafeTensorsFile(contentsOf: output)
                #expect(written.metadata["torchport.dtype"] == target.rawValue)
                #expect(summary.castTensors == mapping.stateDict.filter { $0.tensor.dtype != target.dtype }.count)
                for (tensorName, t) in mapping.stateDict {
                    let w = try #require(written.tensor(named: tensorName))
                    #expect(w.dtype == target.dtype)
                    let expected = try #require(FloatCast.cast(t, to: target.dtype))
                    #expect(w.withContiguousBytes { Array($0) } == expected, "\(name): \(tensorName)")
                }
            }
        }
    }

    @Test("A converted file converts again to the same tensors, recording source_format safetensors")
    func reconvertsSafeTensors() throws {
        try Self.withFolder { folder in
            let input = ModelFixture.folder.appendingPathComponent("tiny-resnext.pth").path
            _ = try convertCheckpoint(from: input, to: folder + "/a.safetensors")
            _ = try convertCheckpoint(from: folder + "/a.safetensors", to: folder + "/b.safetensors")
            let a = try SafeTensorsFile(contentsOf: folder + "/a.safetensors")
            let b = try SafeTensorsFile(contentsOf: folder + "/b.safetensors")
            #expect(b.metadata["torchport.source_format"] == "safetensors")
            #expect(b.metadata["torchport.source_sha256"] == (try Self.fileSHA256(folder + "/a.safetensors")))
            #expect(a.names == b.names)
            for (x, y) in zip(a.tensors, b.tensors) { #expect(Self.sha256(x.tensor) == Self.sha256(y.tensor)) }
        }
    }

    @Test("An existing output is refused without force and untouched; the input itself is refused even with force")
    func refusals() throws {
        try Self.withFolder { folder in
            let input = folder + "/model.pth"
            try FileManager.default.copyItem(atPath: ModelFixture.folder.appendingPathComponent("tiny-wide.pth").path, toPath: input)
            let output = folder + "/out.safetensors"
            try Data("precious".utf8).write(to: URL(fileURLWithPath: output))
            #expect {
                try convertCheckpoint(from: input, to: output)
            } throws: { ($0 as? ConversionError)?.kind == .outputExists }
            #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data("precious".utf8))

            let before = try Self.fileSHA256(input)
            for target in [input, folder + "/./model.pth"] {
                #expect {
                    try convertCheckpoint(from: input, to: target, options: .init(force: true))
                } throws: { ($0 as? ConversionError)?.kind == .outputIsInput }
            }
            try FileManager.default.linkItem(atPath: input, toPath: folder + "/hardlink.pth")
            #expect {
                try convertCheckpoint(from: input, to: folder + "/hardlink.pth", options: .init(force: true))
            } throws: { ($0 as? ConversionError)?.kind == .outputIsInput }
            try FileManager.default.createDirectory(atPath: folder + "/dir", withIntermediateDirectories: false)
            #expect {
                try convertCheckpoint(from: input, to: folder + "/dir", options: .init(force: true))
            } throws: { ($0 as? ConversionError)?.kind == .outputNotAFile }
            #expect(try Self.fileSHA256(input) == before)

            _ = try convertCheckpoint(from: input, to: output, options: .init(force: true))
            #expect(try SafeTensorsFile(contentsOf: output).metadata["torchport.source_sha256"] == before)
            #expect(Self.contents(folder) == ["dir", "hardlink.pth", "model.pth", "out.safetensors"])
        }
    }

    @Test("A hostile input, an empty selection or a wrongly forced architecture leaves nothing in the output folder")
    func failuresLeaveNothing() throws {
        try Self.withFolder { folder in
            let hostile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("Fixtures/hostile/cases/global-os-system.pth").path
            #expect(throws: CheckpointError.self) { try convertCheckpoint(from: hostile, to: folder + "/out.safetensors") }
            // A selection that keeps no tensor.
            let golden = ModelFixture.folder.appendingPathComponent("tiny-wide.golden.pth").path
            var nothing = ConversionOptions()
            nothing.include = [NamePattern("no-such-tensor.*")]
            #expect {
                try convertCheckpoint(from: golden, to: folder + "/out.safetensors", options: nothing)
            } throws: { ($0 as? ConversionError)?.kind == .noTensors(total: 3) }
            // A ResNet forced to the wrong architecture.
            let wide = ModelFixture.folder.appendingPathComponent("tiny-wide.pth").path
            #expect(throws: BindingError.self) {
                try convertCheckpoint(from: wide, to: folder + "/out.safetensors",
                                      options: .init(architecture: ResNetArchitecture.named["resnet18"]))
            }
            #expect(Self.contents(folder).isEmpty)
        }
    }

    @Test("A failing validation removes the written file and keeps an existing output; cleanup finds files in progress")
    func validationFailure() throws {
        struct Rejected: Error {}
        try Self.withFolder { folder in
            let input = ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.pth").path
            let output = folder + "/out.safetensors"
            try Data("old".utf8).write(to: URL(fileURLWithPath: output))
            var staged: String?
            #expect(throws: Rejected.self) {
                try convertCheckpoint(from: input, to: output, options: .init(force: true), validate: { path in
                    staged = path
                    // The staging file is complete and readable when validation runs.
                    _ = try SafeTensorsFile(contentsOf: path)
                    throw Rejected()
                })
            }
            #expect(staged?.hasPrefix(output + ".partial-") == true)
            #expect(Self.contents(folder) == ["out.safetensors"])
            #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data("old".utf8))

            // What a signal handler calls: every file of the conversion in progress goes.
            #expect(throws: Rejected.self) {
                try convertCheckpoint(from: input, to: folder + "/new.safetensors", validate: { path in
                    #expect(FileManager.default.fileExists(atPath: path))
                    ConversionCleanup.removeFilesInProgress(in: folder)
                    #expect(!FileManager.default.fileExists(atPath: path))
                    throw Rejected()
                })
            }
            #expect(Self.contents(folder) == ["out.safetensors"])
        }
    }

    @Test("An input changed during the conversion is noticed: nothing is written")
    func inputChanged() throws {
        try Self.withFolder { folder in
            let input = folder + "/model.pth"
            try FileManager.default.copyItem(atPath: ModelFixture.folder.appendingPathComponent("tiny-wide.pth").path, toPath: input)
            try FileManager.default.createSymbolicLink(atPath: folder + "/link.safetensors", withDestinationPath: input)
            #expect {
                try convertCheckpoint(from: input, to: folder + "/link.safetensors", options: .init(force: true))
            } throws: { ($0 as? ConversionError)?.kind == .outputIsInput }
            #expect {
                try convertCheckpoint(from: input, to: folder + "/out.safetensors", validate: { _ in
                    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: input))
                    try handle.seekToEnd()
                    try handle.write(contentsOf: Data([0]))
                    try handle.close()
                })
            } throws: { ($0 as? ConversionError)?.kind == .inputChanged }
            #expect(Self.contents(folder) == ["link.safetensors", "model.pth"])
        }
    }

    @Test("Progress is reported for casting, writing and checking")
    func progress() throws {
        final class Log: @unchecked Sendable {
            let lock = NSLock()
            var stages: [ConversionProgress] = []
        }
        let log = Log()
        try Self.withFolder { folder in
            let input = ModelFixture.folder.appendingPathComponent("tiny-wide.pth").path
            _ = try convertCheckpoint(from: input, to: folder + "/o.safetensors", options: .init(dtype: .float16),
                                  progress: { p in
                                      log.lock.lock()
                                      log.stages.append(p)
                                      log.lock.unlock()
                                  })
        }
        let stages = Set(log.stages.map(\.stage.rawValue))
        #expect(stages == ["casting", "writing", "checking"])
        let last = try #require(log.stages.last)
        #expect(last.stage == .checking && last.tensors == last.totalTensors && last.bytes == last.totalBytes)
    }
}

/// The check after writing, fed a file that differs from what it expects.
@Suite("The read-back check catches a file that differs from its source")
struct WrittenCheckTests {
    static func expected(_ bytes: [UInt8], name: String = "w") -> Written.Expected {
        Written.Expected(name: name, dtype: .float32, shape: [bytes.count / 4], bytes: .bytes(bytes))
    }

    @Test("A changed byte, a changed shape, a missing or misplaced tensor and changed metadata are each a checkFailed error")
    func catchesDifferences() throws {
        try ConversionTests.withFolder { folder in
            let path = folder + "/f.safetensors"
            let good = (0..<64).map { UInt8($0) }
            try SafeTensorsWriter.write([("w", .float32, [16], good), ("b", .float32, [1], [0, 0, 128, 63])],
                                        metadata: ["format": "torchport"], to: path)
            // Where each tensor lies in the file, as the header says.
            let offsets = Dictionary(uniqueKeysWithValues: try SafeTensorsFile(contentsOf: path).tensors.map {
                ($0.name, $0.tensor.storage.range.lowerBound)
            })
            func written(_ expected: [Written.Expected], metadata: [String: String] = ["format": "torchport"],
                         offsets: [String: Int] = offsets) -> Written {
                Written(expected: expected, metadata: metadata, decisions: [], architecture: .init(block: .basic, layers: [1, 1, 1, 1]), parameters: 0, keptValues: [],
                        sourceFormat: .zip, dtype: .float32, castTensors: 0,
                        dataBytes: expected.reduce(0) { $0 + $1.bytes.count },
                        fileOffsets: offsets.filter { name, _ in expected.contains { $0.name == name } })
            }
            func check(_ w: Written) throws {
                try checkData(path, expected: w.expected, offsets: w.fileOffsets, totalBytes: w.dataBytes, progress: nil)
                try checkHeader(path, against: w)
            }
            let b = Self.expected([0, 0, 128, 63], name: "b")
            try check(written([Self.expected(good), b]))

            var bad = good
            bad[37] ^= 1
            func reason(_ w: Written) -> ConversionError.Kind? {
                do {
                    try check(w)
                    return nil
                } catch {
                    return (error as? ConversionError)?.kind
                }
            }
            // Bytes that match where they were written, but the header puts the tensor elsewhere.
            var moved = offsets
            moved["b"] = offsets["w"]
            let misplaced = Self.expected(Array(good[0..<4]), name: "b")
            if case .checkFailed(let tensor, let why) = reason(written([Self.expected(good), misplaced], offsets: moved)) {
                #expect(tensor == "b" && why.hasPrefix("at byte"), "\(why)")
            } else { Issue.record("misplaced") }
            #expect(reason(written([Self.expected(bad), b])) == .checkFailed(tensor: "w", reason: "byte 37 of 64 differs from the source"))
            let reshaped = Written.Expected(name: "w", dtype: .float32, shape: [4, 4], bytes: .bytes(good))
            if case .checkFailed(let tensor, _) = reason(written([reshaped, b])) { #expect(tensor == "w") } else { Issue.record("shape") }
            if case .checkFailed(let tensor, _) = reason(written([Self.expected(good), Self.expected([0, 0, 128, 63], name: "c")])) {
                #expect(tensor == "c")
            } else { Issue.record("missing") }
            #expect(reason(written([Self.expected(good)])) == .checkFailed(tensor: nil, reason: "2 tensors, expected 1"))
            #expect(reason(written([Self.expected(good), b], metadata: ["format": "pt"])) == .checkFailed(tensor: nil, reason: "metadata differs"))
        }
    }
}
