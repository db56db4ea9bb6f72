import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import ResNet
import Testing
import TorchportCore
@testable import Verification

@Suite("Per-layer reports and their picture")
struct LayerReportTests {
    static let intermediates = [
        Golden.Intermediate(name: "conv1", shape: [1, 2], values: [1, -2]),
        Golden.Intermediate(name: "bn1", shape: [1, 2], values: [0.5, -1]),
        Golden.Intermediate(name: "layer1.0.conv1", shape: [1, 2], values: [3, 4]),
        Golden.Intermediate(name: "layer1.0", shape: [1, 2], values: [2, 2]),
        Golden.Intermediate(name: "fc", shape: [1, 2], values: [10, 20]),
    ]

    @Test("The first layer beyond tolerance, whether the error grows, a fused ReLU applied to the reference, points not compared")
    func divergence() throws {
        let traced = [
            TracedOutput(module: "bn1", appliesReLU: true, shape: [1, 2], values: [0.5, 0]),  // relu(bn1): exact
            TracedOutput(module: "layer1.0", shape: [1, 2], values: [2.1, 2]),                // 5e-2 relative
            TracedOutput(module: "fc", shape: [1, 2], values: [12, 20]),                      // 1e-1 relative
        ]
        let r = LayerReport(traced: traced, intermediates: Self.intermediates)
        #expect(r.layers.map(\.comparedAs) == ["bn1 + relu", "layer1.0", "fc"])
        #expect(r.layers[0].passed && r.layers[0].maxAbsError == 0)
        #expect(r.notCompared == ["conv1", "layer1.0.conv1"])
        let d = try #require(r.firstDivergence)
        #expect(d.layer == "layer1.0" && d.index == 1 && d.grows && abs(d.relError - 0.05) < 1e-6 && d.finalRelError == 0.1)
        #expect(!r.passed)
        #expect(r.text.contains("first divergence: layer1.0 (rel 5.000e-02"))
        #expect(r.text.contains("the error grows from there (fc: rel 1.000e-01)"))
        let clean = LayerReport(traced: [TracedOutput(module: "fc", shape: [1, 2], values: [10, 20])], intermediates: Self.intermediates)
        #expect(clean.passed && clean.firstDivergence == nil)
        let wrongShape = LayerReport(traced: [TracedOutput(module: "fc", shape: [2], values: [10, 20])], intermediates: Self.intermediates)
        #expect(wrongShape.firstDivergence?.layer == "fc" && wrongShape.layers[0].relError == .infinity)
    }

    /// The SVG's elements, by class.
    final class SVGReader: NSObject, XMLParserDelegate {
        var elements: [(name: String, attributes: [String: String])] = []
        var texts: [String] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String]) {
            elements.append((name, attributes))
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { texts.append(string) }
    }

    @Test("The SVG parses as XML, has one point per compared layer, the tolerance line, and marks the first divergence")
    func svg() throws {
        let traced = [
            TracedOutput(module: "bn1", appliesReLU: true, shape: [1, 2], values: [0.5, 0]),
            TracedOutput(module: "layer1.0", shape: [1, 2], values: [2.1, 2]),
            TracedOutput(module: "fc", shape: [1, 2], values: [12, 20]),
        ]
        let svg = LayerReport(traced: traced, intermediates: Self.intermediates).svg(title: "a <model> & golden")
        let parser = XMLParser(data: Data(svg.utf8))
        let reader = SVGReader()
        parser.delegate = reader
        #expect(parser.parse(), "\(String(describing: parser.parserError))")
        let byClass = Dictionary(grouping: reader.elements, by: { $0.attributes["class"] ?? "" })
        #expect(reader.elements.first?.name == "svg")
        let circles = try #require(byClass["layer"])
        #expect(circles.map { $0.attributes["data-layer"] } == ["bn1", "layer1.0", "fc"])
        let error = try #require(byClass["error"]?.first?.attributes["points"])
        #expect(error.split(separator: " ").count == 3)
        #expect(byClass["tolerance"]?.count == 1)
        #expect(byClass["divergence"]?.first?.attributes["data-layer"] == "layer1.0")
        #expect(reader.texts.contains { $0.contains("first divergence: layer1.0") })
        #expect(reader.texts.joined().contains("a <model> & golden"))  // escaped in the file, text again when parsed
        // Larger errors are drawn higher: y decreases from bn1 (exact) to fc (1e-1).
        let ys = circles.compactMap { $0.attributes["cy"].flatMap(Double.init) }
        #expect(ys.count == 3 && ys[0] > ys[1] && ys[1] > ys[2])
    }
}
