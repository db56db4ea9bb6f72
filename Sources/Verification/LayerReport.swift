import Foundation
import ResNet
import TorchportCore

/// A per-layer comparison of a model's forward pass with the module outputs a golden holds
/// (`intermediates`): every point the engine records (`TracedOutput`) whose module the
/// golden has, in forward order, each held to the criterion's tolerance at its own scale
/// (`max|d| <= atol + rtol * max|ref|` over the whole tensor), and the first layer beyond it.
public struct LayerReport: Sendable, Codable, Equatable {
    /// One compared point.
    public struct Layer: Sendable, Codable, Equatable {
        /// The golden's module name.
        public let name: String
        /// What was compared: the name, with ` + relu` when the engine fused a ReLU after it (the
        /// golden's output then has `relu` applied first).
        public let comparedAs: String
        /// The output's shape.
        public let shape: [Int]
        /// `max |ours - ref|`.
        public let maxAbsError: Double
        /// `max |ref|`.
        public let scale: Double
        /// `maxAbsError / scale` (0 when both are 0).
        public let relError: Double
        /// `ours · ref / (|ours| |ref|)`, 1 when both are zero.
        public let cosine: Double
        /// `atol + rtol * scale`.
        public let tolerance: Double
        /// Elements with `|d| > tolerance`.
        public let elementsOutOfTolerance: Int
        /// `maxAbsError <= tolerance`.
        public let passed: Bool

        enum CodingKeys: String, CodingKey {
            case name, shape, scale, cosine, tolerance, passed
            case comparedAs = "compared_as"
            case maxAbsError = "max_abs_error"
            case relError = "rel_error"
            case elementsOutOfTolerance = "elements_out_of_tolerance"
        }
    }

    /// The first layer beyond tolerance.
    public struct Divergence: Sendable, Codable, Equatable {
        /// The module's name.
        public let layer: String
        /// Its position among the compared layers, from 0.
        public let index: Int
        /// Its relative error.
        public let relError: Double
        /// Whether the relative error at the last compared layer is larger than here (the fault
        /// propagates and grows) rather than smaller (it fades).
        public let grows: Bool
        /// The last compared layer's relative error.
        public let finalRelError: Double
        /// The modules computed together to reach this point (the engine fuses some): the fault
        /// lies in one of them.
        public let candidates: [String]

        enum CodingKeys: String, CodingKey {
            case layer, index, grows, candidates
            case relError = "rel_error"
            case finalRelError = "final_rel_error"
        }
    }

    /// The compared layers, in forward order.
    public let layers: [Layer]
    /// The golden's modules the engine records no output for (convolutions whose BatchNorm the
    /// packed engine folds in, for one), in the golden's order.
    public let notCompared: [String]
    /// The first layer beyond tolerance, or nil when every layer is within it.
    public let firstDivergence: Divergence?
    /// The criterion's absolute tolerance.
    public let atol: Double
    /// The criterion's relative tolerance.
    public let rtol: Double

    enum CodingKeys: String, CodingKey {
        case layers, atol, rtol
        case notCompared = "not_compared"
        case firstDivergence = "first_divergence"
    }

    /// Every layer within tolerance (and at least one compared).
    public var passed: Bool { !layers.isEmpty && firstDivergence == nil }

    /// Compares `traced` with the golden's `intermediates` (shapes must agree; a point whose
    /// shape differs is a layer that fails with an infinite error).
    public init(traced: [TracedOutput], intermediates: [Golden.Intermediate], criterion: Criterion = .default) {
        let byName = Dictionary(intermediates.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var layers: [Layer] = []
        var compared = Set<String>()
        for point in traced {
            guard let ref = byName[point.module], compared.insert(point.module).inserted else { continue }
            layers.append(Self.compare(point, ref, criterion))
        }
        self.layers = layers
        notCompared = intermediates.map(\.name).filter { !compared.contains($0) }
        atol = criterion.atol
        rtol = criterion.rtol
        if let i = layers.firstIndex(where: { !$0.passed }), let last = layers.last {
            let covers = traced.first { $0.module == layers[i].name }?.covers ?? [layers[i].name]
            firstDivergence = Divergence(layer: layers[i].name, index: i, relError: layers[i].relError,
                                         grows: last.relError > layers[i].relError, finalRelError: last.relError,
                                         candidates: covers)
        } else {
            firstDivergence = nil
        }
    }

    private static func compare(_ point: TracedOutput, _ ref: Golden.Intermediate, _ criterion: Criterion) -> Layer {
        guard point.shape == ref.shape, point.values.count == ref.values.count else {
            return Layer(name: ref.name, comparedAs: point.label, shape: point.shape, maxAbsError: .infinity, scale: 0,
                         relError: .infinity, cosine: 0, tolerance: criterion.atol, elementsOutOfTolerance: point.values.count,
                         passed: false)
        }
        guard !ref.values.isEmpty else {  // an empty tensor: nothing differs
            return Layer(name: ref.name, comparedAs: point.label, shape: ref.shape, maxAbsError: 0, scale: 0, relError: 0,
                         cosine: 1, tolerance: criterion.atol, elementsOutOfTolerance: 0, passed: true)
        }
        // The whole tensor as one sample of the output metrics (same error, scale and cosine);
        // a fused ReLU is applied to the reference first.
        let reference = point.appliesReLU ? ref.values.map { $0.isNaN ? $0 : max(0, $0) } : ref.values
        let m = SampleMetrics(sample: 0, computed: point.values[...], reference: reference[...],
                              criterion: Criterion(atol: criterion.atol, rtol: criterion.rtol))
        return Layer(name: ref.name, comparedAs: point.label, shape: ref.shape, maxAbsError: m.maxAbsError, scale: m.scale,
                     relError: m.maxRelError, cosine: m.cosine, tolerance: m.tolerance,
                     elementsOutOfTolerance: m.elementsOutOfTolerance, passed: m.maxAbsError <= m.tolerance)
    }

    /// The table and the verdict:
    ///
    /// ```
    /// layer                      shape             max|d|     rel        cosine
    /// relu                       [2, 8, 32, 32]    2.384e-07  6.021e-08  1.00000000
    /// ...
    /// first divergence: layer2.0.conv1 (rel 3.2e-02 > tolerance); the error grows from there (fc: rel 1.2e-01)
    /// ```
    public var text: String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        func sci(_ x: Double) -> String { x.isFinite ? String(format: "%.3e", x) : String(describing: x) }
        let width = max(24, (layers.map(\.comparedAs.count).max() ?? 0) + 2)
        var lines = [pad("layer", width) + pad("shape", 18) + "max|d|     rel        cosine"]
        for l in layers {
            let shape = "[" + l.shape.map(String.init).joined(separator: ", ") + "]"
            lines.append(pad(l.comparedAs, width) + pad(shape, 18) + pad(sci(l.maxAbsError), 11) + pad(sci(l.relError), 11)
                         + String(format: "%.8f", l.cosine) + (l.passed ? "" : "  OUT"))
        }
        if !notCompared.isEmpty {
            lines.append("not compared (no such point in this engine): " + notCompared.joined(separator: ", "))
        }
        if let d = firstDivergence {
            let trend = d.grows ? "the error grows from there" : "the error does not grow from there"
            lines.append("first divergence: \(d.layer) (rel \(sci(d.relError)) beyond atol \(Criterion.number(atol)) + rtol "
                         + "\(Criterion.number(rtol)) of its scale); \(trend) (\(layers.last?.name ?? ""): rel \(sci(d.finalRelError)))")
            if d.candidates.count > 1 {
                lines.append("  computed fused there: \(d.candidates.joined(separator: ", ")): the fault lies in one of them")
            }
        } else {
            lines.append("layers: all \(layers.count) compared within tolerance")
        }
        return lines.joined(separator: "\n")
    }
}
