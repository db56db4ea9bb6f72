import Foundation
import Testing
import TorchCheckpoint
import TorchportCore

/// One entry of `Fixtures/hostile/manifest.json` (written by `Fixtures/hostile/generate_hostile.py`).
struct HostileCase: Decodable, Sendable, CustomTestStringConvertible {
    /// Path relative to `Fixtures/hostile/`.
    let file: String
    /// The class of `HOSTILE-INPUTS.md` (0: a well-formed baseline).
    let `class`: Int
    let description: String
    /// The expected `CheckpointError.code`; nil: any outcome but a crash, a hang or a foreign error.
    let code: String?
    let entry: String?
    let key: String?
    let opcode: Int?
    /// The error must carry a byte offset.
    let hasOffset: Bool
    /// The error must carry a byte offset or a key.
    let located: Bool
    /// (code nil) The file must load.
    let expectSuccess: Bool
    /// (code nil) On success, the tensor names in order.
    let expectTensors: [String]?
    /// (code nil) On success, the number of tensors.
    let expectTensorCount: Int?
    /// The verdict `torchport scan` must give (what torch.load would do with the bytes); nil: see
    /// the scanner's agreement test.
    let scan: String?

    enum CodingKeys: String, CodingKey {
        case file, `class`, description, code, entry, key, opcode, scan
        case hasOffset = "has_offset", located, expectSuccess = "expect_success"
        case expectTensors = "expect_tensors", expectTensorCount = "expect_tensor_count"
    }

    var name: String { ((file as NSString).lastPathComponent as NSString).deletingPathExtension }
    var testDescription: String { name }
}

enum HostileCorpus {
    /// `Fixtures/hostile/`, found from this file's location (no bundle resources).
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TorchCheckpointTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root
        .appendingPathComponent("Fixtures/hostile")

    static let manifestURL = directory.appendingPathComponent("manifest.json")

    /// The manifest's cases; empty when the manifest is missing or unreadable (a test reports that).
    static let cases: [HostileCase] = (try? loadManifest()) ?? []

    static func loadManifest() throws -> [HostileCase] {
        try JSONDecoder().decode([HostileCase].self, from: Data(contentsOf: manifestURL))
    }

    static func path(of c: HostileCase) -> String { directory.appendingPathComponent(c.file).path }
}

@Suite("Hostile-input corpus")
struct HostileCorpusTests {
    @Test("The manifest decodes, names existing files, and covers every class at least three times")
    func manifestIsComplete() throws {
        let cases = try HostileCorpus.loadManifest()
        #expect(Set(cases.map(\.file)).count == cases.count, "duplicate files in the manifest")
        for c in cases {
            #expect(FileManager.default.fileExists(atPath: HostileCorpus.path(of: c)), "missing \(c.file)")
            if c.code != nil {
                #expect(!c.expectSuccess && c.expectTensors == nil && c.expectTensorCount == nil,
                        "\(c.name): a refused case cannot also expect tensors")
            }
        }
        for cls in 1...11 {
            #expect(cases.filter { $0.class == cls }.count >= 3, "class \(cls) has fewer than three cases")
        }
        #expect(cases.contains { $0.name == "valid-baseline" && $0.expectSuccess })
    }

    @Test("Each hostile input is refused with the expected error, or handled without crashing",
          .timeLimit(.minutes(1)), arguments: HostileCorpus.cases)
    func hostileInput(_ c: HostileCase) {
        let path = HostileCorpus.path(of: c)
        let outcome: Result<[NamedTensor], any Error>
        do {
            // The checkpoint is released inside this scope, so a deep or cyclic graph's teardown
            // is part of the test.
            let checkpoint = try Checkpoint(contentsOf: path, options: ReaderOptions())
            outcome = .success(checkpoint.tensors)
        } catch {
            outcome = .failure(error)
        }

        switch outcome {
        case .success(let tensors):
            let names = tensors.map(\.name)
            if let code = c.code {
                Issue.record("\(c.name) (\(c.description)): expected \(code), but it loaded \(names.count) tensors \(names.prefix(5))")
                return
            }
            if let expected = c.expectTensors {
                #expect(names == expected, "\(c.name): tensor names")
            }
            if let count = c.expectTensorCount {
                #expect(names.count == count, "\(c.name): tensor count, got \(names.prefix(5))")
            }
        case .failure(let error):
            guard let e = error as? CheckpointError else {
                Issue.record("\(c.name) (\(c.description)): threw a non-CheckpointError \(type(of: error)): \(error)")
                return
            }
            #expect(e.file == path, "\(c.name): the error must name the file given: \(e)")
            guard let code = c.code else {
                if c.expectSuccess {
                    Issue.record("\(c.name) (\(c.description)): expected to load, threw \(e.code): \(e)")
                }
                return
            }
            #expect(e.code == code, "\(c.name) (\(c.description)): expected \(code), got \(e.code): \(e)")
            if let entry = c.entry {
                #expect(e.entry == entry, "\(c.name): error entry: \(e)")
            }
            if let key = c.key {
                #expect(e.key == key, "\(c.name): error key: \(e)")
            }
            if let opcode = c.opcode {
                #expect(e.opcode.map(Int.init) == opcode, "\(c.name): error opcode: \(e)")
            }
            if c.hasOffset {
                #expect(e.offset != nil, "\(c.name): the error must carry a byte offset: \(e)")
            }
            if c.located {
                #expect(e.offset != nil || e.key != nil, "\(c.name): the error must carry an offset or a key: \(e)")
            }
        }
    }
}
