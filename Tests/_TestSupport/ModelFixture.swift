// Shared by the test targets only (never a product): the model fixtures' manifest and helpers.
import Foundation
import Testing

/// The tiny networks of `Fixtures/models` (torchvision's own blocks), run in Swift and compared
/// with the logits real PyTorch produced.
public struct ModelFixture: Decodable, Sendable, CustomTestStringConvertible {
    public struct Arch: Decodable, Sendable {
        public let block: String
        public let layers: [Int]
        public let groups: Int
        public let stage_widths: [Int]
        public let num_classes: Int?
        public let stem_width: Int
    }
    public let name: String
    public let checkpoint: String
    public let golden: String
    public let arch: Arch
    public let kind: String
    public let golden_keys: [String]

    public var testDescription: String { name }

    public static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/models")

    public static var all: [ModelFixture] {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("manifest.json")) else { return [] }
        return (try? JSONDecoder().decode([ModelFixture].self, from: data)) ?? []
    }

    public func path(_ file: String) -> String { Self.folder.appendingPathComponent(file).path }
}


/// `max|got - want| / max|want|`: the error relative to the reference's scale.
public func maxRelativeError(_ got: [Float], _ want: [Float]) -> Float {
    let scale = want.map(abs).max() ?? 0
    let d = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
    return d / max(scale, .leastNormalMagnitude)
}

/// A fixture file of `Fixtures/<relative>`.
public func fixturePath(_ relative: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(relative).path
}
