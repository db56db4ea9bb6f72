import Foundation
import Testing
import TorchportCore

/// `torchport scan`, run as a user would.
@Suite("torchport scan")
struct ScanCommandTests {
    static func hostile(_ name: String) -> String { CLIRunner.fixture("hostile/cases/\(name)") }

    @Test("A clean checkpoint scans safe (exit 0) and lists only a count of allowlisted globals")
    func safe() throws {
        let r = try CLIRunner.run("scan", CLIRunner.fixture("checkpoints/tiny-resnet-basic.pth"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("SAFE (zip)"))
        #expect(r.stdout.contains("0 refused"))
    }

    @Test("A code-execution global: exit 1, the global named with where it is")
    func dangerous() throws {
        let r = try CLIRunner.run("scan", Self.hostile("global-os-system.pth"))
        #expect(r.status == 1)
        #expect(r.stdout.contains("DANGEROUS"))
        #expect(r.stdout.contains("executes-code  os.system  [archive/data.pkl @"))
    }

    @Test("An unreadable file: exit 2")
    func unreadable() throws {
        let r = try CLIRunner.run("scan", Self.hostile("zip-truncated-half.pth"))
        #expect(r.status == 2)
        #expect(r.stdout.contains("UNREADABLE"))
    }

    @Test("Many files: a summary line; dangerous wins over unreadable in the exit status")
    func many() throws {
        let r = try CLIRunner.run("scan", CLIRunner.fixture("checkpoints/views.pth"), Self.hostile("zip-truncated-half.pth"),
                                  Self.hostile("inst-os-system.pth"))
        #expect(r.status == 1)
        #expect(r.stdout.contains("3 files: 1 safe, 1 dangerous, 0 ambiguous, 1 unreadable"))
        let u = try CLIRunner.run("scan", CLIRunner.fixture("checkpoints/views.pth"), Self.hostile("zip-truncated-half.pth"))
        #expect(u.status == 2)
    }

    @Test("--json: every global with its classification, risk and locations; TorchScript code listed, and its risk")
    func json() throws {
        let r = try CLIRunner.run("scan", "--json", Self.hostile("stack-global-from-memo.pth"),
                                  CLIRunner.fixture("checkpoints/torchscript-tiny.pt"))
        #expect(r.status == 1)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let files = try #require(doc["files"] as? [[String: Any]])
        #expect(files.map { $0["verdict"] as? String } == ["dangerous", "dangerous"])
        let globals = try #require(files[0]["globals"] as? [[String: Any]])
        let evil = try #require(globals.first { $0["dangerous"] as? Bool == true })
        #expect(evil["global"] as? String == "subprocess.check_output")
        #expect(evil["classification"] as? String == "refused")
        #expect(evil["risk"] as? String == "executes-code")
        let at = try #require((evil["locations"] as? [[String: Any]])?.first)
        #expect(at["opcode"] as? String == "STACK_GLOBAL")
        #expect(at["entry"] as? String == "archive/data.pkl")
        #expect(files[1]["format"] as? String == "torchscript")
        #expect(((files[1]["torchscript_code"] as? [String]) ?? []).isEmpty == false)
        let risks = try #require(files[1]["risks"] as? [[String: Any]])
        #expect(risks.map { $0["kind"] as? String } == ["torchscript-code"])
        #expect(((files[1]["globals"] as? [[String: Any]]) ?? []).allSatisfy { $0["dangerous"] as? Bool == false })
        let summary = try #require(doc["summary"] as? [String: Int])
        #expect(summary == ["files": 2, "safe": 0, "dangerous": 2, "ambiguous": 0, "unreadable": 0])
    }

    @Test("Every class-1 hostile case scans dangerous")
    func classOne() throws {
        struct Case: Decodable { let file: String; let `class`: Int }
        let manifest = URL(fileURLWithPath: CLIRunner.fixture("hostile/manifest.json"))
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: manifest)).filter { $0.class == 1 }
        #expect(cases.count >= 3)
        let paths = cases.map { CLIRunner.fixture("hostile/\($0.file)") }
        let process = Process()
        process.executableURL = CLIRunner.executable
        process.arguments = ["scan"] + paths
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(text.contains("\(cases.count) files: 0 safe, \(cases.count) dangerous, 0 ambiguous, 0 unreadable"),
                "\(text.suffix(300))")
    }

    @Test("A global's name with terminal escapes is printed escaped: it cannot redraw the verdict line")
    func escapedNames() throws {
        let r = try CLIRunner.run("scan", Self.hostile("redteam-escape-in-name.pth"))
        #expect(r.status == 1)
        #expect(r.stdout.hasPrefix(Self.hostile("redteam-escape-in-name.pth") + ": DANGEROUS (zip)"))
        #expect(!r.stdout.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
        #expect(r.stdout.contains("os.system\\u{1b}[2K\\u{d}SAFE"))
    }

    @Test("Entries that differ only in case: AMBIGUOUS, exit 1, the twins named; with an evil twin, DANGEROUS")
    func ambiguous() throws {
        let r = try CLIRunner.run("scan", Self.hostile("redteam-case-twin-storage.pth"))
        #expect(r.status == 1)
        #expect(r.stdout.contains("AMBIGUOUS (zip)"))
        #expect(r.stdout.contains("ambiguous: entries 'archive/DATA/0' and 'archive/data/0' differ only in case"))
        let evil = try CLIRunner.run("scan", Self.hostile("redteam-case-twin-pkl.pth"), "--json")
        #expect(evil.status == 1)
        let json = try JSONSerialization.jsonObject(with: Data(evil.stdout.utf8)) as? [String: Any]
        let file = (json?["files"] as? [[String: Any]])?.first
        #expect(file?["verdict"] as? String == "dangerous")
        #expect((file?["ambiguities"] as? [String])?.count == 1)
        #expect((json?["summary"] as? [String: Any])?["ambiguous"] as? Int == 0)
    }

    @Test("A TorchScript archive: DANGEROUS, exit 1 (torch.load runs it through torch.jit.load)")
    func torchScript() throws {
        let r = try CLIRunner.run("scan", CLIRunner.fixture("checkpoints/torchscript-tiny.pt"))
        #expect(r.status == 1)
        #expect(r.stdout.contains("DANGEROUS (torchscript)"))
        #expect(r.stdout.contains("torchscript-code: a TorchScript archive: torch.load hands it to torch.jit.load"))
    }

    @Test("What torch.load would read differently: each red-team file scans as the corpus says, by its exit status")
    func redTeamExitCodes() throws {
        for (file, status) in [("redteam-legacy-magic-hex-int.pth", 1), ("redteam-legacy-big-frame.pth", 1),
                               ("redteam-v7-tar.pth", 1), ("redteam-safetensors-lookalike.pth", 1),
                               ("redteam-namespace-dump-patches.pth", 1), ("redteam-two-eocd.pth", 1),
                               ("redteam-zero-size-groups.pth", 0)] {
            let r = try CLIRunner.run("scan", Self.hostile(file))
            #expect(r.status == Int32(status), "\(file): \(r.stdout)")
        }
    }
}
