import Foundation
import ResNet
import TorchportCore

/// The outcome of comparing computed outputs with a reference: per-sample metrics, their
/// aggregates, the verdict and the criterion it was reached under.
///
/// Encodes with snake_case keys whatever the encoder's key strategy (`passed`, `max_abs_error`,
/// `max_rel_error`, `min_cosine`, `top1_agreement`, `per_sample`, ...). A computed NaN makes
/// `max_abs_error` NaN, which a default `JSONEncoder` refuses: use ``jsonString(pretty:)`` or
/// ``jsonEncoder`` (non-finite numbers become the strings `"nan"`, `"inf"`, `"-inf"`).
public struct VerificationReport: Sendable, Codable, Equatable {
    /// Every sample passed (and there was at least one).
    public var passed: Bool
    /// The inference engine that computed the outputs (`packed`, `reference`), when the caller
    /// ran a model; nil for a comparison of given arrays.
    public var engine: InferenceEngine?
    /// ``Criterion/formula``: the rule with its numbers filled in.
    public var criterion: String
    /// The criterion's absolute tolerance (``Criterion/atol``).
    public var atol: Double
    /// The criterion's relative tolerance (``Criterion/rtol``).
    public var rtol: Double
    /// What was compared: `logits`, `features` or `feature_map`.
    public var output: GoldenOutput
    /// `N`.
    public var samples: Int
    /// `C`: values per sample (for a feature map, `C x h x w`).
    public var classes: Int
    /// The largest of the samples' `max|d|`.
    public var maxAbsError: Double
    /// The largest of the samples' `max|d| / max|ref|`.
    public var maxRelError: Double
    /// The smallest of the samples' cosine similarities.
    public var minCosine: Double
    /// Samples whose top-1 index is identical.
    public var top1Agreement: Int
    /// Samples whose top-1 index differs within a reference tie (they do not fail on it).
    public var top1Ties: Int
    /// Samples whose top-k sets are equal, `k = min(5, C)`.
    public var top5Agreement: Int
    /// `k` of the top-k sets: `min(5, C)`.
    public var topK: Int
    /// Indices of the failing samples.
    public var failedSamples: [Int]
    /// The metrics of each sample, in batch order.
    public var perSample: [SampleMetrics]
    /// How far PyTorch's own float32 output is from its float64 run, when the golden has one.
    public var float64Reference: Float64Reference?
    /// What a failure may mean, when something in the report says (``interpret(weightDType:)``).
    public var notes: [String] = []
    /// The statistic of `|d|` held to the tolerance (`max`, `mean`, `median`, `quantile 0.99`).
    public var errorStat: String
    /// The smallest `atol` that would have passed every sample at this `rtol`.
    public var smallestPassingAtol: Double
    /// The smallest `rtol` that would have passed every sample at this `atol`.
    public var smallestPassingRtol: Double
    /// Elements out of tolerance, over all samples.
    public var elementsOutOfTolerance: Int
    /// Elements compared, over all samples.
    public var elements: Int
    /// Where the tolerances came from: `default`, `given`, or the stored dtype's
    /// `torch.testing.assert_close` defaults (`float16 weights`, `bfloat16 weights`).
    public var toleranceSource: String = "default"
    /// Which rule decided the verdict.
    public var decidedBy: Rule = .criterion
    /// The per-layer comparison, when the golden holds `intermediates` (``attach(layers:)``).
    public private(set) var layers: LayerReport?
    /// The first layer beyond tolerance, when layers were compared and one is.
    public private(set) var firstDivergence: LayerReport.Divergence?

    /// Adds a per-layer comparison: the report passes only if every compared layer is within
    /// tolerance too (a fault anywhere is named, even where the output happens to pass).
    public mutating func attach(layers report: LayerReport) {
        layers = report
        firstDivergence = report.firstDivergence
        if report.firstDivergence != nil {
            passed = false
            decidedBy = .criterion
        }
    }

    /// The rule that decided a verdict.
    public enum Rule: String, Sendable, Codable, Equatable {
        /// The criterion (``criterion``) alone.
        case criterion
        /// The criterion failed, but the computed output is within ``VerificationReport/float64Factor``
        /// times PyTorch's own float32 distance from the float64 run: float32 rounding, a pass.
        case float64Reference = "float64-reference"
    }

    /// `k` of the float64 rule: a computed output whose error relative to the golden's float64
    /// run is at most `k` times PyTorch's own float32 error passes, whatever the criterion says.
    ///
    /// Why 4: two float32 implementations of one network each sit a few float32 roundings from the
    /// exact result; summing in another order, or through Winograd's transforms (whose constants
    /// amplify rounding), moves that distance by a small factor: the packed engine measures 2.2x
    /// PyTorch's own on tiny-half (Winograd layers), the reference engine 1.0x. A factor of 4
    /// covers that with a margin while staying two orders of magnitude below what real porting
    /// mistakes do (1e-4 to 1 of the logit scale against PyTorch's ~3e-7: docs/verification.md).
    public static let float64Factor = 4.0

    enum CodingKeys: String, CodingKey {
        case passed, engine, criterion, atol, rtol, output, samples, classes, notes
        case maxAbsError = "max_abs_error"
        case maxRelError = "max_rel_error"
        case minCosine = "min_cosine"
        case top1Agreement = "top1_agreement"
        case top1Ties = "top1_ties"
        case top5Agreement = "top5_agreement"
        case errorStat = "error_stat"
        case smallestPassingAtol = "smallest_passing_atol"
        case smallestPassingRtol = "smallest_passing_rtol"
        case elementsOutOfTolerance = "elements_out_of_tolerance"
        case elements
        case toleranceSource = "tolerance_source"
        case decidedBy = "decided_by"
        case layers
        case firstDivergence = "first_divergence"
        case topK = "top_k"
        case failedSamples = "failed_samples"
        case perSample = "per_sample"
        case float64Reference = "reference_f64"
    }

    /// Every field; `first_divergence` is written as `null` when layers were compared and none
    /// diverged (absent when no layer was compared), so a script can tell the two apart.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(passed, forKey: .passed)
        try c.encodeIfPresent(engine, forKey: .engine)
        try c.encode(criterion, forKey: .criterion)
        try c.encode(atol, forKey: .atol)
        try c.encode(rtol, forKey: .rtol)
        try c.encode(output, forKey: .output)
        try c.encode(samples, forKey: .samples)
        try c.encode(classes, forKey: .classes)
        try c.encode(notes, forKey: .notes)
        try c.encode(maxAbsError, forKey: .maxAbsError)
        try c.encode(maxRelError, forKey: .maxRelError)
        try c.encode(minCosine, forKey: .minCosine)
        try c.encode(top1Agreement, forKey: .top1Agreement)
        try c.encode(top1Ties, forKey: .top1Ties)
        try c.encode(top5Agreement, forKey: .top5Agreement)
        try c.encode(errorStat, forKey: .errorStat)
        try c.encode(smallestPassingAtol, forKey: .smallestPassingAtol)
        try c.encode(smallestPassingRtol, forKey: .smallestPassingRtol)
        try c.encode(elementsOutOfTolerance, forKey: .elementsOutOfTolerance)
        try c.encode(elements, forKey: .elements)
        try c.encode(toleranceSource, forKey: .toleranceSource)
        try c.encode(decidedBy, forKey: .decidedBy)
        try c.encodeIfPresent(layers, forKey: .layers)
        if layers != nil {
            try c.encode(firstDivergence, forKey: .firstDivergence)
        }
        try c.encode(topK, forKey: .topK)
        try c.encode(failedSamples, forKey: .failedSamples)
        try c.encode(perSample, forKey: .perSample)
        try c.encodeIfPresent(float64Reference, forKey: .float64Reference)
    }

    /// Adds ``notes`` that interpret a failure: weights stored in half precision (`weightDType`
    /// `float16` or `bfloat16`), whose rounding alone moves outputs by about 1e-3 of their scale,
    /// when the golden came from other weights. (A failure that is float32 rounding, measured
    /// against the golden's float64 run, is no failure: ``Rule/float64Reference``.)
    public mutating func interpret(weightDType: DType?) {
        notes = []
        guard !passed else { return }
        if let d = weightDType, d == .float16 || d == .bfloat16 {
            notes.append("the checkpoint's weights are \(d.rawValue): their rounding alone moves outputs by about 1e-3 of their scale; "
                         + "compare against a golden of the same weights, or try --rtol 1e-2")
        }
    }

    /// ``ExitStatus/passed`` (0) when passed, ``ExitStatus/mismatch`` (1) otherwise.
    public var exitCode: Int32 { passed ? ExitStatus.passed : ExitStatus.mismatch }

    /// Builds the aggregates from per-sample metrics.
    public init(perSample: [SampleMetrics], classes: Int, criterion: Criterion, output: GoldenOutput = .logits,
                float64Reference: Float64Reference? = nil) {
        self.perSample = perSample
        self.criterion = criterion.formula
        atol = criterion.atol
        rtol = criterion.rtol
        self.output = output
        samples = perSample.count
        self.classes = classes
        maxAbsError = Self.maximum(perSample.map(\.maxAbsError))
        maxRelError = Self.maximum(perSample.map(\.maxRelError))
        minCosine = -Self.maximum(perSample.map { -$0.cosine }, empty: -1)
        top1Agreement = perSample.filter { $0.top1 == .match }.count
        top1Ties = perSample.filter { $0.top1 == .tie }.count
        top5Agreement = perSample.filter(\.top5).count
        topK = min(5, classes)
        failedSamples = perSample.filter { !$0.passed }.map(\.sample)
        errorStat = criterion.errorStat.description
        smallestPassingAtol = Self.maximum(perSample.map(\.smallestPassingAtol))
        smallestPassingRtol = Self.maximum(perSample.map(\.smallestPassingRtol))
        elementsOutOfTolerance = perSample.reduce(0) { $0 + $1.elementsOutOfTolerance }
        elements = perSample.count * classes
        passed = !perSample.isEmpty && failedSamples.isEmpty
        self.float64Reference = float64Reference
        if !passed, !perSample.isEmpty, let f = float64Reference, f.pytorchMaxRelError > 0,
           f.computedMaxRelError <= Self.float64Factor * f.pytorchMaxRelError {
            passed = true
            decidedBy = .float64Reference
        }
    }

    /// The maximum, NaN if any value is NaN (`Swift.max` would drop it).
    static func maximum(_ values: [Double], empty: Double = 0) -> Double {
        guard !values.isEmpty else { return empty }
        var m = -Double.infinity
        for v in values {
            if v.isNaN { return .nan }
            m = max(m, v)
        }
        return m
    }

    /// An encoder for reports: sorted keys, non-finite numbers as strings.
    public static var jsonEncoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    /// A decoder matching ``jsonEncoder``.
    public static var jsonDecoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    /// The report as JSON (sorted keys; indented when `pretty`).
    public func jsonString(pretty: Bool = true) -> String {
        let e = Self.jsonEncoder
        if pretty { e.outputFormatting.insert(.prettyPrinted) }
        // Every field is a number, string, bool or array of them, and non-finite numbers have a
        // strategy: encoding cannot fail.
        guard let data = try? e.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// The golden's float64 run as a second reference: how far PyTorch's float32 logits and the
/// computed ones each are from it. The two numbers side by side say whether Torchport's error is
/// of the size float32 itself imposes.
public struct Float64Reference: Sendable, Codable, Equatable {
    /// Max over samples of `max|torch_f32 - torch_f64|`, and relative to each sample's scale.
    public var pytorchMaxAbsError: Double
    /// Max over samples of `max|torch_f32 - torch_f64| / max|torch_f64|`.
    public var pytorchMaxRelError: Double
    /// Max over samples of `max|computed - torch_f64|`, and relative to each sample's scale.
    public var computedMaxAbsError: Double
    /// Max over samples of `max|computed - torch_f64| / max|torch_f64|`.
    public var computedMaxRelError: Double

    enum CodingKeys: String, CodingKey {
        case pytorchMaxAbsError = "pytorch_max_abs_error"
        case pytorchMaxRelError = "pytorch_max_rel_error"
        case computedMaxAbsError = "computed_max_abs_error"
        case computedMaxRelError = "computed_max_rel_error"
    }

    /// Creates a reference from already computed errors.
    public init(pytorchMaxAbsError: Double, pytorchMaxRelError: Double, computedMaxAbsError: Double,
                computedMaxRelError: Double) {
        self.pytorchMaxAbsError = pytorchMaxAbsError
        self.pytorchMaxRelError = pytorchMaxRelError
        self.computedMaxAbsError = computedMaxAbsError
        self.computedMaxRelError = computedMaxRelError
    }

    /// Compares both float32 outputs (`N x C`, row-major) with the float64 one.
    public init(computed: [Float], pytorch: [Float], float64: [Double], batch: Int, classes: Int) {
        func errors(_ values: [Float]) -> (abs: Double, rel: Double) {
            var maxAbs = 0.0, maxRel = 0.0
            for i in 0..<batch {
                var rowAbs = 0.0, scale = 0.0
                for j in 0..<classes {
                    let r = float64[i * classes + j]
                    let d = abs(Double(values[i * classes + j]) - r)
                    if d.isNaN { return (.nan, .nan) }
                    rowAbs = max(rowAbs, d)
                    scale = max(scale, abs(r))
                }
                maxAbs = max(maxAbs, rowAbs)
                maxRel = max(maxRel, scale > 0 ? rowAbs / scale : (rowAbs == 0 ? 0 : .infinity))
            }
            return (maxAbs, maxRel)
        }
        let p = errors(pytorch), c = errors(computed)
        self.init(pytorchMaxAbsError: p.abs, pytorchMaxRelError: p.rel, computedMaxAbsError: c.abs, computedMaxRelError: c.rel)
    }
}
