import Foundation
import Testing
@testable import TorchCheckpoint
import TorchportCore

/// `PickleScanner`, the static scanner behind `torchport scan`, checked against the reader on the
/// whole hostile corpus and the fixtures, and on hand-made pickles.
@Suite("Pickle scanner")
struct ScannerTests {
    static func fixtures(_ folder: String, _ suffixes: [String]) -> [String] {
        let dir = FixturePaths.fixtures.appendingPathComponent(folder)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { n in suffixes.contains { n.hasSuffix($0) } && !n.hasSuffix(".expected.json") }
            .sorted().map { dir.appendingPathComponent($0).path }
    }

    static let goodFiles = fixtures("checkpoints", [".pth", ".pt"]) + fixtures("models", [".pth"])
        + fixtures("pickles", [".pkl"])

    static func pickle(_ body: [UInt8]) -> [UInt8] { [0x80, 0x02] + body + [0x2E] }

    @Test("The parameterised scanner tests have cases: fixtures found, corpus cases on both sides of the verdict filter")
    func casesPresent() {
        #expect(Self.goodFiles.count >= 40)
        #expect(HostileCorpus.cases.filter { $0.scan == nil }.count >= 200)
        #expect(HostileCorpus.cases.filter { $0.scan != nil }.count >= 20)
    }

    @Test("Every fixture is safe but TorchScript (torch.jit.load runs its code): its globals are all interpreted or inert",
          arguments: goodFiles)
    func fixturesAreSafe(_ path: String) {
        let r = PickleScanner.scan(path: path)
        let want: PickleScanReport.Verdict = r.format == .torchScript ? .dangerous : .safe
        #expect(r.verdict == want, "\(r.globals.filter(\.dangerous).map(\.qualifiedName)) \(r.error ?? "")")
        #expect(r.risks.map(\.kind) == (r.format == .torchScript ? [.torchScriptCode] : []))
        #expect(!r.globals.isEmpty || path.hasSuffix(".pkl"))
        #expect(r.globals.allSatisfy { $0.classification != .refused })
    }

    @Test("Where the corpus names a verdict (what torch.load would do), the scan gives it",
          arguments: HostileCorpus.cases.filter { $0.scan != nil })
    func expectedVerdict(_ c: HostileCase) throws {
        let report = PickleScanner.scan(path: HostileCorpus.path(of: c))
        let want = try #require(PickleScanReport.Verdict(rawValue: c.scan ?? ""), "\(c.name): unknown verdict \(c.scan ?? "")")
        #expect(report.verdict == want, "\(c.name) (\(c.description)): \(report.verdict), \(report.dangerousGlobals.map(\.qualifiedName)) \(report.risks.map(\.kind)) \(report.ambiguities) \(report.error ?? "")")
    }

    @Test("The red team's cases are all in the corpus, each with the verdict torch.load calls for")
    func redTeamCoverage() {
        let red = HostileCorpus.cases.filter { $0.class == 11 }
        #expect(red.count >= 15)
        #expect(red.allSatisfy { $0.scan != nil })
        #expect(red.filter { $0.scan == "dangerous" }.count >= 12)
    }

    @Test("The scanner agrees with the reader on every hostile case", .timeLimit(.minutes(2)),
          arguments: HostileCorpus.cases.filter { $0.scan == nil })
    func agreesWithReader(_ c: HostileCase) {
        let path = HostileCorpus.path(of: c)
        let report = PickleScanner.scan(path: path)
        let outcome: Result<Void, CheckpointError>
        do {
            _ = try Checkpoint(contentsOf: path)
            outcome = .success(())
        } catch let e as CheckpointError {
            outcome = .failure(e)
        } catch {
            Issue.record("untyped \(error)")
            return
        }
        switch outcome {
        case .success:
            // Everything the reader loads uses allowlisted globals only.
            #expect(report.verdict == .safe, "\(c.name) loads, but scans as \(report.verdict): \(report.dangerousGlobals.map(\.qualifiedName))")
        case .failure(let e):
            if case .disallowedGlobal(let module, let name) = e.kind {
                #expect(report.verdict == .dangerous, "\(c.name): the reader refused \(module).\(name); scan says \(report.verdict)")
                #expect(report.dangerousGlobals.contains { $0.module == module && $0.name == name },
                        "\(c.name): \(module).\(name) not among \(report.dangerousGlobals.map(\.qualifiedName))")
            }
            let refusedAsCode: Bool = switch e.kind {
            case .extensionRegistry: true
            case .invalidGlobal: c.class == 1
            default: false
            }
            if refusedAsCode {
                #expect(report.verdict == .dangerous, "\(c.name): \(e.code); scan says \(report.verdict)")
            }
        }
        if c.class == 1 {
            #expect(report.verdict == .dangerous, "class 1 case \(c.name) scans as \(report.verdict)")
        }
    }

    @Test("Globals after a refused one are still listed, including STACK_GLOBAL names from the memo")
    func continuesAfterRefusal() {
        var body: [UInt8] = Array("cos\nsystem\n".utf8) + [0x30]  // GLOBAL os.system, POP
        body += Craft.str("subprocess") + [0x71, 0] + [0x30] + Craft.str("Popen") + [0x71, 1] + [0x30]
        body += [0x68, 0, 0x68, 1, 0x93, 0x30]  // BINGET 0, BINGET 1, STACK_GLOBAL, POP
        body += Array("cbuiltins\neval\n".utf8)
        let r = PickleScanner.scan(bytes: Self.pickle(body), name: "t")
        #expect(r.verdict == .dangerous)
        #expect(r.globals.map(\.qualifiedName) == ["os.system", "subprocess.Popen", "builtins.eval"])
        #expect(r.globals.map(\.opcode) == ["GLOBAL", "STACK_GLOBAL", "GLOBAL"])
        #expect(r.globals.allSatisfy { $0.risk == .executesCode })
        #expect(r.globals.map(\.offset) == [2, 43, 45])
    }

    @Test("MEMOIZE indices count every memo entry, as Python's do")
    func memoizeIndices() {
        // 'torch' MEMOIZE(0), None MEMOIZE(1), 'FloatStorage' MEMOIZE(2); GET 0, GET 2, STACK_GLOBAL.
        var body = Craft.str("torch") + [0x94, 0x30, 0x4E, 0x94, 0x30] + Craft.str("FloatStorage") + [0x94, 0x30]
        body += [0x68, 0, 0x68, 2, 0x93]
        let r = PickleScanner.scan(bytes: Self.pickle(body), name: "t")
        #expect(r.globals.map(\.qualifiedName) == ["torch.FloatStorage"])
        #expect(r.verdict == .safe)
    }

    @Test("Past the memo limit nothing from the memo is trusted: the reference is unresolved")
    func memoOverflowIsUnresolved() {
        var limits = ReaderLimits()
        limits.maxMemoEntries = 2
        var body = Craft.str("torch") + [0x71, 0, 0x30] + Craft.str("FloatStorage") + [0x71, 1, 0x30]
        body += [0x4E, 0x71, 2, 0x30]  // a third entry: over the limit
        body += [0x68, 0, 0x68, 1, 0x93]
        let r = PickleScanner.scan(bytes: Self.pickle(body), name: "t", limits: limits)
        #expect(r.globals.map(\.risk) == [.unresolved])
        #expect(r.verdict == .dangerous)
    }

    @Test("STACK_GLOBAL on values that are not strings is unresolved, hence dangerous")
    func nonStringStackGlobal() {
        let r = PickleScanner.scan(bytes: Self.pickle([0x4B, 1, 0x4B, 2, 0x93]), name: "t")
        #expect(r.globals.first?.risk == .unresolved)
        #expect(r.verdict == .dangerous)
    }

    @Test("Dotted names, Python 2 builtins and allowlisted look-alikes are classified by the allowlist")
    func classification() {
        #expect(PickleScanner.classify(module: "builtins", name: "eval.__call__") == (.refused, .executesCode))
        #expect(PickleScanner.classify(module: "__builtin__", name: "eval") == (.refused, .executesCode))
        #expect(PickleScanner.classify(module: "bdb", name: "Bdb.run") == (.refused, .executesCode))
        #expect(PickleScanner.classify(module: "torch", name: "load") == (.refused, .executesCode))
        #expect(PickleScanner.classify(module: "os.path", name: "join") == (.refused, .executesCode))
        #expect(PickleScanner.classify(module: "mymodel", name: "Net") == (.refused, .unknownImport))
        #expect(PickleScanner.classify(module: "torch._utils", name: "_rebuild_tensor_v2") == (.interpreted, .none))
        #expect(PickleScanner.classify(module: "argparse", name: "Namespace") == (.inert, .none))
        #expect(PickleScanner.classify(module: "__torch__.models", name: "Net") == (.inert, .none))
        #expect(PickleScanner.classify(module: "__torch__.models", name: "Net", inTorchScript: false) == (.refused, .unknownImport))
        #expect(PickleScanner.classify(module: "__torch__.models", name: "Net;x") == (.refused, .unknownImport))
        #expect(PickleScanner.classify(module: "collections", name: "OrderedDict\n") == (.refused, .unknownImport))
    }

    @Test("TorchScript archives: dangerous (torch.load hands them to torch.jit.load), code/ listed, globals inert")
    func torchScript() {
        let r = PickleScanner.scan(path: FixturePaths.checkpoint("torchscript-tiny.pt"))
        #expect(r.format == .torchScript)
        #expect(r.verdict == .dangerous)
        #expect(r.dangerousGlobals.isEmpty)
        #expect(r.risks.count == 1 && r.risks.first?.kind == .torchScriptCode && r.risks.first?.entry.hasSuffix("/constants.pkl") == true)
        #expect(!r.torchScriptCode.isEmpty && r.torchScriptCode.allSatisfy { $0.contains("/code/") })
        #expect(r.pickles.contains { $0.entry.hasSuffix("/data.pkl") } && r.pickles.contains { $0.entry.hasSuffix("/constants.pkl") })
        #expect(r.globals.contains { $0.module.hasPrefix("__torch__") && $0.classification == .inert })
    }

    @Test("Legacy streams: every section is scanned, and findings name it")
    func legacy() {
        let good = PickleScanner.scan(path: FixturePaths.checkpoint("protocol1-legacy.pth"))
        #expect(good.format == .legacy && good.verdict == .safe)
        #expect(good.pickles.map(\.entry) == ["pickle:magic", "pickle:protocol", "pickle:sys_info", "pickle:main", "pickle:keys"])
        let evil = PickleScanner.scan(path: HostileCorpus.directory.appendingPathComponent("cases/legacy-evil-key-list.pth").path)
        #expect(evil.verdict == .dangerous)
        #expect(evil.dangerousGlobals.map(\.entry) == ["pickle:keys"])
    }

    @Test("A pickle after STOP is scanned and marked; torch.load would not read it")
    func afterStop() {
        let r = PickleScanner.scan(path: HostileCorpus.directory.appendingPathComponent("cases/trailing-second-pickle.pth").path)
        #expect(r.verdict == .dangerous)
        #expect(r.dangerousGlobals.allSatisfy { $0.afterStop })
    }

    @Test("A damaged central directory: stored pickles are still found through the local headers")
    func localHeaderFallback() {
        let dup = PickleScanner.scan(path: HostileCorpus.directory.appendingPathComponent("cases/zip-duplicate-data-pkl.pth").path)
        #expect(dup.verdict == .dangerous)
        #expect(dup.dangerousGlobals.map(\.qualifiedName) == ["os.system"])
        #expect(dup.error != nil)
        let cut = PickleScanner.scan(path: HostileCorpus.directory.appendingPathComponent("cases/zip-truncated-half.pth").path)
        #expect(cut.verdict == .unreadable)
    }

    @Test("Files that are not pickles: unreadable, or safe for safetensors")
    func notPickles() {
        for name in ["unrecognized-random.pth", "unrecognized-empty.pth", "unrecognized-git-lfs-pointer.pth"] {
            let r = PickleScanner.scan(path: HostileCorpus.directory.appendingPathComponent("cases/\(name)").path)
            #expect(r.verdict == .unreadable, "\(name): \(r.verdict)")
        }
        let st = PickleScanner.scan(path: HostileCorpus.directory.appendingPathComponent("cases/unrecognized-safetensors.pth").path)
        #expect(st.format == .safetensors && st.verdict == .safe)
        let missing = PickleScanner.scan(path: "/nonexistent/file.pth")
        #expect(missing.verdict == .unreadable)
    }

    @Test("The scanner is bounded: a huge stack or op count ends with a typed note, not a crash")
    func bounded() {
        var limits = ReaderLimits()
        limits.maxStackSize = 100
        limits.maxOps = 1000
        let deep = PickleScanner.scan(bytes: Self.pickle([UInt8](repeating: 0x4E, count: 500)), name: "t", limits: limits)
        #expect(deep.verdict == .unreadable && deep.error?.contains("stack limit") == true)
        let long = PickleScanner.scan(bytes: Self.pickle([UInt8](repeating: 0x28, count: 5000)), name: "t",
                                      limits: { var l = ReaderLimits(); l.maxOps = 1000; return l }())
        #expect(long.verdict == .unreadable && long.error?.contains("ops limit") == true)
    }

    // MARK: - Torch's own reading, case by case

    @Test("INT and LONG text as CPython reads it: prefixes, underscores, signs, a trailing L, booleans")
    func pythonIntegers() {
        func int(_ text: String) -> PythonInt? { Array(text.utf8).withUnsafeBytes { PythonInt.fromINT($0) } }
        func long(_ text: String) -> PythonInt? { Array(text.utf8).withUnsafeBytes { PythonInt.fromLONG($0) } }
        let magic = PythonInt.legacyMagic
        #expect(int("119547037146038801333356") == magic)
        #expect(int("0x1950a86a20f9469cfc6c") == magic)
        #expect(int("0X1950A86A20F9469CFC6C") == magic)
        #expect(int(" +0o31241241521017450647176154\t") == magic)
        #expect(long("119_547_037_146_038_801_333_356L") == magic)
        #expect(long("0b_1_1001_0101_0000_1010_1000_0110_1010_0010_0000_1111_1001_0100_0110_1001_1100_1111_1100_0110_1100") == magic)
        #expect(long("-0x1950a86a20f9469cfc6c") == PythonInt(negative: true, magnitude: magic.magnitude))
        #expect(int("0777") == PythonInt(511))          // C strtol: octal, and it fits a long
        #expect(long("0777") == nil)                     // Python's int(s, 0) refuses leading zeros
        #expect(long("0_0") == PythonInt(0))
        #expect(long("1__0") == nil && long("_1") == nil && long("1_") == nil && long("0x") == nil)
        #expect(int("00") == nil && int("01") == nil)   // booleans
        #expect(int("12\u{0}junk") == PythonInt(12))   // a C string ends at NUL
        let fromBytes: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]
        #expect(fromBytes.withUnsafeBytes { PythonInt(twosComplement: $0) } == magic)
        #expect([UInt8(0xFF)].withUnsafeBytes { PythonInt(twosComplement: $0) } == PythonInt(-1))
    }

    @Test("A V7 tar header is a tar to Python when its checksum is right; a flipped byte makes it a pickle again")
    func tarHeaders() throws {
        let path = HostileCorpus.directory.appendingPathComponent("cases/redteam-v7-tar.pth").path
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(bytes[257..<262].elementsEqual("ustar".utf8) == false)
        #expect(bytes.withUnsafeBytes { TarHeader.pythonAccepts($0) })
        let r = PickleScanner.scan(bytes: bytes, name: "v7")
        #expect(r.format == .tar && r.verdict == .dangerous)
        #expect(r.dangerousGlobals.contains { $0.qualifiedName == "os.system" && $0.entry == "tar:storages" })
        bytes[300] ^= 1
        #expect(bytes.withUnsafeBytes { TarHeader.pythonAccepts($0) } == false)
    }

    @Test("Case twins: every variant is scanned; twins with nothing dangerous are ambiguous, not safe")
    func caseTwins() {
        let pkl = PickleScanner.scan(path: HostileCorpus.directory.appendingPathComponent("cases/redteam-case-twin-pkl.pth").path)
        #expect(pkl.dangerousGlobals.map(\.entry) == ["archive/DATA.PKL"])
        let storage = PickleScanner.scan(path: HostileCorpus.directory.appendingPathComponent("cases/redteam-case-twin-storage.pth").path)
        #expect(storage.verdict == .ambiguous)
        #expect(storage.ambiguities.count == 1 && storage.ambiguities[0].contains("'archive/DATA/0' and 'archive/data/0'"))
    }

    @Test("A frame past the magic pickle's STOP: both places the next pickle may start are scanned")
    func framesAcrossStop() {
        let r = PickleScanner.scan(path: HostileCorpus.directory.appendingPathComponent("cases/redteam-legacy-big-frame.pth").path)
        #expect(r.format == .legacy && r.verdict == .dangerous)
        #expect(r.dangerousGlobals.allSatisfy { $0.entry.hasPrefix("pickle:main (at ") })
        #expect(r.pickles.filter { $0.entry.hasPrefix("pickle:main") }.count == 2)
        #expect(!r.ambiguities.isEmpty)
    }

    @Test("BUILD on a class itself is a risk; BUILD on an instance is not")
    func buildOnClass() {
        // GLOBAL argparse.Namespace, (None, {}) , BUILD
        let onClass: [UInt8] = Array("cargparse\nNamespace\n".utf8) + [0x4E, 0x7D, 0x86, 0x62]
        let r = PickleScanner.scan(bytes: Self.pickle(onClass), name: "t")
        #expect(r.verdict == .dangerous && r.risks.map(\.kind) == [.classAttributeWrite] && r.risks.first?.offset == 2 + 20 + 3)
        // NEWOBJ makes an instance first: argparse.Namespace.__new__(Namespace), then BUILD.
        let onInstance: [UInt8] = Array("cargparse\nNamespace\n".utf8) + [0x29, 0x81, 0x7D, 0x62]
        let i = PickleScanner.scan(bytes: Self.pickle(onInstance), name: "t")
        #expect(i.verdict == .safe && i.risks.isEmpty)
    }

    @Test("__torch__ globals are inert only inside TorchScript archives")
    func torchModuleOutsideTorchScript() {
        let r = PickleScanner.scan(path: HostileCorpus.directory.appendingPathComponent("cases/redteam-torch-module-plain-zip.pth").path)
        #expect(r.dangerousGlobals.map(\.qualifiedName) == ["__torch__.Payload"])
        #expect(r.dangerousGlobals.first?.risk == .unknownImport)
        let bare = PickleScanner.scan(bytes: Self.pickle(Array("c__torch__\nX\n".utf8) + [0x30]), name: "t")
        #expect(bare.verdict == .dangerous)
    }
}
