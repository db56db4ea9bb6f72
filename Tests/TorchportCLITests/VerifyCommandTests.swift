import Foundation
import Testing
import Torchport
import TorchportCore

@Suite("torchport verify and bench, run as a user would")
struct VerifyCommandTests {
    static let models = CLIRunner.repoRoot.appendingPathComponent("Fixtures/models")
    static func model(_ name: String) -> String { models.appendingPathComponent(name).path }

    static func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("torchport-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("A faithful model passes: exit 0, a PASS verdict and the criterion in the report")
    func passes() throws {
        let r = try CLIRunner.run("verify", Self.model("tiny-resnext.pth"), "--golden", Self.model("tiny-resnext.golden.pth"))
        #expect(r.status == 0)
        #expect(r.stdout.contains("PASS"))
        #expect(r.stdout.contains("max|d| <= 0 + 1e-05 * max|ref|"))
        // The engine that ran is named (the best this CPU runs; the ResNeXt fixture's groups run
        // on the reference engine everywhere).
        #expect(r.stdout.contains("\nengine: reference\n"))
    }

    @Test("--engine packed where the CPU cannot run it: refused (exit 2) with the reason, never run on the other engine")
    func unavailableEngine() throws {
        let r = try CLIRunner.run("verify", Self.model("tiny-basic-r18ish.pth"), "--golden", Self.model("tiny-basic-r18ish.golden.pth"),
                                  "--engine", "packed", "--json")
        if InferenceEngine.packed.isAvailable {
            #expect(r.status == 0)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            #expect(json["engine"] as? String == "packed")
        } else {
            #expect(r.status == 2)
            #expect(r.stderr.contains("engine unavailable: the packed engine needs AVX-512 (F, VL, DQ, BW) or AVX2 + FMA"))
        }
    }

    @Test("--json reports passed and the errors; --save-logits writes the computed logits")
    func jsonAndSavedLogits() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("ours.safetensors").path
        let r = try CLIRunner.run("verify", Self.model("tiny-odd-head-c37.pth"), "--golden", Self.model("tiny-odd-head-c37.golden.pth"),
                                  "--json", "--save-logits", out)
        #expect(r.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["passed"] as? Bool == true)
        #expect(json["engine"] as? String == InferenceEngine.best.rawValue)
        let maxRel = try #require(json["max_rel_error"] as? Double)
        #expect(maxRel <= 1e-5)
        let saved = try SafeTensorsFile(contentsOf: out)
        let logits = try #require(saved.tensor(named: "logits"))
        let golden = try Checkpoint(contentsOf: Self.model("tiny-odd-head-c37.golden.pth"))
        let want = try #require(golden.tensor(named: "logits"))
        #expect(logits.shape == want.shape)
        let scale = want.floats().map(abs).max() ?? 1
        #expect(zip(logits.floats(), want.floats()).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
    }

    @Test("A deliberately perturbed weight fails verification with exit 1")
    func perturbedWeightFails() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try Checkpoint(contentsOf: Self.model("tiny-basic-r18ish.pth"))
        // Add 0.01 to one weight of one 3x3 kernel deep in the network, write it as safetensors.
        let entries = source.tensors.filter { !$0.name.hasSuffix("num_batches_tracked") }.map { t -> SafeTensorsWriter.Entry in
            var bytes = t.tensor.contiguousBytes()
            if t.name == "layer3.1.conv2.weight" {
                bytes.withUnsafeMutableBytes { raw in
                    let f = raw.bindMemory(to: Float.self)
                    f[5] += 0.01
                }
            }
            return SafeTensorsWriter.Entry(name: t.name, dtype: t.tensor.dtype, shape: t.tensor.shape, bytes: bytes)
        }
        let perturbed = dir.appendingPathComponent("perturbed.safetensors").path
        try SafeTensorsWriter.write(entries, to: perturbed)
        let r = try CLIRunner.run("verify", perturbed, "--golden", Self.model("tiny-basic-r18ish.golden.pth"))
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAIL"))
        // The unperturbed copy, same path through safetensors, passes.
        let clean = dir.appendingPathComponent("clean.safetensors").path
        try SafeTensorsWriter.write(source.tensors.filter { !$0.name.hasSuffix("num_batches_tracked") }, to: clean)
        #expect(try CLIRunner.run("verify", clean, "--golden", Self.model("tiny-basic-r18ish.golden.pth")).status == 0)
    }

    @Test("A file that cannot be used exits 2 with the reason on stderr")
    func unusable() throws {
        let noGolden = try CLIRunner.run("verify", Self.model("tiny-resnext.pth"), "--golden", CLIRunner.fixture("checkpoints/dtypes.pth"))
        #expect(noGolden.status == 2)
        #expect(noGolden.stderr.contains("input"))
        let hostile = try CLIRunner.run("verify", CLIRunner.fixture("hostile/cases/global-os-system.pth"),
                                        "--golden", Self.model("tiny-resnext.golden.pth"))
        #expect(hostile.status == 2)
        #expect(hostile.stderr.contains("os.system"))
        let wrongModel = try CLIRunner.run("verify", Self.model("tiny-resnext.pth"), "--golden", Self.model("tiny-basic-r18ish.golden.pth"))
        #expect(wrongModel.status == 2)
    }

    @Test("bench --json reports median_ms and the architecture")
    func benchJSON() throws {
        let r = try CLIRunner.run("bench", Self.model("tiny-bottleneck.pth"), "--size", "64", "--runs", "3", "--batch", "2", "--json")
        #expect(r.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let median = try #require(json["median_ms"] as? Double)
        #expect(median > 0)
        #expect((json["min_ms"] as? Double ?? .infinity) <= median)
        #expect(json["batch"] as? Int == 2)
    }

    @Test("bench --concurrent 2 --json: one model alone, two on executors of their own (half and all the threads), two sharing one")
    func benchConcurrent() throws {
        let r = try CLIRunner.run("bench", Self.model("tiny-bottleneck.pth"), "--size", "32", "--runs", "2", "--warmup", "1",
                                  "--threads", "2", "--concurrent", "2", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let configurations = try #require(json["configurations"] as? [[String: Any]])
        #expect(configurations.map { $0["models"] as? Int } == [1, 2, 2, 2])
        #expect(configurations.map { $0["threads_per_model"] as? Int } == [2, 1, 2, 2])
        #expect(configurations.map { $0["shared_executor"] as? Bool } == [false, false, false, true])
        for c in configurations {
            let rates = try #require(c["images_per_second"] as? [Double])
            #expect(rates.count == json["rounds"] as? Int && rates.allSatisfy { $0 > 0 })
        }
        #expect(configurations.first?["speedup"] as? Double == 1)
        let one = try CLIRunner.run("bench", Self.model("tiny-bottleneck.pth"), "--concurrent", "1")
        #expect(one.status == 64 && one.stderr.contains("--concurrent must be at least 2, got 1"))
    }

    @Test("bench --serve answers each \"BATCH RUNS\" line with that many timed runs, and refuses a bad line")
    func benchServe() throws {
        let args = ["bench", Self.model("tiny-bottleneck.pth"), "--size", "32", "--serve", "--warmup", "1"]
        let r = try CLIRunner.run(args, input: "2 3\n1 2\n2 1\n")
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(lines.count == 3)
        for (line, (batch, runs)) in zip(lines, [(2, 3), (1, 2), (2, 1)]) {
            let times = try #require(line?["times_ms"] as? [Double])
            #expect(line?["batch"] as? Int == batch)
            #expect(times.count == runs && times.allSatisfy { $0 > 0 })
        }
        let bad = try CLIRunner.run(args, input: "2 3\nthree\n")
        #expect(bad.status == 2)
        #expect(bad.stdout.split(separator: "\n").count == 1)  // the good request was answered first
        #expect(bad.stderr.contains("BATCH RUNS"))
    }
}

@Suite("verify with per-layer goldens")
struct VerifyLayersCommandTests {
    @Test("--plot writes an SVG marking the first divergence; --json carries the table and first_divergence (null when clean)")
    func plotAndJSON() throws {
        try ConvertCommandTests.withFolder { folder in
            let model = CLIRunner.fixture("models/tiny-basic-r18ish.pth")
            let svg = folder + "/layers.svg"
            let faulty = try CLIRunner.run("verify", model, "--golden", CLIRunner.fixture("layers/tiny-basic-r18ish.bn-eps.golden.pth"),
                                           "--engine", "reference", "--plot", svg, "--json")
            #expect(faulty.status == 1)
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(faulty.stdout.utf8)) as? [String: Any])
            let first = try #require(doc["first_divergence"] as? [String: Any])
            #expect(first["layer"] as? String == "layer3.0.bn2")
            let table = try #require((doc["layers"] as? [String: Any])?["layers"] as? [[String: Any]])
            #expect(table.count == 59)
            let picture = try String(contentsOfFile: svg, encoding: .utf8)
            #expect(picture.hasPrefix("<svg ") && picture.contains("class=\"divergence\" data-layer=\"layer3.0.bn2\""))
            #expect(picture.components(separatedBy: "class=\"layer\"").count - 1 == 59)

            let clean = try CLIRunner.run("verify", model, "--golden", CLIRunner.fixture("layers/tiny-basic-r18ish.clean.golden.pth"), "--json")
            #expect(clean.status == 0, "\(clean.stdout)")
            let cleanDoc = try #require(try JSONSerialization.jsonObject(with: Data(clean.stdout.utf8)) as? [String: Any])
            #expect(cleanDoc.keys.contains("first_divergence") && cleanDoc["first_divergence"] is NSNull)
            let text = try CLIRunner.run("verify", model, "--golden", CLIRunner.fixture("layers/tiny-basic-r18ish.clean.golden.pth"))
            #expect(text.stdout.contains("layers: all ") && text.stdout.contains(" compared within tolerance"))

            let none = try CLIRunner.run("verify", model, "--golden", CLIRunner.fixture("models/tiny-basic-r18ish.golden.pth"),
                                         "--plot", folder + "/none.svg")
            #expect(none.status == 2 && none.stderr.contains("holds no intermediates"))
            #expect(!FileManager.default.fileExists(atPath: folder + "/none.svg"))
        }
    }
}
