import Foundation
import TorchportCore

/// Paths of the committed fixtures, found from this file's location (no bundle resources needed).
enum FixturePaths {
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = repoRoot.appendingPathComponent("Fixtures")

    static func checkpoint(_ name: String) -> String {
        fixtures.appendingPathComponent("checkpoints").appendingPathComponent(name).path
    }

    /// Every `Fixtures/models/*.golden.pth` (written by Fixtures/generate.py with real PyTorch), sorted.
    static var goldens: [String] {
        let dir = fixtures.appendingPathComponent("models")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".golden.pth") }.sorted().map { dir.appendingPathComponent($0).path }
    }

    static func golden(_ name: String) -> String {
        fixtures.appendingPathComponent("models").appendingPathComponent("\(name).golden.pth").path
    }

    /// A fresh file path in the temporary directory.
    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("torchport-verification-\(UUID().uuidString)-\(name)").path
    }
}

/// A reproducible stream of floats in [-1, 1) (SplitMix64), so measurements never change.
struct SeededFloats {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) / Float(1 << 23) - 1
    }

    mutating func array(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in next() * scale }
    }
}
