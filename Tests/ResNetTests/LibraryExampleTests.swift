import Foundation
import Testing
import Torchport
@testable import StateDict

/// The README's library example, compiled and run as written (only the paths differ).
@Suite("The README's one-line load")
struct LibraryExampleTests {
    @Test("Load a checkpoint in one line and run a batch: the logits match PyTorch's")
    func readmeExample() throws {
        let checkpointPath = ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.pth").path
        let golden = try Checkpoint(contentsOf: ModelFixture.folder.appendingPathComponent("tiny-basic-r18ish.golden.pth").path)
        let x = try #require(golden.tensor(named: "input"))
        let pixels = x.floats()

        // --- README example begins ---
        let resnet = try LoadedResNet(contentsOf: checkpointPath)     // .pth, .pt or a converted .safetensors
        let batch = FeatureMap(n: 2, c: 3, h: 64, w: 64, data: pixels) // NCHW, float32, normalised
        let logits = try resnet(batch)                                 // [n * classes], row-major
        // --- README example ends ---

        let want = try #require(golden.tensor(named: "logits")).floats()
        #expect(resnet.model.architecture.numClasses == 10)
        #expect(logits.count == want.count)
        #expect(ModelParityTests.relativeError(logits, want) <= 1e-5)
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
        } catch let BindingError.mismatch(missing, unexpected, shapes, hints) {
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
        } catch BindingError.unrecognisedArchitecture {
        }
        #expect(throws: BindingError.self) { _ = try LoadedResNet(contentsOf: path) }
    }

    @Test("20,000 candidate model roots are counted in one pass per name: the first wins the tie",
          .timeLimit(.minutes(1)))
    func manyRoots() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/hostile/cases/redteam-many-roots.pth").path
        let mapping = try NameMapping.map(Checkpoint(contentsOf: path).tensors)
        #expect(mapping.root == "m0.")
        #expect(mapping.stateDict.map(\.name) == ["conv1.weight"])
        #expect(mapping.decisions.filter { $0.hasPrefix("ignored a second network") }.count == 19_999)
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
        } catch let BindingError.mismatch(missing, unexpected, _, hints) {
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
        #expect(mapping.decisions.contains { $0.contains("unwrapped 'model'") })
        #expect(mapping.decisions.contains { $0.contains("stripped prefix 'module.'") })
        #expect(mapping.decisions.contains { $0.contains("num_batches_tracked") })
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
