import Foundation
import Testing
import TorchportCore

/// Class 11 of the hostile inputs (`HOSTILE-INPUTS.md`): a failed `convert` leaves nothing behind,
/// an existing output is only replaced with --force, and the input is never modified.
@Suite("Output safety of convert")
struct OutputSafetyTests {
    static let hostile = CLIRunner.repoRoot.appendingPathComponent("Fixtures/hostile")

    /// Hostile cases the reader refuses (`code` set in the manifest), by file name.
    static let refusedCases: [String] = {
        struct Case: Decodable { let file: String; let code: String? }
        guard let data = try? Data(contentsOf: hostile.appendingPathComponent("manifest.json")),
              let cases = try? JSONDecoder().decode([Case].self, from: data) else { return [] }
        // A safetensors file named .pth is refused by the checkpoint reader, but `convert` reads
        // safetensors by content: it converts.
        return cases.filter { $0.code != nil }.map { ($0.file as NSString).lastPathComponent }
            .filter { $0 != "unrecognized-safetensors.pth" }.sorted()
    }()

    static func run(_ arguments: [String]) throws -> CLIRunner.Result { try CLIRunner.run(arguments) }

    /// A fresh empty folder for outputs.
    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("torchport-output-safety-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Contents and modification time: what "the input was not modified" means here.
    static func fingerprint(_ path: String) throws -> (Data, Date) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (data, attributes[.modificationDate] as? Date ?? .distantPast)
    }

    static func contents(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    @Test("The corpus has refused cases to convert")
    func corpusPresent() {
        #expect(Self.refusedCases.count >= 30)
    }

    @Test("Converting any refused hostile input exits 2 and leaves no file, temporary or final",
          .timeLimit(.minutes(10)))
    func refusedInputsLeaveNothing() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in Self.refusedCases {
            let input = Self.hostile.appendingPathComponent("cases/\(name)").path
            let before = try Self.fingerprint(input)
            let out = dir.appendingPathComponent("out.safetensors").path
            let r = try Self.run(["convert", input, "-o", out])
            #expect(r.status == 2, "\(name): exit \(r.status): \(r.stderr)")
            #expect(Self.contents(dir).isEmpty, "\(name) left \(Self.contents(dir))")
            let after = try Self.fingerprint(input)
            #expect(before.0 == after.0 && before.1 == after.1, "\(name): the input changed")
        }
    }

    @Test("A failed convert leaves an existing output untouched, with or without --force")
    func failureKeepsExistingOutput() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("model.safetensors").path
        let original = Data("previous output, not a safetensors file".utf8)
        for (name, force) in [("global-os-system.pth", false), ("global-os-system.pth", true),
                              ("zip-truncated-half.pth", true), ("tensor-storage-short.pth", true)] {
            try original.write(to: URL(fileURLWithPath: out))
            let input = Self.hostile.appendingPathComponent("cases/\(name)").path
            let r = try Self.run(["convert", input, "-o", out] + (force ? ["--force"] : []))
            #expect(r.status == 2, "\(name) force=\(force): exit \(r.status): \(r.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == original, "\(name) force=\(force): output replaced")
            #expect(Self.contents(dir) == ["model.safetensors"], "\(name) force=\(force): left \(Self.contents(dir))")
        }
    }

    @Test("An existing output is not overwritten without --force; with --force it is replaced")
    func existingOutputNeedsForce() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = CLIRunner.fixture("models/tiny-basic-r18ish.pth")
        let out = dir.appendingPathComponent("model.safetensors").path
        let original = Data("keep me".utf8)
        try original.write(to: URL(fileURLWithPath: out))
        let before = try Self.fingerprint(input)

        let refused = try Self.run(["convert", input, "-o", out])
        #expect(refused.status == 2, "exit \(refused.status): \(refused.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == original)
        #expect(Self.contents(dir) == ["model.safetensors"])

        let forced = try Self.run(["convert", input, "-o", out, "--force"])
        #expect(forced.status == 0, "exit \(forced.status): \(forced.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) != original)
        #expect(Self.contents(dir) == ["model.safetensors"], "left \(Self.contents(dir))")
        let after = try Self.fingerprint(input)
        #expect(before.0 == after.0 && before.1 == after.1, "the input changed")
    }

    @Test("The input is never the output, even with --force")
    func inputIsNeverOverwritten() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("model.pth")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: CLIRunner.fixture("models/tiny-basic-r18ish.pth")), to: copy)
        let before = try Self.fingerprint(copy.path)
        for extra in [[], ["--force"]] {
            let r = try Self.run(["convert", copy.path, "-o", copy.path] + extra)
            #expect(r.status == 2, "\(extra): exit \(r.status): \(r.stderr)")
            let after = try Self.fingerprint(copy.path)
            #expect(before.0 == after.0 && before.1 == after.1, "\(extra): the input changed")
            #expect(Self.contents(dir) == ["model.pth"], "\(extra): left \(Self.contents(dir))")
        }
    }

    @Test("A convert whose golden check fails exits 1 and leaves nothing")
    func failedCheckLeavesNothing() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("model.safetensors").path
        // A golden written for a different model: the written file does not reproduce it.
        let r = try Self.run(["convert", CLIRunner.fixture("models/tiny-basic-r18ish.pth"), "-o", out,
                              "--golden", CLIRunner.fixture("models/tiny-half.golden.pth")])
        #expect(r.status == 1, "a mismatching golden must fail with 1: \(r.status) \(r.stderr)")
        #expect(Self.contents(dir).isEmpty, "left \(Self.contents(dir))")
    }
}
