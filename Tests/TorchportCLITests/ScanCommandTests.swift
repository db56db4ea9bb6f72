import Foundation
import Testing

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
        #expect(r.stdout.contains("3 files: 1 safe, 1 dangerous, 1 unreadable"))
        let u = try CLIRunner.run("scan", CLIRunner.fixture("checkpoints/views.pth"), Self.hostile("zip-truncated-half.pth"))
        #expect(u.status == 2)
    }

    @Test("--json: every global with its classification, risk and locations; TorchScript code listed")
    func json() throws {
        let r = try CLIRunner.run("scan", "--json", Self.hostile("stack-global-from-memo.pth"),
                                  CLIRunner.fixture("checkpoints/torchscript-tiny.pt"))
        #expect(r.status == 1)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let files = try #require(doc["files"] as? [[String: Any]])
        #expect(files.map { $0["verdict"] as? String } == ["dangerous", "safe"])
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
        let summary = try #require(doc["summary"] as? [String: Int])
        #expect(summary == ["files": 2, "safe": 1, "dangerous": 1, "unreadable": 0])
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
        #expect(text.contains("\(cases.count) files: 0 safe, \(cases.count) dangerous, 0 unreadable"), "\(text.suffix(300))")
    }
}
