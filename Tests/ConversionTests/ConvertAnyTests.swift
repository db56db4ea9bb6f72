import Foundation
import Testing
@testable import Conversion
import Torchport
import TorchportCore

/// `convertCheckpoint` on checkpoints of models that are not ResNets, in the layouts people bring
/// (`Fixtures/formats/`, made by `Fixtures/generate_formats.py`): every tensor of `state_dict()`
/// under its name, bit for bit, as `expected.json` (written by torch) lists them.
@Suite("Converting any checkpoint")
struct ConvertAnyTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/formats")

    /// `expected.json`: fixture -> {state_dict: {name: {dtype, shape, sha256}}, kept, dropped, classes, resnet}.
    static var expected: [String: [String: Any]] {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("expected.json")),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] else { return [:] }
        return json
    }

    /// A JSON value in one canonical spelling (sorted keys), to compare values parsed from two texts.
    static func canonical(_ value: Any) -> Data? {
        try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
    }

    /// The fixtures every layout reader handles (the whole list of expected.json).
    static let fixtures: [String] = [
        "vit-tiny.pth", "densenet-tiny.pth", "mobilenet-v2-narrow.pth", "training-vit.pth",
        "lightning-densenet.ckpt", "hf-vit.bin", "whole-resnet.pth", "whole-mobilenet.pth",
        "sharded-bin/pytorch_model.bin.index.json", "sharded-safetensors/model.safetensors.index.json", "dcp",
        "dcp-resnet",
    ]

    @Test("The fixtures and their expectations are there (no parameterised test runs zero cases)")
    func present() {
        #expect(Self.fixtures.count >= 6)
        #expect(Set(Self.fixtures) == Set(Self.expected.keys))
        for f in Self.fixtures { #expect(Self.expected[f] != nil, "\(f) missing from expected.json") }
    }

    @Test("Each converts to exactly torch's state_dict(): names, dtypes, shapes, sha256 of every tensor",
          arguments: ConvertAnyTests.fixtures)
    func convertsBitIdentical(_ name: String) throws {
        let expectation = try #require(Self.expected[name])
        let stateDict = try #require(expectation["state_dict"] as? [String: [String: Any]])
        #expect(!stateDict.isEmpty)
        try ConversionTests.withFolder { folder in
            let output = folder + "/out.safetensors"
            let summary = try convertCheckpoint(from: Self.folder.appendingPathComponent(name).path, to: output)
            let written = try SafeTensorsFile(contentsOf: output)
            #expect(Set(written.names) == Set(stateDict.keys), "\(name)")
            #expect(summary.tensors == stateDict.count)
            for (tensorName, e) in stateDict {
                let t = try #require(written.tensor(named: tensorName), "\(name): \(tensorName)")
                #expect(t.dtype.rawValue == e["dtype"] as? String, "\(name): \(tensorName)")
                #expect(t.shape == e["shape"] as? [Int], "\(name): \(tensorName)")
                #expect(ConversionTests.sha256(t) == e["sha256"] as? String, "\(name): \(tensorName)")
            }
            let m = written.metadata
            #expect(m["format"] == "pt")
            #expect((m["torchport.arch"] != nil) == (expectation["resnet"] as? Bool ?? false))
            #expect(summary.architecture == nil || expectation["resnet"] as? Bool == true)
            // Values kept as JSON, equal to what Python holds.
            let kept = expectation["kept"] as? [String: Any] ?? [:]
            #expect(Set(summary.keptValues) == Set(kept.keys), "\(name)")
            for (key, value) in kept {
                let json = try #require(m["torchport.checkpoint.\(key)"], "\(name): \(key)")
                let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
                #expect(Self.canonical(parsed) != nil && Self.canonical(parsed) == Self.canonical(value), "\(name): \(key) = \(json)")
            }
            for dropped in expectation["dropped"] as? [String] ?? [] {
                #expect(m["torchport.mapping"]?.contains("dropped '\(dropped)'") == true, "\(name): \(dropped)")
            }
            if let classes = expectation["classes"] as? [String] {
                #expect(m["torchport.classes"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String] } == classes)
            }
        }
    }

    @Test("--include / --exclude choose tensors by glob on their state-dict names, and say so")
    func includeExclude() throws {
        try ConversionTests.withFolder { folder in
            var options = ConversionOptions()
            options.include = [NamePattern("encoder.*")]
            options.exclude = [NamePattern("*.bias")]
            let summary = try convertCheckpoint(from: Self.folder.appendingPathComponent("training-vit.pth").path,
                                                to: folder + "/o.safetensors", options: options)
            let names = try SafeTensorsFile(contentsOf: folder + "/o.safetensors").names
            #expect(!names.isEmpty)
            #expect(names.allSatisfy { $0.hasPrefix("encoder.") && !$0.hasSuffix(".bias") })
            #expect(names.contains("encoder.pos_embedding") && names.contains("encoder.ln.weight"))
            #expect(summary.decisions.contains { if case .filtered(["encoder.*"], ["*.bias"], names.count, 20 - names.count) = $0 { true } else { false } })
        }
    }

    @Test("Whole-model pickles: torch/torchvision module classes are framework records; functions and attribute paths stay refused")
    func frameworkClasses() throws {
        #expect(PickleScanner.classify(module: "torchvision.models.resnet", name: "ResNet", inTorchScript: false) == (.framework, .none))
        #expect(PickleScanner.classify(module: "torch.nn.modules.conv", name: "Conv2d", inTorchScript: false) == (.framework, .none))
        #expect(PickleScanner.classify(module: "torchvision.ops.misc", name: "Conv2dNormActivation", inTorchScript: false) == (.framework, .none))
        // A function (it would download weights), an attribute path, another package: refused.
        #expect(PickleScanner.classify(module: "torchvision.models.resnet", name: "resnet50", inTorchScript: false).0 == .refused)
        #expect(PickleScanner.classify(module: "torch.nn.modules.module", name: "Module.__setstate__", inTorchScript: false).0 == .refused)
        #expect(PickleScanner.classify(module: "torch.nn.functional", name: "Relu", inTorchScript: false).0 == .refused)
        #expect(PickleScanner.classify(module: "torchvision.models..x", name: "ResNet", inTorchScript: false).0 == .refused)
        // The whole-model fixture scans safe, every class a framework one; its non-persistent buffer is left out.
        let report = PickleScanner.scan(path: Self.folder.appendingPathComponent("whole-resnet.pth").path)
        #expect(report.verdict == .safe)
        #expect(report.globals.filter { $0.classification == .framework }.count >= 9)
        // A framework class beside a code-running global: still dangerous, and the reader refuses it.
        let mixed: [UInt8] = [0x80, 0x02] + Array("ctorchvision.models.resnet\nResNet\n0cos\nsystem\n0N.".utf8)
        let mixedReport = PickleScanner.scan(bytes: mixed, name: "mixed.pkl")
        #expect(mixedReport.verdict == .dangerous)
        #expect(mixedReport.globals.map(\.classification) == [.framework, .refused])
        #expect(throws: CheckpointError.self) { try Checkpoint(bytes: mixed) }
        let checkpoint = try Checkpoint(contentsOf: Self.folder.appendingPathComponent("whole-resnet.pth").path)
        #expect(checkpoint.tensors.count == 74)
        #expect(!checkpoint.tensors.contains { $0.name.contains("scratch") || $0.name.contains("_parameters") })
    }

    @Test("A sharded folder reads as its index; a distributed checkpoint's sharded tensors are reassembled, the replicated one read once")
    func layouts() throws {
        let folder = try readTensors(Self.folder.appendingPathComponent("sharded-bin").path)
        let index = try readTensors(Self.folder.appendingPathComponent("sharded-bin/pytorch_model.bin.index.json").path)
        #expect(folder.format == .sharded && index.format == .sharded)
        #expect(folder.tensors.map(\.name) == index.tensors.map(\.name) && folder.tensors.count == 43)
        let dcp = try DistributedCheckpoint(folder: Self.folder.appendingPathComponent("dcp").path)
        #expect(dcp.tensors.map(\.name) == ["encoder.weight", "decoder.weight", "norm.bias", "step"])
        #expect(dcp.tensors.map(\.tensor.shape) == [[6, 5], [3, 8], [7], []])
        #expect(dcp.tensors.map(\.tensor.dtype) == [.float32, .float64, .bfloat16, .int64])
        // Shard(1): column blocks [3, 4] at columns 0 and 4, put back side by side.
        let decoder = dcp.tensors[1].tensor
        #expect(decoder.isContiguous && decoder.nbytes == 3 * 8 * 8)
    }

    @Test("The library loader binds a ResNet straight from a distributed checkpoint folder")
    func loaderTakesDistributed() throws {
        let model = try ResNetModel(contentsOf: Self.folder.appendingPathComponent("dcp-resnet"))
        #expect(model.architecture.numClasses == 5)
        #expect(model.source?.format == .distributed)
    }

    /// A copy of a fixture folder to break.
    static func copy(_ name: String, into folder: String) throws -> String {
        let target = folder + "/" + name
        try FileManager.default.copyItem(atPath: Self.folder.appendingPathComponent(name).path, toPath: target)
        return target
    }

    static func layoutReason(_ body: () throws -> Void) -> String? {
        do { try body() } catch let e as CheckpointError {
            if case .layout(let reason) = e.kind { return reason }
            return "other: \(e)"
        } catch { return "other: \(error)" }
        return nil
    }

    @Test("Hostile sharded indexes: paths leaving the folder, missing shards or tensors, duplicate names, an index naming itself")
    func hostileIndexes() throws {
        try ConversionTests.withFolder { folder in
            let dir = try Self.copy("sharded-safetensors", into: folder)
            let index = dir + "/model.safetensors.index.json"
            func write(_ json: String) throws { try Data(json.utf8).write(to: URL(fileURLWithPath: index)) }
            let cases: [(json: String, expected: String)] = [
                (#"{"weight_map": {"a": "../vit-tiny.pth"}}"#, "not a plain file name"),
                (#"{"weight_map": {"a": "/etc/passwd"}}"#, "not a plain file name"),
                (#"{"weight_map": {"a": "model-00009-of-00009.safetensors"}}"#, "is missing"),
                (#"{"weight_map": {"no.such.tensor": "model-00001-of-00002.safetensors"}}"#, "not found in shard"),
                (#"{"weight_map": {"a": "model-00001-of-00002.safetensors", "a": "model-00002-of-00002.safetensors"}}"#, "not valid JSON"),
                (#"{"weight_map": {"a": "model.safetensors.index.json"}}"#, ""),
                (#"{"weight_map": {"a": 3}}"#, "not a string"),
                (#"{"metadata": {}}"#, "weight_map"),
            ]
            #expect(!cases.isEmpty)
            for c in cases {
                try write(c.json)
                let reason = Self.layoutReason { _ = try readTensors(index) }
                #expect(reason != nil, "\(c.json) was accepted")
                if !c.expected.isEmpty { #expect(reason?.contains(c.expected) == true, "\(c.json): \(reason ?? "-")") }
                // Nothing is written from it.
                #expect(throws: (any Error).self) { try convertCheckpoint(from: dir, to: folder + "/out.safetensors") }
                #expect(!FileManager.default.fileExists(atPath: folder + "/out.safetensors"))
            }
        }
    }

    @Test("A distributed checkpoint with a truncated or missing chunk file is refused, naming the file and tensor")
    func hostileDistributed() throws {
        try ConversionTests.withFolder { folder in
            let dir = try Self.copy("dcp", into: folder)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/__1_0.distcp"))
            try handle.truncate(atOffset: 4000)
            try handle.close()
            #expect {
                try DistributedCheckpoint(folder: dir)
            } throws: { e in
                guard let e = e as? CheckpointError, case .truncated = e.kind else { return false }
                return e.location.file?.hasSuffix("__1_0.distcp") == true && e.location.key != nil
            }
            try FileManager.default.removeItem(atPath: dir + "/__1_0.distcp")
            let reason = Self.layoutReason { _ = try DistributedCheckpoint(folder: dir) }
            #expect(reason?.contains("chunk file missing") == true, "\(reason ?? "-")")
        }
    }

    @Test("A distributed checkpoint's .metadata gets no other global; a chunk path leaving the folder is refused")
    func hostileDistributedMetadata() throws {
        try ConversionTests.withFolder { folder in
            let dir = try Self.copy("dcp", into: folder)
            let meta = dir + "/.metadata"
            let original = try Data(contentsOf: URL(fileURLWithPath: meta))
            // `__0_0.distcp` -> `../0_0.distc` (same length, so the pickle stays well formed).
            let from = Data("__0_0.distcp".utf8), to = Data("../0_0.distc".utf8)
            let at = try #require(original.range(of: from))
            var escaped = original
            escaped.replaceSubrange(at, with: to)
            try escaped.write(to: URL(fileURLWithPath: meta))
            let reason = Self.layoutReason { _ = try DistributedCheckpoint(folder: dir) }
            #expect(reason?.contains("not a plain file name") == true, "\(reason ?? "-")")
            // A code-running global in .metadata: refused by name, nothing called.
            try Data([0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x2E]).write(to: URL(fileURLWithPath: meta))
            #expect {
                try DistributedCheckpoint(folder: dir)
            } throws: { e in
                guard let e = e as? CheckpointError, case .disallowedGlobal("os", "system") = e.kind else { return false }
                return e.location.file == meta
            }
            // The dataclasses are records only inside a .metadata: a plain checkpoint naming one is refused.
            #expect(throws: CheckpointError.self) {
                try Checkpoint(bytes: [0x80, 0x02] + Array("ctorch.distributed.checkpoint.metadata\nMetadata\n".utf8) + [0x2E])
            }
        }
    }

    /// A seeded generator (SplitMix64), so the mutations are the same on every run.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// `bytes` with a few random bytes changed, inserted or removed.
    static func mutate(_ bytes: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        var b = bytes
        for _ in 0..<Int.random(in: 1...4, using: &rng) where !b.isEmpty {
            let i = Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: b[i] = UInt8.random(in: 0...255, using: &rng)
            case 1: b[i] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            case 2: b.insert(UInt8.random(in: 0...255, using: &rng), at: i)
            default: b.remove(at: i)
            }
        }
        return b
    }

    @Test("Mutated .metadata pickles and index files (1,500 each, seeded) only ever throw, never trap")
    func mutationsThrowOrRead() throws {
        try ConversionTests.withFolder { folder in
            let dcp = try Self.copy("dcp", into: folder)
            let sharded = try Self.copy("sharded-safetensors", into: folder)
            let metadata = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dcp + "/.metadata")))
            let index = try [UInt8](Data(contentsOf: URL(fileURLWithPath: sharded + "/model.safetensors.index.json")))
            var rng = SplitMix(state: 16)
            var read = 0, refused = 0
            for _ in 0..<1_500 {
                try Data(Self.mutate(metadata, &rng)).write(to: URL(fileURLWithPath: dcp + "/.metadata"))
                do { _ = try DistributedCheckpoint(folder: dcp); read += 1 } catch is CheckpointError { refused += 1 }
                try Data(Self.mutate(index, &rng)).write(to: URL(fileURLWithPath: sharded + "/model.safetensors.index.json"))
                do { _ = try ShardedCheckpoint(index: sharded + "/model.safetensors.index.json"); read += 1 } catch {
                    refused += 1
                }
            }
            #expect(read + refused == 3_000)
            #expect(refused > 1_000)
        }
    }

    @Test("maxShardBytes writes Hugging Face's layout: shards within the limit, an index; it reads back as the same state dict")
    func writesShards() throws {
        try ConversionTests.withFolder { folder in
            let input = Self.folder.appendingPathComponent("training-vit.pth").path
            var options = ConversionOptions()
            options.maxShardBytes = 10_000
            let out = folder + "/out"
            let summary = try convertCheckpoint(from: input, to: out, options: options)
            #expect(summary.files == (1...4).map { String(format: "model-%05d-of-00004.safetensors", $0) })
            #expect(ConversionTests.contents(out) == summary.files + ["model.safetensors.index.json"])
            for f in summary.files {
                let shard = try SafeTensorsFile(contentsOf: out + "/" + f)
                #expect(shard.totalBytes <= 10_000 || shard.tensors.count == 1, "\(f)")
                #expect(shard.metadata["format"] == "pt" && shard.metadata["torchport.checkpoint.epoch"] == "7")
            }
            let back = try readTensors(out)
            let single = try readTensors(input)
            #expect(back.format == .sharded)
            let plan = try ConversionPlan.make(tensors: single.tensors)
            #expect(back.tensors.map(\.name).sorted() == plan.stateDict.map(\.name).sorted())
            let byName = Dictionary(uniqueKeysWithValues: plan.stateDict.map { ($0.name, $0.tensor) })
            for t in back.tensors { #expect(ConversionTests.sha256(t.tensor) == byName[t.name].map(ConversionTests.sha256), "\(t.name)") }
            // All in one shard: a single model.safetensors, no index.
            options.maxShardBytes = 1 << 30
            let one = try convertCheckpoint(from: input, to: folder + "/one", options: options)
            #expect(one.files == ["model.safetensors"] && ConversionTests.contents(folder + "/one") == ["model.safetensors"])
            // Existing shards are not replaced without force; nothing new is left behind.
            #expect { try convertCheckpoint(from: input, to: folder + "/one", options: options) } throws: {
                ($0 as? ConversionError)?.kind == .outputExists
            }
            #expect(ConversionTests.contents(folder + "/one") == ["model.safetensors"])
        }
    }

    @Test("Parameter counts read as people say them")
    func parameterText() {
        #expect(StateDictSelection.describeParameters(11_689_512) == "11.7M parameters")
        #expect(StateDictSelection.describeParameters(5_610) == "5.6K parameters")
        #expect(StateDictSelection.describeParameters(812) == "812 parameters")
        #expect(StateDictSelection.describeParameters(2_500_000_000) == "2.5B parameters")
    }

    @Test("A bare state dict whose only top-level module is not a wrapper is left as it is")
    func noFalseUnwrap() throws {
        let t = try #require(TensorRecord(dtype: .float32, shape: [1], bytes: ByteSlice(owner: FileBytes.owned([0, 0, 128, 63]))))
        let names = ["backbone.conv.weight", "head.fc.weight", "optimizer.state.0.momentum_buffer"]
        let s = StateDictSelection.select(names.map { NamedTensor(name: $0, tensor: t) })
        #expect(s.root == "")
        #expect(s.stateDict.map(\.name) == names)
        let wrapped = StateDictSelection.select(["model.a.weight", "optimizer.state.0.x"].map { NamedTensor(name: $0, tensor: t) })
        #expect(wrapped.root == "model.")
        #expect(wrapped.stateDict.map(\.name) == ["a.weight"])
        #expect(wrapped.outside == ["optimizer": 1])
    }
}
