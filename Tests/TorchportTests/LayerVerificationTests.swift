import Foundation
import Testing
import Torchport
import TorchportCore
import _TestSupport

/// The per-layer goldens of `Fixtures/layers` (scripts/make_golden.py): clean ones, and ones
/// computed by a model with a fault injected at a known module.
struct LayerGolden: Decodable, Sendable, CustomTestStringConvertible {
    struct Fault: Decodable, Sendable { let module: String; let kind: String }
    let name: String
    let golden: String
    let checkpoint: String
    let intermediates: [String]
    let fault: Fault?

    var testDescription: String { name }

    static let all: [LayerGolden] = {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: fixturePath("layers/manifest.json"))) else { return [] }
        return (try? JSONDecoder().decode([LayerGolden].self, from: data)) ?? []
    }()

    /// Each golden with each engine this CPU runs.
    static var cases: [(LayerGolden, InferenceEngine)] {
        all.flatMap { g in InferenceEngine.allCases.filter(\.isAvailable).map { (g, $0) } }
    }
}

@Suite("Per-layer verification against goldens with intermediates")
struct LayerVerificationTests {
    @Test("The manifest lists clean goldens and at least one fault of each kind, for two models")
    func manifest() {
        #expect(LayerGolden.all.count >= 9)
        #expect(LayerGolden.all.filter { $0.fault == nil }.count == 2)
        #expect(Set(LayerGolden.all.compactMap(\.fault?.kind)).count >= 4)
        #expect(LayerGolden.cases.count >= LayerGolden.all.count)
    }

    @Test("A clean golden passes with every layer in tolerance; a fault is named as the first divergence, nothing before it",
          arguments: LayerGolden.cases)
    func faults(_ g: LayerGolden, _ engine: InferenceEngine) throws {
        let model = try ResNetModel(contentsOf: fixturePath(g.checkpoint), engine: engine)
        let golden = try Golden.load(path: fixturePath("layers/" + g.golden))
        #expect(golden.intermediates.map(\.name) == g.intermediates)
        let report = try Verifier.verify(model, against: golden)
        let layers = try #require(report.layers)
        // The reference engine records every module; the packed one every point it computes.
        #expect(layers.layers.count >= (engine == .reference ? g.intermediates.count : 25), "\(layers.notCompared)")
        guard let fault = g.fault else {
            #expect(report.passed, "\(report.text)")
            #expect(layers.firstDivergence == nil && layers.layers.allSatisfy { $0.passed })
            return
        }
        #expect(!report.passed)
        let d = try #require(layers.firstDivergence, "\(g.name) on \(engine): no divergence")
        #expect(layers.layers[..<d.index].allSatisfy { $0.passed })
        if engine == .reference {
            #expect(d.layer == fault.module, "\(g.name): \(d.layer)")
            #expect(d.candidates == [fault.module])
        } else {
            // Fused: the fault lies among the modules computed together at the first divergent point.
            #expect(d.candidates.contains(fault.module), "\(g.name): \(d.layer) covers \(d.candidates)")
        }
    }
}
