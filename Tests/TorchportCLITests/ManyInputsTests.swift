import Foundation
import Testing
import Torchport
import TorchportCore

@Suite("torchport convert and verify with many inputs, run as a user would")
struct ManyInputsTests {
    static let models = CLIRunner.repoRoot.appendingPathComponent("Fixtures/models")
    static func model(_ name: String) -> String { models.appendingPathComponent(name).path }
    static let stems = ["tiny-basic-r18ish", "tiny-headless", "tiny-resnext"]

    static func withFolder(_ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("torchport-many-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try body(dir.path)
    }

    static func contents(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }

    static func makeDir(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// `root/in` holding the three small checkpoints (and the hostile file when asked), and
    /// `root/goldens` holding their goldens.
    static func prepare(_ root: String, hostile: Bool) throws -> (inputs: String, goldens: String) {
        let inputs = root + "/in", goldens = root + "/goldens"
        try makeDir(inputs)
        try makeDir(goldens)
        for stem in stems {
            try FileManager.default.copyItem(atPath: model(stem + ".pth"), toPath: inputs + "/\(stem).pth")
            try FileManager.default.copyItem(atPath: model(stem + ".golden.pth"), toPath: goldens + "/\(stem).golden.pth")
        }
        if hostile {
            try FileManager.default.copyItem(atPath: CLIRunner.fixture("hostile/cases/global-os-system.pth"),
                                             toPath: inputs + "/global-os-system.pth")
        }
        return (inputs, goldens)
    }

    @Test("A directory converts every checkpoint; a hostile one is listed at the end, exit 2, no partial file")
    func convertDirectoryWithHostileFile() throws {
        try Self.withFolder { root in
            let (inputs, _) = try Self.prepare(root, hostile: true)
            let out = root + "/out"
            let r = try CLIRunner.run("convert", inputs, "-o", out)
            #expect(r.status == 2, "\(r.stderr)")
            #expect(Self.contents(out) == Self.stems.map { $0 + ".safetensors" })
            #expect(r.stderr.contains("1 of 4 failed:"))
            #expect(r.stderr.contains("global-os-system.pth"))
            #expect(r.stderr.contains("os.system"))
            for stem in Self.stems { #expect(r.stdout.contains("wrote \(out)/\(stem).safetensors")) }
            // Piped: no progress line.
            #expect(!r.stderr.contains("\r"))
            // Each output is a faithful conversion.
            for stem in Self.stems {
                let file = try SafeTensorsFile(contentsOf: out + "/\(stem).safetensors")
                #expect(file.metadata["format"] == "pt")
                #expect(file.metadata["torchport.arch"] != nil)
            }
        }
    }

    @Test("Many inputs with --golden DIR verify each before keeping it; an input without a golden fails")
    func convertManyWithGoldens() throws {
        try Self.withFolder { root in
            let (inputs, goldens) = try Self.prepare(root, hostile: false)
            let out = root + "/out"
            let files = Self.stems.map { inputs + "/\($0).pth" }
            let ok = try CLIRunner.run(["convert"] + files + ["-o", out, "--golden", goldens, "--jobs", "2", "--json"])
            #expect(ok.status == 0, "\(ok.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as? [String: Any])
            #expect(json["converted"] as? Int == 3)
            let results = try #require(json["results"] as? [[String: Any]])
            #expect(results.count == 3)
            #expect(results.allSatisfy { ($0["verification"] as? [String: Any])?["passed"] as? Bool == true })

            try FileManager.default.removeItem(atPath: goldens + "/tiny-headless.golden.pth")
            let out2 = root + "/out2"
            let missing = try CLIRunner.run("convert", inputs, "-o", out2, "--golden", goldens)
            #expect(missing.status == 2)
            #expect(missing.stderr.contains("1 of 3 failed:"))
            #expect(missing.stderr.contains("tiny-headless.pth: no golden"))
            #expect(Self.contents(out2) == ["tiny-basic-r18ish.safetensors", "tiny-resnext.safetensors"])

            // Existing outputs are refused without --force, like a single conversion.
            let again = try CLIRunner.run("convert", inputs, "-o", out)
            #expect(again.status == 2)
            #expect(again.stderr.contains("3 of 3 failed:"))
            #expect(try CLIRunner.run("convert", inputs, "-o", out, "--force").status == 0)
            #expect(Self.contents(out) == Self.stems.map { $0 + ".safetensors" })
        }
    }

    @Test("With many inputs, convert's -o and --golden must be directories; verify compares every model with one golden file")
    func manyNeedsDirectories() throws {
        try Self.withFolder { root in
            let (inputs, _) = try Self.prepare(root, hostile: false)
            let file = root + "/file.safetensors"
            try Data("x".utf8).write(to: URL(fileURLWithPath: file))
            let badOut = try CLIRunner.run("convert", inputs, "-o", file)
            #expect(badOut.status != 0)
            #expect(badOut.stderr.contains("-o must be a directory"))
            let badGolden = try CLIRunner.run("convert", inputs, "-o", root + "/out", "--golden", Self.model("tiny-resnext.golden.pth"))
            #expect(badGolden.status != 0)
            #expect(badGolden.stderr.contains("--golden must be a directory"))
            #expect(!FileManager.default.fileExists(atPath: root + "/out"))
            // Each input is compared with the one golden: the ResNeXt passes, the others are of
            // other shapes (unusable against it).
            let verify = try CLIRunner.run("verify", inputs, "--golden", Self.model("tiny-resnext.golden.pth"))
            #expect(verify.status == 2)
            #expect(verify.stdout.contains("PASS"))
            #expect(!verify.stderr.contains("--golden must be a directory"))
        }
    }

    @Test("verify many converted outputs against their goldens: exit 0, one PASS line each")
    func verifyManyPasses() throws {
        try Self.withFolder { root in
            let (inputs, goldens) = try Self.prepare(root, hostile: false)
            let out = root + "/out"
            #expect(try CLIRunner.run("convert", inputs, "-o", out).status == 0)
            let r = try CLIRunner.run("verify", out, "--golden", goldens, "--jobs", "2")
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            for stem in Self.stems {
                #expect(r.stdout.split(separator: "\n").contains { $0.hasPrefix("PASS") && $0.contains("\(stem).safetensors") })
            }
            #expect(r.stdout.contains("3 of 3 passed"))
            #expect(!r.stderr.contains("failed"))

            let json = try CLIRunner.run("verify", out, "--golden", goldens, "--json")
            #expect(json.status == 0)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["passed"] as? Int == 3)
            #expect((object["results"] as? [[String: Any]])?.count == 3)
        }
    }

    @Test("A wrong model among many: exit 1 and the summary names it; a missing golden: exit 2")
    func verifyManyMismatch() throws {
        try Self.withFolder { root in
            let (inputs, goldens) = try Self.prepare(root, hostile: false)
            let out = root + "/out"
            #expect(try CLIRunner.run("convert", inputs, "-o", out).status == 0)
            // Perturb one weight of tiny-basic-r18ish and put it in place of its conversion.
            let source = try Checkpoint(contentsOf: Self.model("tiny-basic-r18ish.pth"))
            let entries = source.tensors.filter { !$0.name.hasSuffix("num_batches_tracked") }.map { t -> SafeTensorsWriter.Entry in
                var bytes = t.tensor.contiguousBytes()
                if t.name == "layer3.1.conv2.weight" {
                    bytes.withUnsafeMutableBytes { raw in raw.bindMemory(to: Float.self)[5] += 0.01 }
                }
                return SafeTensorsWriter.Entry(name: t.name, dtype: t.tensor.dtype, shape: t.tensor.shape, bytes: bytes)
            }
            let perturbed = out + "/tiny-basic-r18ish.safetensors"
            try FileManager.default.removeItem(atPath: perturbed)
            try SafeTensorsWriter.write(entries, to: perturbed)

            let r = try CLIRunner.run("verify", out, "--golden", goldens)
            #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
            #expect(r.stderr.contains("1 of 3 failed:"))
            #expect(r.stderr.contains("tiny-basic-r18ish.safetensors: numerical mismatch"))
            #expect(r.stdout.split(separator: "\n").contains { $0.hasPrefix("FAIL") && $0.contains("tiny-basic-r18ish") })

            // A model without a golden is unusable: exit 2 wins over the mismatch.
            try FileManager.default.removeItem(atPath: goldens + "/tiny-resnext.golden.pth")
            let missing = try CLIRunner.run("verify", out, "--golden", goldens)
            #expect(missing.status == 2)
            #expect(missing.stderr.contains("2 of 3 failed:"))
            #expect(missing.stderr.contains("no golden"))
        }
    }
}
