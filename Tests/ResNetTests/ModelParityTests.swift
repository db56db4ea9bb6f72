import Foundation
import Testing
@testable import ResNet
import StateDict
import TorchCheckpoint
import TorchportCore
import _TestSupport

@Suite("ResNet parity with PyTorch on the tiny fixtures")
struct ModelParityTests {
    static func run(_ f: ModelFixture) throws -> (model: ResNetModel, mapping: NameMapping, golden: Checkpoint) {
        let checkpoint = try Checkpoint(contentsOf: f.path(f.checkpoint))
        let mapping = try NameMapping.map(checkpoint.tensors)
        let model = try ResNetModel(mapping: mapping)
        return (model, mapping, try Checkpoint(contentsOf: f.path(f.golden)))
    }

    static func input(_ golden: Checkpoint) throws -> FeatureMap {
        let x = try #require(golden.tensor(named: "input"))
        return try FeatureMap(n: x.shape[0], c: x.shape[1], h: x.shape[2], w: x.shape[3], data: x.floats())
    }

    /// max|d| / max|ref|
    static func relativeError(_ got: [Float], _ want: [Float]) -> Float { maxRelativeError(got, want) }

    @Test("The manifest lists the variants: basic, bottleneck, grouped, wide, odd heads, headless, detection")
    func coverage() {
        let all = ModelFixture.all
        #expect(all.count >= 10)
        #expect(all.contains { $0.arch.block == "basic" })
        #expect(all.contains { $0.arch.block == "bottleneck" && $0.arch.groups > 1 })
        #expect(all.contains { $0.kind == "headless" })
        #expect(all.contains { $0.kind == "detection-backbone" })
    }

    @Test("Recognised architecture matches what the generator built", arguments: ModelFixture.all)
    func recognisesArchitecture(_ f: ModelFixture) throws {
        let (model, _, _) = try Self.run(f)
        let a = model.architecture
        #expect(a.block.rawValue == f.arch.block)
        #expect(a.layers == f.arch.layers)
        #expect(a.groups == f.arch.groups)
        #expect(a.stageWidths == f.arch.stage_widths)
        #expect(a.stemWidth == f.arch.stem_width)
        #expect(a.numClasses == f.arch.num_classes)
    }

    @Test("Outputs match torch within 1e-5 of the logit scale", arguments: ModelFixture.all)
    func matchesTorch(_ f: ModelFixture) throws {
        let (model, _, golden) = try Self.run(f)
        let x = try Self.input(golden)
        if f.golden_keys.contains("logits") {
            let want = try #require(golden.tensor(named: "logits")).floats()
            let got = try model(x).values
            #expect(got.count == want.count)
            #expect(Self.relativeError(got, want) <= 1e-5, "\(f.name): \(Self.relativeError(got, want))")
        }
        if f.golden_keys.contains("features") {
            let want = try #require(golden.tensor(named: "features")).floats()
            let got = try model.features(x).values
            #expect(Self.relativeError(got, want) <= 1e-5, "\(f.name) features: \(Self.relativeError(got, want))")
        }
        if f.golden_keys.contains("feature_map") {
            let want = try #require(golden.tensor(named: "feature_map"))
            let got = try model.featureMap(x)
            #expect(got.shape == want.shape)
            #expect(Self.relativeError(got.data, want.floats()) <= 1e-5)
        }
    }

    @Test("More threads than groups, images or pixels: every fixture still matches torch on both engines")
    func manyThreads() throws {
        // Above tiny-resnext's 4 groups, its 2 images and its late maps' pixels; an executor of
        // its own, so that the tests running beside this one keep theirs.
        let executor = Executor(threads: 8)
        for f in ModelFixture.all where f.golden_keys.contains("logits") {
            let checkpoint = try Checkpoint(contentsOf: f.path(f.checkpoint))
            let golden = try Checkpoint(contentsOf: f.path(f.golden))
            let want = try #require(golden.tensor(named: "logits")).floats()
            for engine in InferenceEngine.allCases where engine.isAvailable {
                let model = try ResNetModel(mapping: NameMapping.map(checkpoint.tensors), engine: engine, executor: executor)
                let error = Self.relativeError(try model(Self.input(golden)).values, want)
                #expect(error <= 1e-5, "\(f.name) on \(engine): \(error)")
            }
        }
    }
}

@Suite("Engine selection")
struct EngineSelectionTests {
    @Test("Asking for an engine this CPU cannot run is refused by name; nil picks the best one, which binds")
    func unavailableEngineRefused() throws {
        let f = try #require(ModelFixture.all.first { $0.name == "tiny-basic-r18ish" })
        let mapping = try NameMapping.map(Checkpoint(contentsOf: f.path(f.checkpoint)).tensors)
        let best = try ResNetModel(mapping: mapping)
        #expect(best.engine == InferenceEngine.best)
        let unavailable = InferenceEngine.allCases.filter { !$0.isAvailable }
        // The reference engine runs everywhere; the packed one only with AVX-512.
        #expect(unavailable == (InferenceEngine.packed.isAvailable ? [] : [.packed]))
        for engine in unavailable {
            do {
                _ = try ResNetModel(mapping: mapping, engine: engine)
                Issue.record("\(engine) bound on a CPU that cannot run it")
            } catch {
                guard case .engineUnavailable(let reason) = error.kind else { Issue.record("\(error.kind)"); continue }
                #expect(reason.contains(engine.rawValue))
            }
        }
    }
}
