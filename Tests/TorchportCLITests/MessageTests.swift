import Foundation
import Testing
import Torchport
import TorchportCore

/// What a user reads when something is wrong: the file named once, the option named, the value
/// shown.
@Suite("Error messages")
struct MessageTests {
    static let model = CLIRunner.fixture("models/tiny-basic-r18ish.pth")
    static let golden = CLIRunner.fixture("models/tiny-basic-r18ish.golden.pth")

    @Test("A missing golden is named once; a missing labels file is named")
    func filesNamed() throws {
        let g = try CLIRunner.run("verify", Self.model, "--golden", "missing.golden.pth")
        #expect(g.status == 2)
        #expect(g.stderr == "error: unreadable golden file: I/O error: cannot open: No such file or directory [missing.golden.pth]\n")
        let l = try CLIRunner.run("classify", Self.model, CLIRunner.fixture("images/chelsea.png"), "--labels", "missing.txt")
        #expect(l.status == 2)
        #expect(l.stderr.contains("missing.txt: no such file (labels file)"), "\(l.stderr)")
    }

    @Test("A negative tolerance is read as a value and refused as one; each count option is named alone")
    func optionValues() throws {
        let r = try CLIRunner.run("verify", Self.model, "--golden", Self.golden, "--rtol", "-1")
        #expect(r.status == 64)
        #expect(r.stderr.contains("rtol must be a finite number >= 0, got -1.0"), "\(r.stderr)")
        let t = try CLIRunner.run("convert", Self.model, "-o", "/nonexistent/x.safetensors", "--threads", "0")
        #expect(t.status == 64)
        #expect(t.stderr.contains("--threads must be at least 1, got 0"))
        #expect(!t.stderr.contains("--jobs"))
    }

    @Test("--save-logits is checked before the model runs: a missing folder, or an existing file without --force")
    func saveLogitsChecked() throws {
        try ConvertCommandTests.withFolder { folder in
            let r = try CLIRunner.run("verify", Self.model, "--golden", Self.golden, "--save-logits", folder + "/nodir/x.safetensors")
            #expect(r.status == 64)
            #expect(r.stderr.contains("--save-logits: cannot write in '\(folder)/nodir'"), "\(r.stderr)")
            #expect(!r.stdout.contains("PASS"))
            let existing = folder + "/x.safetensors"
            #expect(FileManager.default.createFile(atPath: existing, contents: Data("keep".utf8)))
            let e = try CLIRunner.run("verify", Self.model, "--golden", Self.golden, "--save-logits", existing)
            #expect(e.status == 64)
            #expect(e.stderr.contains("exists (use --force to replace it)"))
            #expect(try String(contentsOfFile: existing, encoding: .utf8) == "keep")
            let f = try CLIRunner.run("verify", Self.model, "--golden", Self.golden, "--save-logits", existing, "--force")
            #expect(f.status == 0, "\(f.stderr)")
            #expect(try SafeTensorsFile(contentsOf: existing).tensor(named: "logits") != nil)
        }
    }

    @Test("--arch that does not fit: one summary line with what the file looks like; --verbose lists every key")
    func archMismatch() throws {
        let r = try CLIRunner.run("verify", Self.model, "--golden", Self.golden, "--arch", "resnet50")
        #expect(r.status == 2)
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(r.stderr.contains("does not match --arch resnet50: 165 missing, 0 unexpected, 101 with the wrong shape"))
        #expect(r.stderr.contains("the state dict looks like resnet(basic, layers [2, 2, 2, 2]"))
        let v = try CLIRunner.run("verify", Self.model, "--golden", Self.golden, "--arch", "resnet50", "--verbose")
        #expect(v.status == 2)
        #expect(v.stderr.split(separator: "\n").count == 1 + 1 + 165 + 101)
    }

    @Test("With --json, a failure is one JSON document on stdout: code, message, file")
    func jsonFailures() throws {
        try ConvertCommandTests.withFolder { folder in
            let empty = folder + "/empty.pth"
            #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
            for args in [["inspect", empty, "--json"], ["convert", empty, "-o", folder + "/x.safetensors", "--json"],
                         ["classify", empty, CLIRunner.fixture("images/chelsea.png"), "--json"],
                         ["verify", empty, "--golden", Self.golden, "--json"], ["bench", empty, "--json", "--runs", "1"]] {
                let r = try CLIRunner.run(args)
                #expect(r.status == 2, "\(args[0])")
                let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
                let error = doc?["error"] as? [String: Any]
                #expect(error?["code"] as? String == "unrecognizedFormat", "\(args[0]): \(r.stdout)")
                #expect(error?["file"] as? String == empty, "\(args[0])")
                #expect((error?["message"] as? String)?.contains("an empty file") == true, "\(args[0])")
            }
            let arch = try CLIRunner.run("verify", Self.model, "--golden", Self.golden, "--arch", "resnet50", "--json")
            let doc = try JSONSerialization.jsonObject(with: Data(arch.stdout.utf8)) as? [String: Any]
            #expect((doc?["error"] as? [String: Any])?["code"] as? String == "forcedArchitecture")
            #expect((doc?["error"] as? [String: Any])?["file"] as? String == Self.model)
        }
    }

    @Test("Several models against one golden file: each compared with it, one line each")
    func manyModelsOneGolden() throws {
        try ConvertCommandTests.withFolder { folder in
            let converted = folder + "/tiny-basic-r18ish.safetensors"
            #expect(try CLIRunner.run("convert", Self.model, "-o", converted).status == 0)
            let r = try CLIRunner.run("verify", Self.model, converted, "--golden", Self.golden)
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            #expect(r.stdout.split(separator: "\n").filter { $0.contains("PASS") }.count == 2, "\(r.stdout)")
            let other = try CLIRunner.run("verify", Self.model, CLIRunner.fixture("models/tiny-wide.pth"), "--golden", Self.golden)
            #expect(other.status == 2, "\(other.stdout)")  // a model of another head cannot be compared: unusable
        }
    }

    @Test("Float32 rounding passes by the float64 rule on both engines; half-precision weights get torch's tolerances and a note")
    func failInterpreted() throws {
        for engine in ["reference", "packed"] {
            let rounding = try CLIRunner.run("verify", CLIRunner.fixture("models/tiny-half.pth"), "--golden",
                                             CLIRunner.fixture("models/tiny-half.golden.pth"), "--rtol", "1e-9",
                                             "--engine", engine, "--json")
            if engine == "packed" && rounding.status == 2 { continue }  // no AVX-512 here
            #expect(rounding.status == 0, "\(rounding.stdout)")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(rounding.stdout.utf8)) as? [String: Any])
            #expect(doc["decided_by"] as? String == "float64-reference")
            #expect(doc["tolerance_source"] as? String == "given")
            #expect(doc["elements_out_of_tolerance"] as? Int == 20 && doc["elements"] as? Int == 20)
            let f64 = try #require(doc["reference_f64"] as? [String: Any])
            let ratio = try #require(f64["computed_max_rel_error"] as? Double) / #require(f64["pytorch_max_rel_error"] as? Double)
            #expect(ratio <= 4 && ratio > 0.5, "\(engine): \(ratio)")
            // The smallest rtol that would have passed is the worst sample's relative error.
            #expect(doc["smallest_passing_rtol"] as? Double == doc["max_rel_error"] as? Double)
        }
        let text = try CLIRunner.run("verify", CLIRunner.fixture("models/tiny-half.pth"), "--golden",
                                     CLIRunner.fixture("models/tiny-half.golden.pth"), "--rtol", "1e-9")
        #expect(text.stdout.contains("(passed by the float64 rule)") && text.stdout.contains("decided by: the float64 rule"))
        #expect(text.stdout.contains("tolerance: 20 of 20 elements (100.0%) out; would pass with atol >= "))
        let half = try CLIRunner.run("verify", CLIRunner.fixture("models/tiny-half.pth"), "--golden", Self.golden, "--json")
        #expect(half.status == 1)
        let doc = try JSONSerialization.jsonObject(with: Data(half.stdout.utf8)) as? [String: Any]
        #expect((doc?["notes"] as? [String])?.first?.hasPrefix("the checkpoint's weights are float16") == true, "\(half.stdout)")
        #expect(doc?["tolerance_source"] as? String == "float16 weights: torch.testing.assert_close's float16 tolerances")
        #expect(doc?["rtol"] as? Double == 1e-3 && doc?["atol"] as? Double == 1e-5)
        let pass = try CLIRunner.run("verify", Self.model, "--golden", Self.golden)
        #expect(pass.status == 0 && !pass.stdout.contains("note:") && pass.stdout.contains("decided by: the criterion"))
        let median = try CLIRunner.run("verify", Self.model, "--golden", Self.golden, "--check-error-stat", "median", "--json")
        #expect(median.status == 0)
        let m = try JSONSerialization.jsonObject(with: Data(median.stdout.utf8)) as? [String: Any]
        #expect(m?["error_stat"] as? String == "median")
        #expect(try CLIRunner.run("verify", Self.model, "--golden", Self.golden, "--error-quantile", "0.9").status == 64)
        #expect(try CLIRunner.run("verify", Self.model, "--golden", Self.golden, "--check-error-stat", "quantile",
                                  "--error-quantile", "1.5").status == 64)
    }

    @Test("bench's text: memory on every engine, '1 run', a note for half-precision weights")
    func benchText() throws {
        let r = try CLIRunner.run("bench", CLIRunner.fixture("models/tiny-half.pth"), "--runs", "1", "--size", "64")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains(", 1 run, engine "))
        #expect(r.stdout.contains("note: the weights are stored as float16 and run in float32"))
        #expect(r.stdout.contains("memory: peak RSS during the runs"))
    }

    @Test("Golden diagnostics: a model given as the golden, a golden without input, an NHWC input")
    func goldenHints() throws {
        let swapped = try CLIRunner.run("verify", Self.golden, "--golden", Self.model)
        #expect(swapped.status == 2)
        #expect(swapped.stderr.contains("it looks like a golden file (input, logits): the model and the golden swapped?"),
                "\(swapped.stderr)")
        try ConvertCommandTests.withFolder { folder in
            func write(_ name: String, _ tensors: [(String, [Int])]) throws -> String {
                let entries = tensors.map { SafeTensorsWriter.Entry(name: $0.0, dtype: .float32, shape: $0.1,
                                                                      bytes: [UInt8](repeating: 0, count: 4 * $0.1.reduce(1, *))) }
                let path = folder + "/" + name
                try SafeTensorsWriter.write(entries, to: path)
                return path
            }
            let noInput = try write("no-input.safetensors", [("x", [2, 3, 64, 64]), ("logits", [2, 10])])
            let r = try CLIRunner.run("verify", Self.model, "--golden", noInput)
            #expect(r.stderr.contains("golden has no tensor 'input'; it holds 'logits' [2, 10], 'x' [2, 3, 64, 64]")
                    || r.stderr.contains("golden has no tensor 'input'; it holds 'x' [2, 3, 64, 64], 'logits' [2, 10]"), "\(r.stderr)")
            let nhwc = try write("nhwc.safetensors", [("input", [2, 64, 64, 3]), ("logits", [2, 10])])
            let n = try CLIRunner.run("verify", Self.model, "--golden", nhwc)
            #expect(n.stderr.contains("an NHWC input (channels last)? save it as NCHW: x.permute(0, 3, 1, 2)"), "\(n.stderr)")
        }
    }

    @Test("inspect: legacy storages as s0, s1, ...; sizes in units; a parameter count; an object's fields; long names apart")
    func inspectText() throws {
        let legacy = try CLIRunner.run("inspect", CLIRunner.fixture("checkpoints/protocol1-legacy.pth"))
        #expect(legacy.status == 0)
        #expect(legacy.stdout.contains("conv.weight             float32   [4, 3, 3, 3]          s0+0           432 B"))
        #expect(legacy.stdout.contains("total: 9 tensors, 141 elements, 568 B"))
        #expect(legacy.stdout.contains("parameters: 132 (floating-point values, BatchNorm running statistics left out; 132 parameters)"))
        let ns = try CLIRunner.run("inspect", CLIRunner.fixture("hostile/cases/inert-argparse-namespace.pth"))
        #expect(ns.stdout.contains("args: argparse.Namespace(lr=0.1, arch=\"resnet50\", epochs=90)"), "\(ns.stdout)")
        try ConvertCommandTests.withFolder { folder in
            let longName = "backbone." + String(repeating: "very_long_module_name.", count: 4) + "weight"
            let path = folder + "/long.safetensors"
            try SafeTensorsWriter.write([.init(name: longName, dtype: .float32, shape: [2], bytes: [UInt8](repeating: 0, count: 8)),
                                         .init(name: "short", dtype: .float32, shape: [3], bytes: [UInt8](repeating: 0, count: 12))],
                                        to: path)
            let long = try CLIRunner.run("inspect", path)
            let lines = long.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            #expect(lines.contains(longName), "the long name on a line of its own: \(long.stdout)")
            // Every row that holds the columns starts them at the same place.
            let dtypeColumns = Set(lines.filter { $0.contains("float32   [") }.compactMap { $0.range(of: "float32   [")?.lowerBound.utf16Offset(in: $0) })
            #expect(dtypeColumns.count == 1, "\(dtypeColumns)")
        }
    }

    @Test("Help texts: on a very wide terminal no sentence breaks across lines", arguments: ["inspect", "verify", "convert", "bench", "classify", "scan"])
    func helpFlows(_ command: String) throws {
        let process = Process()
        process.executableURL = CLIRunner.executable
        process.arguments = [command, "--help"]
        process.environment = ProcessInfo.processInfo.environment.merging(["COLUMNS": "100000"]) { $1 }
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let usage = lines.firstIndex { $0.hasPrefix("USAGE:") } ?? lines.count
        #expect(usage > 2, "\(command) --help: \(text)")
        for (line, next) in zip(lines[..<usage], lines[..<usage].dropFirst()) where !line.hasPrefix(" ") && !line.isEmpty {
            let ends = line.last.map { ".:;)!?".contains($0) } ?? true
            let continues = next.first.map { $0.isLowercase } ?? false
            #expect(ends || !continues, "\(command) --help breaks a sentence: '\(line)' / '\(next)'")
        }
    }

    @Test("A bare pickle that names a refused global is refused for that global, not called 'not a pickle stream'")
    func barePickleRefused() throws {
        try ConvertCommandTests.withFolder { folder in
            let path = folder + "/evil.pkl"
            let bytes: [UInt8] = [0x80, 0x02] + Array("cposix\nsystem\n".utf8) + [0x58, 2, 0, 0, 0] + Array("id".utf8) + [0x85, 0x52, 0x2E]
            #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            let r = try CLIRunner.run("inspect", path)
            #expect(r.status == 2)
            #expect(r.stderr.hasPrefix("error: refused global 'posix.system'"), "\(r.stderr)")
            #expect(!r.stderr.contains("not a pickle stream"))
        }
    }

    @Test("Command-line mistakes: 'error:' as everywhere else, and the usage; exit 64")
    func usageErrors() throws {
        let r = try CLIRunner.run("verify", Self.model, "--golden", Self.golden, "--no-such-flag")
        #expect(r.status == 64)
        #expect(r.stderr.hasPrefix("error: "), "\(r.stderr)")
        #expect(r.stderr.contains("Usage: torchport verify"))
    }

    @Test("A truncated zip says so")
    func truncatedZip() throws {
        let r = try CLIRunner.run("inspect", CLIRunner.fixture("hostile/cases/zip-truncated-half.pth"))
        #expect(r.status == 2)
        #expect(r.stderr.contains("the file is truncated (an incomplete download?)"), "\(r.stderr)")
    }
}
