import Foundation
import TorchportCore

/// When computed outputs count as equal to PyTorch's. For each sample `i` (a row of the `N x C`
/// output), with `d = computed - reference`:
///
/// ```
/// scale_i = max_j |ref_ij|                          the sample's logit scale
/// tol_i   = atol + rtol * scale_i
/// pass_i  = max_j |d_ij| <= tol_i
///           and ( argmax_j computed_ij == argmax_j ref_ij
///                 or ref_i(1) - ref_i(2) <= tol_i )  reference's top-2 gap: a "tie"
/// passed  = pass_i for every sample i
/// ```
///
/// Defaults: `atol = 0`, `rtol = 1e-5`.
///
/// - `rtol = 1e-5` of the logit scale is 84 to 168 float32 ulps of the largest logit (an ulp
///   is `2^-23` of the value's binade). Summing in another float32 order moves ResNet-152's
///   logits by up to 2.1e-6 of their scale (torch against itself: oneDNN off, channels-last, one
///   thread), so the default leaves a 5x margin for two independent float32 implementations;
///   while real mistakes move them by 1e-4 to 1: BatchNorm's epsilon read as 1e-3 in a single
///   layer of 155 (9.8e-5), one 3x3 kernel transposed (6.0e-2), two same-shaped convolutions
///   swapped (0.13). docs/verification.md gives every measurement and its limits.
/// - The scale is the sample's *largest* logit magnitude, not each element's own: logits near
///   zero carry the absolute error of the sums that produced them, which an element-wise relative
///   test would blow up.
/// - `atol = 0`: the logit scale of a real network is never near zero; an absolute floor only
///   matters for outputs that are (near) zero everywhere, e.g. a dead feature map. Set it then.
/// - The top-1 rule: a sample whose errors are each within tolerance can still flip the
///   predicted class when its top two reference logits are close. The flip is accepted only when
///   the reference's own gap is within the tolerance (PyTorch itself could not separate them).
public struct Criterion: Sendable, Codable, Equatable, Hashable {
    /// Absolute floor of the tolerance, in logit units.
    public var atol: Double
    /// Tolerance as a fraction of the sample's logit scale `max|ref|`.
    public var rtol: Double
    /// Which statistic of a sample's `|d_j|` is held to the tolerance (Polygraphy's
    /// `--check-error-stat`): the maximum by default.
    public var errorStat: ErrorStatistic = .max

    /// A statistic of the absolute errors `|d_j|` of one sample.
    public enum ErrorStatistic: Sendable, Codable, Equatable, Hashable, CustomStringConvertible {
        /// The largest error: every element within tolerance.
        case max
        /// The mean error.
        case mean
        /// The median error (the mean of the two middle ones for an even count).
        case median
        /// The `q` quantile (0...1, linear between order statistics, as `numpy.quantile`).
        case quantile(Double)

        /// `max`, `mean`, `median`, `quantile 0.99`.
        public var description: String {
            switch self {
            case .max: "max"
            case .mean: "mean"
            case .median: "median"
            case .quantile(let q): "quantile \(Criterion.number(q))"
            }
        }

        /// The statistic of `errors` (NaN when one is NaN; 0 for none).
        public func of(_ errors: [Double]) -> Double {
            guard !errors.isEmpty else { return 0 }
            if errors.contains(where: \.isNaN) { return .nan }
            switch self {
            case .max: return errors.max() ?? 0
            case .mean: return errors.reduce(0, +) / Double(errors.count)
            case .median: return Self.quantile(errors.sorted(), 0.5)
            case .quantile(let q): return Self.quantile(errors.sorted(), Swift.min(1, Swift.max(0, q)))
            }
        }

        private static func quantile(_ sorted: [Double], _ q: Double) -> Double {
            let position = q * Double(sorted.count - 1)
            let low = Int(position.rounded(.down)), high = Int(position.rounded(.up))
            let weight = position - Double(low)
            return sorted[low] + (sorted[high] - sorted[low]) * weight
        }
    }

    /// The default ``atol``, 0.
    public static let defaultAbsoluteTolerance: Double = 0
    /// The default ``rtol``, 1e-5 of the sample's logit scale.
    public static let defaultRelativeTolerance: Double = 1e-5

    /// Creates a criterion; the defaults are ``defaultAbsoluteTolerance`` and ``defaultRelativeTolerance``.
    public init(atol: Double = Criterion.defaultAbsoluteTolerance, rtol: Double = Criterion.defaultRelativeTolerance,
                errorStat: ErrorStatistic = .max) {
        self.atol = atol
        self.rtol = rtol
        self.errorStat = errorStat
    }

    /// The tolerances `torch.testing.assert_close` uses for weights stored in `dtype`, in this
    /// criterion's form (`atol + rtol * max|ref|` per sample): float16 `rtol 1e-3, atol 1e-5`,
    /// bfloat16 `rtol 1.6e-2, atol 1e-5`; nil for other dtypes (the default criterion applies).
    public static func assertCloseDefaults(for dtype: DType) -> Criterion? {
        switch dtype {
        case .float16: Criterion(atol: 1e-5, rtol: 1e-3)
        case .bfloat16: Criterion(atol: 1e-5, rtol: 1.6e-2)
        default: nil
        }
    }

    /// `atol = 0`, `rtol = 1e-5`.
    public static let `default` = Criterion()

    /// `atol + rtol * scale`, the largest error allowed for a sample whose logit scale is `scale`.
    public func tolerance(scale: Double) -> Double {
        atol + rtol * scale
    }

    /// Why this criterion cannot be used (a negative, NaN or infinite tolerance), or nil.
    /// The CLI turns it into a validation error of `--atol` / `--rtol`.
    public var validationProblem: String? {
        for (name, value) in [("atol", atol), ("rtol", rtol)] where !(value.isFinite && value >= 0) {
            return "\(name) must be a finite number >= 0, got \(value)"
        }
        if case .quantile(let q) = errorStat, !(q >= 0 && q <= 1) {
            return "the error quantile must be between 0 and 1, got \(q)"
        }
        return nil
    }

    /// The formula with the numbers filled in, as reports state it.
    public var formula: String {
        let stat = errorStat == .max ? "max|d|" : "\(errorStat)(|d|)"
        return "\(stat) <= \(Self.number(atol)) + \(Self.number(rtol)) * max|ref| per sample, "
            + "and top-1 identical unless the reference's top-2 gap is within that tolerance"
    }

    static func number(_ x: Double) -> String {
        x == 0 ? "0" : String(format: "%g", x)
    }
}
