import Foundation
import TorchportCore

/// Paths of the committed fixtures, found from this file's location (no bundle resources needed).
enum FixturePaths {
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repoRoot.appendingPathComponent("Fixtures")
    static let checkpoints = fixtures.appendingPathComponent("checkpoints")

    static func checkpoint(_ name: String) -> String { checkpoints.appendingPathComponent(name).path }

    /// Names of every `*.expected.json` under `Fixtures/checkpoints`, sorted.
    static var expectationFiles: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints.path)) ?? []
        return names.filter { $0.hasSuffix(".expected.json") }.sorted()
    }
}
