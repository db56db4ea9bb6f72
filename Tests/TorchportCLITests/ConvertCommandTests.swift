import Foundation
import Testing
import TorchportCore

/// `torchport convert`, run as a user would: each tiny model converted and verified, refusals,
/// failures that leave nothing behind, casts, metadata, and `inspect` on the result.
@Suite("torchport convert, run as a user would")
struct ConvertCommandTests {
    struct Model: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let checkpoint: String
        let golden: String
        var testDescription: String { name }
    }

    static var models: [Model] {
        let url = URL(fileURLWithPath: CLIRunner.fixture("models/manifest.json"))
        guard let data = try? Data(contentsOf: url) else { return [] }
        return (try? JSONDecoder().decode([Model].self, from: data)) ?? []
    }

    static func model(_ file: String) -> String { CLIRunner.fixture("models/" + file) }

    /// A fresh empty folder, removed afterwards.
    static func withFolder<R>(_ body: (String) throws -> R) throws -> R {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("torchport-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try body(folder)
    }

    static func contents(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }

    static func modified(_ path: String) throws -> Date? {
        try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
    }

    @Test("The model manifest is there: the parameterised conversion below cannot run zero cases")
    func manifestPresent() {
        #expect(Self.models.count >= 10)
    }

    @Test("Each tiny model converts, and the converted file passes verification against its golden",
          arguments: ConvertCommandTests.models)
    func convertAndVerify(_ m: Model) throws {
        try Self.withFolder { folder in
            let out = folder + "/out.safetensors"
            let convert = try CLIRunner.run("convert", Self.model(m.checkpoint), "-o", out)
            #expect(convert.status == 0, "\(convert.stderr)")
            #expect(convert.stdout.contains("wrote \(out)"))
            #expect(convert.stderr.isEmpty, "quiet when piped")
            #expect(Self.contents(folder) == ["out.safetensors"])
            let verify = try CLIRunner.run("verify", out, "--golden", Self.model(m.golden))
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        }
    }

    @Test("--golden verifies the written file before keeping it; a wrong golden leaves nothing")
    func goldenOption() throws {
        try Self.withFolder { folder in
            let ok = try CLIRunner.run("convert", Self.model("tiny-resnext.pth"), "-o", folder + "/ok.safetensors",
                                       "--golden", Self.model("tiny-resnext.golden.pth"))
            #expect(ok.status == 0, "\(ok.stderr)")
            #expect(ok.stdout.contains("PASS"))
            // Another model's golden: a different head (unusable, 2) or different logits (mismatch, 1).
            for golden in ["tiny-wide.golden.pth", "tiny-basic-r18ish.golden.pth"] {
                let bad = try CLIRunner.run("convert", Self.model("tiny-resnext.pth"), "-o", folder + "/bad.safetensors",
                                            "--golden", Self.model(golden))
                #expect(bad.status == 1 || bad.status == 2, "\(golden): \(bad.status)")
                #expect(bad.stderr.contains("error:"))
            }
            #expect(Self.contents(folder) == ["ok.safetensors"])
        }
    }

    @Test("A golden mismatch exits 1 with the report and writes nothing")
    func goldenMismatch() throws {
        try Self.withFolder { folder in
            // tiny-bf16's golden fits tiny-half's architecture and head, but not its (float16) weights.
            let r = try CLIRunner.run("convert", Self.model("tiny-half.pth"), "-o", folder + "/o.safetensors",
                                      "--golden", Self.model("tiny-bf16.golden.pth"), "--json")
            #expect(r.status == 1, "\(r.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            #expect(report?["ok"] as? Bool == false)
            #expect((report?["verification"] as? [String: Any])?["passed"] as? Bool == false)
            #expect(Self.contents(folder).isEmpty)
        }
    }

    @Test("An existing output is refused without --force (exit 2, untouched); --force replaces it")
    func existingOutput() throws {
        try Self.withFolder { folder in
            let out = folder + "/out.safetensors"
            try Data("keep me".utf8).write(to: URL(fileURLWithPath: out))
            let refused = try CLIRunner.run("convert", Self.model("tiny-wide.pth"), "-o", out)
            #expect(refused.status == 2)
            #expect(refused.stderr.contains("exists"))
            #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data("keep me".utf8))
            let forced = try CLIRunner.run("convert", Self.model("tiny-wide.pth"), "-o", out, "--force")
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: out)) != Data("keep me".utf8))
            #expect(Self.contents(folder) == ["out.safetensors"])
        }
    }

    @Test("The input is refused as output even with --force, and is never modified")
    func inputUntouched() throws {
        try Self.withFolder { folder in
            let input = folder + "/model.pth"
            try FileManager.default.copyItem(atPath: Self.model("tiny-bottleneck.pth"), toPath: input)
            let before = try Data(contentsOf: URL(fileURLWithPath: input))
            let mtime = try Self.modified(input)
            let same = try CLIRunner.run("convert", input, "-o", input, "--force")
            #expect(same.status == 2)
            #expect(same.stderr.contains("input"))
            let ok = try CLIRunner.run("convert", input, "-o", folder + "/out.safetensors", "--dtype", "bfloat16")
            #expect(ok.status == 0, "\(ok.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: input)) == before)
            #expect(try Self.modified(input) == mtime)
            #expect(Self.contents(folder) == ["model.pth", "out.safetensors"])
        }
    }

    @Test("A hostile input exits 2 and leaves no file, not even a temporary one, in the output folder")
    func hostileInput() throws {
        try Self.withFolder { folder in
            for hostile in ["global-os-system.pth", "global-subprocess-popen.pth", "cycle-list-self.pth"] {
                let r = try CLIRunner.run("convert", CLIRunner.fixture("hostile/cases/" + hostile), "-o", folder + "/out.safetensors")
                #expect(r.status == 2, "\(hostile)")
                #expect(r.stdout.isEmpty)
            }
            let r = try CLIRunner.run("convert", CLIRunner.fixture("hostile/cases/global-os-system.pth"), "-o",
                                      folder + "/out.safetensors")
            #expect(r.stderr.contains("os.system"))
            // A selection of no tensor, and a missing input.
            #expect(try CLIRunner.run("convert", Self.model("tiny-wide.golden.pth"), "-o", folder + "/out.safetensors",
                                      "--include", "nothing.*").status == 2)
            #expect(try CLIRunner.run("convert", folder + "/missing.pth", "-o", folder + "/out.safetensors").status == 2)
            #expect(Self.contents(folder).isEmpty)
        }
    }

    @Test("--dtype float16 output verifies against the golden within a loose tolerance")
    func float16() throws {
        try Self.withFolder { folder in
            let out = folder + "/half.safetensors"
            let r = try CLIRunner.run("convert", Self.model("tiny-basic-r34ish.pth"), "-o", out, "--dtype", "float16")
            #expect(r.status == 0, "\(r.stderr)")
            let inspect = try CLIRunner.run("inspect", "--json", out)
            let report = try JSONDecoder().decode(InspectJSON.self, from: Data(inspect.stdout.utf8))
            #expect(report.tensors.filter { !$0.name.hasSuffix("num_batches_tracked") }.allSatisfy { $0.dtype == "float16" })
            #expect(report.tensors.filter { $0.name.hasSuffix("num_batches_tracked") }.allSatisfy { $0.dtype == "int64" })
            #expect(report.metadata?["torchport.dtype"] == "float16")
            let loose = try CLIRunner.run("verify", out, "--golden", Self.model("tiny-basic-r34ish.golden.pth"), "--rtol", "1e-2")
            #expect(loose.status == 0, "\(loose.stdout)")
        }
    }

    @Test("Metadata: format, arch, num_classes, source_sha256 (the input's SHA-256), source_format, dtype, version")
    func metadata() throws {
        try Self.withFolder { folder in
            let out = folder + "/o.safetensors"
            let input = Self.model("tiny-wrapped-dp.pth")
            let r = try CLIRunner.run("convert", input, "-o", out, "--json")
            #expect(r.status == 0, "\(r.stderr)")
            let summary = try JSONDecoder().decode(SummaryJSON.self, from: Data(r.stdout.utf8))
            #expect(summary.ok && summary.output == out && summary.tensors > 0 && summary.seconds > 0)
            let inspect = try CLIRunner.run("inspect", "--json", out)
            let report = try JSONDecoder().decode(InspectJSON.self, from: Data(inspect.stdout.utf8))
            let m = try #require(report.metadata)
            #expect(m["format"] == "pt")
            #expect(m["torchport.arch"] == summary.arch)
            #expect(m["torchport.num_classes"] == "4")
            #expect(m["torchport.source_format"] == "zip")
            #expect(m["torchport.dtype"] == "float32")
            #expect(m["torchport.converter_version"] == "0.1.0")
            #expect(m["torchport.mapping"]?.contains("stripped prefix 'module.'") == true)
            #expect(m["torchport.source_sha256"] == summary.source_sha256)
            if let expected = try Self.sha256sum(input) { #expect(m["torchport.source_sha256"] == expected) }
            // State-dict names: no wrapper prefixes; the BatchNorm counters kept (strict loading needs them).
            #expect(report.tensors.contains { $0.name == "layer1.0.conv1.weight" })
            #expect(!report.tensors.contains { $0.name.hasPrefix("module.") || $0.name.hasPrefix("model.") })
            #expect(report.tensors.contains { $0.name == "bn1.num_batches_tracked" })
            #expect(report.tensors.count == summary.tensors)
        }
    }

    @Test("inspect reads a converted file: format, metadata, every tensor, totals and the model section")
    func inspectSafeTensors() throws {
        try Self.withFolder { folder in
            let out = folder + "/o.safetensors"
            #expect(try CLIRunner.run("convert", Self.model("tiny-detection-backbone.pth"), "-o", out).status == 0)
            let r = try CLIRunner.run("inspect", out)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("format:    safetensors"))
            #expect(r.stdout.contains("  format: pt"))
            #expect(r.stdout.contains("  torchport.num_classes: none"))
            #expect(r.stdout.contains("layer4.0.conv1.weight"))
            #expect(r.stdout.contains("total: "))
            #expect(r.stdout.contains("binding:   ok"))
            #expect(r.stdout.contains("headless"))
        }
    }

    /// `sha256sum FILE` when the tool exists (an independent check of `source_sha256`).
    static func sha256sum(_ path: String) throws -> String? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sha256sum") else { return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        p.arguments = [path]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: " ").first.map(String.init)
    }

    struct InspectJSON: Decodable {
        struct T: Decodable { let name: String; let dtype: String; let shape: [Int] }
        let format: String
        let metadata: [String: String]?
        let tensors: [T]
    }

    struct SummaryJSON: Decodable {
        let ok: Bool
        let output: String
        let tensors: Int
        let arch: String
        let source_sha256: String
        let seconds: Double
    }
}

@Suite("torchport convert into a directory")
struct ConvertIntoDirectoryTests {
    @Test("-o an existing directory writes DIR/<stem>.safetensors, as cp would; a second run needs --force")
    func intoDirectory() throws {
        try ConvertCommandTests.withFolder { folder in
            let r = try CLIRunner.run("convert", ConvertCommandTests.model("tiny-basic-r18ish.pth"), "-o", folder)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(ConvertCommandTests.contents(folder) == ["tiny-basic-r18ish.safetensors"])
            #expect(r.stdout.contains("wrote \(folder)/tiny-basic-r18ish.safetensors"))
            let again = try CLIRunner.run("convert", ConvertCommandTests.model("tiny-basic-r18ish.pth"), "-o", folder)
            #expect(again.status == 2)
            #expect(again.stderr.contains("output exists"))
        }
    }
}

@Suite("torchport convert, interrupted")
struct ConvertInterruptTests {
    /// A golden file in safetensors form: `input` [n, 3, size, size] of zeros and `logits` [n, classes].
    static func writeGolden(_ path: String, n: Int, size: Int, classes: Int) throws {
        let inputBytes = n * 3 * size * size * 4
        var header = "{\"input\":{\"dtype\":\"F32\",\"shape\":[\(n),3,\(size),\(size)],\"data_offsets\":[0,\(inputBytes)]},"
            + "\"logits\":{\"dtype\":\"F32\",\"shape\":[\(n),\(classes)],\"data_offsets\":[\(inputBytes),\(inputBytes + n * classes * 4)]}}"
        header += String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        data.append(Data(count: inputBytes + n * classes * 4))
        try data.write(to: URL(fileURLWithPath: path))
    }

    @Test("A signal while the written file is being verified: the process dies of it and nothing is left",
          arguments: [SIGTERM, SIGUSR1, SIGALRM, SIGXFSZ, SIGBUS])
    func terminated(_ sig: Int32) throws {
        try ConvertCommandTests.withFolder { folder in
            let golden = folder + "/golden.safetensors"
            try Self.writeGolden(golden, n: 16, size: 256, classes: 10)
            let process = Process()
            process.executableURL = CLIRunner.executable
            process.arguments = ["convert", ConvertCommandTests.model("tiny-basic-r18ish.pth"), "-o", folder + "/out.safetensors",
                                 "--golden", golden]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait for the staging file: written and being checked, or verified against the golden.
            let deadline = Date().addingTimeInterval(60)
            // (with data in it: the staging file is registered for cleanup by then; a real SIGBUS
            // comes from a read of the input, later still)
            func staged() -> Bool {
                ConvertCommandTests.contents(folder).contains { name in
                    name.contains(".partial-")
                        && ((try? FileManager.default.attributesOfItem(atPath: folder + "/" + name)[.size] as? Int) ?? 0) > 0
                }
            }
            while !staged() && process.isRunning && Date() < deadline {
                usleep(2000)
            }
            let wasRunning = process.isRunning
            kill(process.processIdentifier, sig)
            process.waitUntilExit()
            if wasRunning {
                #expect(process.terminationReason == .uncaughtSignal)
                #expect(process.terminationStatus == sig)
            }
            #expect(ConvertCommandTests.contents(folder) == ["golden.safetensors"])
        }
    }
}
