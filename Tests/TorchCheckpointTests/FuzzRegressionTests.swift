import Foundation
import Testing
import TorchCheckpoint
import TorchportCore

/// A file of `Fixtures/fuzz/regressions/<target>/`: an input a fuzz target once crashed, hung or ran
/// out of memory on (or a hand-made input of the same kind), minimised and kept.
struct FuzzRegression: Sendable, CustomTestStringConvertible {
    let target: String
    let path: String

    var testDescription: String { "\(target)/\((path as NSString).lastPathComponent)" }

    static let directory = FixturePaths.fixtures.appendingPathComponent("fuzz/regressions")

    static var all: [FuzzRegression] {
        let fm = FileManager.default
        let targets = ((try? fm.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
        return targets.flatMap { target -> [FuzzRegression] in
            let dir = directory.appendingPathComponent(target)
            let files = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") && $0 != "README.md" }
            return files.sorted().map { FuzzRegression(target: target, path: dir.appendingPathComponent($0).path) }
        }
    }
}

/// Replays every regression file through the entry point of its fuzz target (`FuzzEntryPoints`,
/// what `torchport-fuzz` runs under libFuzzer), without a sanitizer: each must finish, quickly,
/// with a result or a typed error.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    static let inProcess: Set<String> = ["zip", "legacy", "unpickler", "inspect", "scan"]

    @Test("There are in-process regressions to replay (a missing folder would make the replay test run no case)")
    func regressionsPresent() {
        #expect(FuzzRegression.all.filter { Self.inProcess.contains($0.target) }.count >= 4)
    }

    @Test("Every regression folder names a fuzz target")
    func foldersAreTargets() {
        let known = Self.inProcess.union(["safetensors"])
        for r in FuzzRegression.all {
            #expect(known.contains(r.target), "Fixtures/fuzz/regressions/\(r.target) is not a fuzz target")
        }
    }

    @Test("Each regression input ends in a result or a typed error", .timeLimit(.minutes(1)),
          arguments: FuzzRegression.all.filter { inProcess.contains($0.target) })
    func replay(_ r: FuzzRegression) throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: r.path)))
        do {
            switch r.target {
            case "zip": _ = try FuzzEntryPoints.zip(bytes)
            case "legacy": _ = try FuzzEntryPoints.legacy(bytes)
            case "unpickler":
                _ = try? FuzzEntryPoints.unpickler(bytes, allowUnknownGlobals: true)
                _ = try FuzzEntryPoints.unpickler(bytes)
            case "inspect": _ = try FuzzEntryPoints.inspect(bytes)
            case "scan": _ = FuzzEntryPoints.scan(bytes)
            default: Issue.record("unknown target \(r.target)")
            }
        } catch is CheckpointError {
            // A typed refusal is a correct outcome.
        }
    }

    /// The safetensors target lives in the SafeTensors module, which this test target does not
    /// link: its regressions go through the built replay tool, `torchport-fuzz safetensors FILE...`.
    @Test("Safetensors regressions replay through torchport-fuzz", .timeLimit(.minutes(1)))
    func replaySafeTensors() throws {
        let files = FuzzRegression.all.filter { $0.target == "safetensors" }.map(\.path)
        guard !files.isEmpty else { return }
        var dir = Bundle.main.bundleURL
        if dir.pathExtension == "xctest" { dir = dir.deletingLastPathComponent() }
        let tool = dir.appendingPathComponent("torchport-fuzz")
        guard FileManager.default.isExecutableFile(atPath: tool.path) else {
            Issue.record("torchport-fuzz is not built next to the tests (\(tool.path)): run swift build --build-tests")
            return
        }
        let process = Process()
        process.executableURL = tool
        process.arguments = ["safetensors"] + files
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "torchport-fuzz safetensors: \(output)")
        #expect(output.split(separator: "\n").count == files.count, "\(output)")
    }
}
