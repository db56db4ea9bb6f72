import Foundation
import Testing
import Torchport
import TorchportCore
@testable import StateDict
import _TestSupport

/// The README's library example, compiled and run as written (only the paths differ).
@Suite("The README's one-line load")
struct LibraryExampleTests {
    @Test("Load a checkpoint in one line and run a batch: the logits match PyTorch's")
    func readmeExample() throws {
        let checkpointURL = ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.pth")
        let golden = try Checkpoint(contentsOf: ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.golden.pth").path)
        let x = try #require(golden.tensor(named: "input"))
        let pixels = x.floats()

        // --- README example begins ---
        let model = try ResNetModel(contentsOf: checkpointURL)              // .pth, .pt or a converted .safetensors
        let input = try FeatureMap(n: 2, c: 3, h: 64, w: 64, data: pixels)  // NCHW float32; throws on a wrong size
        let output = try model(input)                                       // [n, classes]
        let best = output.argmax()                                          // one class index per image
        let weight = model.parameter("layer1.0.conv1.weight")               // as loaded, whatever the engine
        // --- README example ends ---

        let want = try #require(golden.tensor(named: "logits")).floats()
        #expect(model.architecture.numClasses == 10)
        #expect(output.shape == [2, 10])
        #expect(maxRelativeError(output.values, want) <= 1e-5)
        #expect(best == (0..<2).map { b in (0..<10).max { want[b * 10 + $0] < want[b * 10 + $1] }! })
        #expect(weight?.shape == [8, 8, 3, 3])
        #expect(model.source == WeightsSource(url: checkpointURL, format: .zip))
    }

    @Test("Every bound parameter reads back as stored, bit for bit, on every engine this CPU runs")
    func parametersAsLoaded() throws {
        let path = ModelFixture.folder.appendingPathComponent("tiny-bottleneck.pth").path
        let checkpoint = try Checkpoint(contentsOf: path)
        for engine in InferenceEngine.allCases where engine.isAvailable {
            let model = try ResNetModel(contentsOf: path, engine: engine)
            #expect(model.engine == engine)
            #expect(model.parameters.count == model.architecture.expectedShapes.count)
            for (name, tensor) in model.parameters {
                let stored = try #require(checkpoint.tensor(named: name), "\(name)")
                #expect(tensor.dtype == stored.dtype && tensor.shape == stored.shape)
                #expect(tensor.floats() == stored.floats(), "\(name) on \(engine)")
            }
            // BatchNorm buffers stay as stored, not folded into the convolution.
            #expect(model.parameter("bn1.running_var")?.floats() == checkpoint.tensor(named: "bn1.running_var")?.floats())
            #expect(model.parameter("no.such.weight") == nil)
        }
    }

    @Test("The input type refuses a wrong size, and the model a wrong channel count, by case")
    func typedInput() throws {
        #expect(throws: InputError(.sizeMismatch(shape: [1, 3, 4, 4], count: 47))) {
            try FeatureMap(n: 1, c: 3, h: 4, w: 4, data: [Float](repeating: 0, count: 47))
        }
        #expect(throws: InputError(.negativeDimension(shape: [1, -3, 4, 4]))) {
            try FeatureMap(n: 1, c: -3, h: 4, w: 4, data: [])
        }
        #expect(throws: InputError(.sizeOverflow(shape: [Int.max, 3, 4, 4]))) {
            try FeatureMap(n: Int.max, c: 3, h: 4, w: 4, data: [])
        }
        let model = try ResNetModel(contentsOf: ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.pth"))
        #expect(throws: InputError(.channels(expected: 3, got: 1))) {
            try model(try FeatureMap(n: 1, c: 1, h: 32, w: 32, data: [Float](repeating: 0, count: 1024)))
        }
        #expect(throws: InputError(.tooSmall(height: 0, width: 5))) {
            try model(try FeatureMap(n: 1, c: 3, h: 0, w: 5, data: []))
        }
        #expect(throws: InputError(.emptyBatch)) { try model(try FeatureMap(n: 0, c: 3, h: 8, w: 8, data: [])) }
    }

    @Test("Outputs: rows, argmax, top-k with ties to the lower index, softmax rows summing to 1")
    func outputs() throws {
        let out = try #require(ModelOutput(batch: 2, width: 4, values: [1, 3, 2, 3, -1, .nan, 0, -2]))
        #expect(ModelOutput(batch: 2, width: 4, values: [1]) == nil)
        #expect(out.rows.count == 2 && out.rows[0] == [1, 3, 2, 3] && out.rows[1][1].isNaN)
        #expect(out.argmax() == [1, 2])
        #expect(out.topK(3)[0].map(\.index) == [1, 3, 2])
        #expect(out.topK(4)[1].map(\.index) == [2, 0, 3, 1])  // NaN last
        let p = out.softmax()[0]
        #expect(abs(p.reduce(0, +) - 1) < 1e-12)
        #expect(p[1] == p[3] && p[1] > p[2] && p[2] > p[0])
    }

    @Test("A URL, a path and a converted file load the same model; errors name the file and match by case")
    func loadingAndErrors() throws {
        let url = ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.pth")
        #expect(try ResNetModel(contentsOf: url.path).architecture == (try ResNetModel(contentsOf: url)).architecture)
        let golden = ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.golden.pth")
        do {
            _ = try ResNetModel(contentsOf: golden)
            Issue.record("a golden bound as a model")
        } catch let error as BindingError {
            guard case .noResNet(_, let total) = error.kind else { Issue.record("\(error.kind)"); return }
            #expect(total >= 2)
            #expect(error.location.file == golden.path)
            #expect(error.code == "noResNet")
        }
        let missing = ModelFixture.folder.appendingPathComponent("no-such-model.pth")
        do {
            _ = try ResNetModel(contentsOf: missing)
            Issue.record("a missing file loaded")
        } catch let error as CheckpointError {
            guard case .io = error.kind else { Issue.record("\(error.kind)"); return }
            #expect(error.location.file == missing.path)
            #expect(error.localizedDescription.contains(missing.path))
        }
    }
}

@Suite("Mapping rules a caller adds")
struct MappingRuleTests {
    /// The tiny fixture's tensors under names the built-in mapping does not know.
    static func renamed() throws -> [NamedTensor] {
        let checkpoint = try Checkpoint(contentsOf: ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.pth").path)
        return checkpoint.tensors.map { t in
            NamedTensor(name: "encoder." + t.name.replacingOccurrences(of: "bn", with: "norm_"), tensor: t.tensor)
        }
    }

    @Test("Rules strip a prefix and rename a pattern before strict binding, and are recorded among the decisions")
    func rules() throws {
        let tensors = try Self.renamed()
        #expect(throws: BindingError.self) { _ = try ResNetModel(mapping: try NameMapping.map(tensors)) }
        let rules: [MappingRule] = [.stripPrefix("encoder."), .replace("norm_", with: "bn")]
        let mapping = try NameMapping.map(tensors, rules: rules)
        let model = try ResNetModel(mapping: mapping)
        #expect(model.architecture.numClasses == 10)
        let count = tensors.count
        #expect(mapping.decisions.prefix(2) == [.appliedRule(.stripPrefix("encoder."), renamed: count),
                                                .appliedRule(.replace("norm_", with: "bn"), renamed: tensors.filter { $0.name.contains("norm_") }.count)])
        #expect(mapping.decisions[0].description == "rule strip prefix 'encoder.': \(count) names changed")
    }

    @Test("A sanitize closure renames and drops names, like mlx-swift's sanitize(weights:)")
    func sanitize() throws {
        var tensors = try Self.renamed()
        tensors.append(NamedTensor(name: "encoder.extra_head.weight", tensor: tensors[0].tensor))
        let mapping = try NameMapping.map(tensors, sanitize: { name in
            guard !name.contains("extra_head") else { return nil }
            return String(name.dropFirst("encoder.".count)).replacingOccurrences(of: "norm_", with: "bn")
        })
        _ = try ResNetModel(mapping: mapping)
        #expect(mapping.decisions.first == .sanitized(renamed: tensors.count - 1, dropped: 1))
    }
}

@Suite("Verification in the library")
struct LibraryVerificationTests {
    @Test("A model and a golden give the report the CLI prints; a wrong model fails it")
    func verify() throws {
        let model = try ResNetModel(contentsOf: ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.pth"))
        let golden = try Golden.load(contentsOf: ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.golden.pth"))
        let report = try Verifier.verify(model, against: golden)
        #expect(report.passed)
        #expect(report.engine == model.engine)
        #expect(report.samples == 2 && report.classes == 10)
        let other = try ResNetModel(contentsOf: ModelFixture.folder.appendingPathComponent("tiny-odd-head-c37.pth"))
        #expect(throws: VerificationError.self) { try Verifier.verify(other, against: golden) }
    }
}

@Suite("Strict binding")
struct StrictBindingTests {
    @Test("One error lists every missing, unexpected and mis-shaped key, with the closest names")
    func reportsEverything() throws {
        let checkpoint = try Checkpoint(contentsOf: ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.pth").path)
        var tensors = checkpoint.tensors.filter { $0.name != "layer2.0.bn1.running_var" && $0.name != "fc.bias" }
        // A typo'd key, and a tensor of the wrong shape under a right name.
        let renamed = try #require(tensors.firstIndex { $0.name == "layer3.1.conv2.weight" })
        tensors[renamed] = NamedTensor(name: "layer3.1.conv_2.weight", tensor: tensors[renamed].tensor)
        let wrong = try #require(tensors.firstIndex { $0.name == "layer1.0.bn2.bias" })
        let bigger = try #require(checkpoint.tensor(named: "layer2.0.bn1.bias"))
        tensors[wrong] = NamedTensor(name: "layer1.0.bn2.bias", tensor: bigger)
        let mapping = try NameMapping.map(tensors)
        do {
            _ = try ResNetModel(mapping: mapping)
            Issue.record("binding accepted a broken state dict")
        } catch {
            guard case .mismatch(let missing, let unexpected, let shapes, let hints) = error.kind else {
                Issue.record("\(error.kind)"); return
            }
            #expect(Set(missing) == ["layer2.0.bn1.running_var", "fc.bias", "layer3.1.conv2.weight"])
            #expect(unexpected == ["layer3.1.conv_2.weight"])
            #expect(shapes.map(\.name) == ["layer1.0.bn2.bias"])
            #expect(shapes.first?.expected == [8])
            #expect(shapes.first?.actual == [16])
            #expect(hints["layer3.1.conv2.weight"] == "layer3.1.conv_2.weight")
            #expect(hints["layer3.1.conv_2.weight"] == "layer3.1.conv2.weight")
        }
    }

    @Test("Zero-size tensors under ResNet names (no groups, no planes) are not a ResNet: refused, not a crash")
    func zeroSizeShapes() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/hostile/cases/redteam-zero-size-groups.pth").path
        let checkpoint = try Checkpoint(contentsOf: path)
        let mapping = try NameMapping.map(checkpoint.tensors)
        #expect(mapping.shapes["layer1.0.conv2.weight"] == [0, 1, 3, 3])
        #expect(ResNetArchitecture.recognise(mapping.shapes) == nil)
        do {
            _ = try mapping.checkBinding()
            Issue.record("a state dict of zero-size tensors bound")
        } catch {
            guard case .unrecognisedArchitecture = error.kind else { Issue.record("\(error.kind)"); return }
        }
        #expect(throws: BindingError.self) { _ = try ResNetModel(contentsOf: path) }
    }

    @Test("20,000 candidate model roots are counted in one pass per name: the first wins the tie",
          .timeLimit(.minutes(1)))
    func manyRoots() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/hostile/cases/redteam-many-roots.pth").path
        let mapping = try NameMapping.map(Checkpoint(contentsOf: path).tensors)
        #expect(mapping.root == "m0.")
        #expect(mapping.stateDict.map(\.name) == ["conv1.weight"])
        #expect(mapping.decisions.filter { if case .ignoredSecondNetwork = $0 { true } else { false } }.count == 19_999)
        #expect(RootTrie(["", "a.", "a.b."]).roots(prefixing: "a.b.c.weight") == ["", "a.", "a.b."])
        #expect(RootTrie(["a.b."]).roots(prefixing: "a.bc.weight").isEmpty)
    }

    @Test("Closest-name hints stop at a work budget: thousands of long unexpected names still fail fast, with no wrong hint",
          .timeLimit(.minutes(1)))
    func hintBudget() throws {
        let checkpoint = try Checkpoint(contentsOf: ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.pth").path)
        let w = try #require(checkpoint.tensor(named: "fc.bias"))
        var tensors = checkpoint.tensors
        for i in 0..<1000 { tensors.append(NamedTensor(name: "x\(i)" + String(repeating: "y", count: 3000), tensor: w)) }
        let mapping = try NameMapping.map(tensors)
        do {
            _ = try mapping.checkBinding()
            Issue.record("2,000 unexpected names bound")
        } catch {
            guard case .mismatch(let missing, let unexpected, _, let hints) = error.kind else {
                Issue.record("\(error.kind)"); return
            }
            #expect(missing.isEmpty && unexpected.count == 1000)
            #expect(hints.count < 1000)
            #expect(hints.values.allSatisfy { !$0.isEmpty })
        }
    }

    @Test("Wrappers and prefixes are undone visibly: 'model', 'module.', and num_batches_tracked dropped")
    func mappingDecisions() throws {
        let checkpoint = try Checkpoint(contentsOf: ModelFixture.folder.appendingPathComponent("tiny-wrapped-dp.pth").path)
        let mapping = try NameMapping.map(checkpoint.tensors)
        #expect(mapping.root == "model.module.")
        #expect(mapping.decisions.contains(.unwrapped("model", reason: "training checkpoint (torchvision reference scripts)")))
        #expect(mapping.decisions.contains(.strippedPrefix("module.", reason: "DataParallel / DistributedDataParallel")))
        #expect(mapping.decisions.contains { if case .droppedTrainingCounters(let n) = $0 { n > 0 } else { false } })
        #expect(mapping.stateDict.allSatisfy { !$0.name.hasPrefix("module.") && !$0.name.hasSuffix("num_batches_tracked") })
        #expect(mapping.stateDict.first?.name == "conv1.weight")
    }

    @Test("--arch forces the ten torchvision layouts; a mismatching one fails binding")
    func forcedArchitecture() throws {
        let checkpoint = try Checkpoint(contentsOf: ModelFixture.folder.appendingPathComponent("tiny-bottleneck.pth").path)
        let mapping = try NameMapping.map(checkpoint.tensors)
        #expect(throws: BindingError.self) {
            _ = try ResNetModel(mapping: mapping, architecture: ResNetArchitecture.named["resnet50"])
        }
        #expect(ResNetArchitecture.named.count == 10)
        #expect(ResNetArchitecture.named["resnext101_64x4d"]?.expectedShapes.first { $0.name == "layer1.0.conv2.weight" }?.shape == [256, 4, 3, 3])
        #expect(ResNetArchitecture.named["wide_resnet50_2"]?.expectedShapes.first { $0.name == "layer1.0.conv1.weight" }?.shape == [128, 64, 1, 1])
        #expect(ResNetArchitecture.named["resnet18"]?.torchvisionName == "resnet18")
    }
}
