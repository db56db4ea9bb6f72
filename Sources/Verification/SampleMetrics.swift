import TorchportCore
/// How a sample's predicted class compares with the reference's.
public enum Top1Agreement: String, Sendable, Codable, Equatable {
    /// Same index.
    case match
    /// Different index, but the reference's top-2 gap is within the tolerance: the criterion
    /// cannot separate the two classes, so the sample does not fail on it.
    case tie
    /// Different index, and the reference separates the classes by more than the tolerance.
    case mismatch
}

/// The comparison of one sample: one row of the `N x C` output.
///
/// Errors are computed in `Double` from the float32 values (the difference of two floats is exact
/// there), the cosine too. A NaN anywhere in the computed row makes `maxAbsError` NaN, which fails.
public struct SampleMetrics: Sendable, Codable, Equatable {
    /// The row index, from 0.
    public var sample: Int
    /// `max_j |computed_j - ref_j|`.
    public var maxAbsError: Double
    /// `max_j |ref_j|`, the sample's logit scale.
    public var scale: Double
    /// `maxAbsError / scale`: the error relative to the logit scale (0 when both are 0).
    public var maxRelError: Double
    /// `computed · ref / (|computed| |ref|)`, in Double, clamped to [-1, 1]; 1 when both rows are
    /// zero, 0 when one is.
    public var cosine: Double
    /// `argmax ref` (the lower index among equal values).
    public var top1Reference: Int
    /// `argmax computed` (the lower index among equal values).
    public var top1Computed: Int
    /// The reference's top-1 minus its top-2 logit (0 when there is one class).
    public var top2Gap: Double
    /// How the computed top-1 compares with the reference's.
    public var top1: Top1Agreement
    /// Whether the sets of the `k = min(5, C)` largest logits are equal (order within them ignored).
    public var top5: Bool
    /// `atol + rtol * scale`, the bound the error statistic is held to.
    public var tolerance: Double
    /// The criterion's statistic of the sample's `|d_j|` (``Criterion/errorStat``; `maxAbsError` for `max`).
    public var errorStatistic: Double
    /// Elements with `|d_j| > tolerance`.
    public var elementsOutOfTolerance: Int
    /// The smallest `atol` that would have passed this sample at the criterion's `rtol` (infinite
    /// for a NaN): covering the error statistic, and a flipped top-1's reference top-2 gap.
    public var smallestPassingAtol: Double
    /// The smallest `rtol` that would have passed this sample at the criterion's `atol`.
    public var smallestPassingRtol: Double
    /// The error statistic within tolerance, and the top-1 not a ``Top1Agreement/mismatch``.
    public var passed: Bool

    enum CodingKeys: String, CodingKey {
        case sample
        case maxAbsError = "max_abs_error"
        case scale = "logit_scale"
        case maxRelError = "max_rel_error"
        case cosine
        case top1Reference = "top1_reference"
        case top1Computed = "top1_computed"
        case top2Gap = "top2_gap"
        case top1
        case top5
        case tolerance
        case errorStatistic = "error_statistic"
        case elementsOutOfTolerance = "elements_out_of_tolerance"
        case smallestPassingAtol = "smallest_passing_atol"
        case smallestPassingRtol = "smallest_passing_rtol"
        case passed
    }

    /// Compares one row. `computed` and `reference` have the same count (at least 1).
    init(sample: Int, computed: ArraySlice<Float>, reference: ArraySlice<Float>, criterion: Criterion) {
        precondition(computed.count == reference.count && !reference.isEmpty)
        var maxAbs = 0.0, scale = 0.0, dot = 0.0, normC = 0.0, normR = 0.0
        var sawNaN = false
        var errors: [Double] = []
        errors.reserveCapacity(computed.count)
        for (c, r) in zip(computed, reference) {
            let c = Double(c), r = Double(r)
            let d = abs(c - r)
            errors.append(d)
            if d.isNaN { sawNaN = true } else if d > maxAbs { maxAbs = d }
            scale = max(scale, abs(r))
            dot += c * r
            normC += c * c
            normR += r * r
        }
        if sawNaN { maxAbs = .nan }
        self.sample = sample
        maxAbsError = maxAbs
        self.scale = scale
        maxRelError = scale > 0 ? maxAbs / scale : (maxAbs == 0 ? 0 : .infinity)
        if normC == 0 && normR == 0 {
            cosine = 1
        } else if normC == 0 || normR == 0 {
            cosine = 0
        } else {
            cosine = min(1, max(-1, dot / (normC.squareRoot() * normR.squareRoot())))
        }

        let k = min(5, reference.count)
        let topR = Self.topIndices(reference, k)
        let topC = Self.topIndices(computed, k)
        top1Reference = topR[0]
        top1Computed = topC[0]
        let ref = Array(reference)
        top2Gap = k >= 2 ? Double(ref[topR[0]]) - Double(ref[topR[1]]) : 0
        tolerance = criterion.tolerance(scale: scale)
        if top1Reference == top1Computed {
            top1 = .match
        } else if top2Gap <= tolerance {
            top1 = .tie
        } else {
            top1 = .mismatch
        }
        top5 = Set(topR) == Set(topC)
        errorStatistic = criterion.errorStat == .max ? maxAbsError : criterion.errorStat.of(errors)
        let bound = tolerance
        elementsOutOfTolerance = errors.filter { !($0 <= bound) }.count
        // What a tolerance must cover: the statistic, and the reference's top-2 gap when the
        // predicted class differs (a wider tolerance turns that flip into a tie).
        let needed = Swift.max(errorStatistic, top1Reference == top1Computed ? 0 : top2Gap)
        smallestPassingAtol = needed.isNaN ? .infinity : Swift.max(0, needed - criterion.rtol * scale)
        smallestPassingRtol = needed.isNaN ? .infinity
            : (needed <= criterion.atol ? 0 : (scale > 0 ? (needed - criterion.atol) / scale : .infinity))
        passed = errorStatistic <= tolerance && top1 != .mismatch
    }

    /// Indices of the `k` largest values, largest first; NaN counts as largest (as `torch.argmax`
    /// does), and equal values keep the lower index first.
    static func topIndices(_ values: ArraySlice<Float>, _ k: Int) -> [Int] {
        let base = values.startIndex
        func before(_ a: Int, _ b: Int) -> Bool {
            let x = values[base + a], y = values[base + b]
            if x.isNaN != y.isNaN { return x.isNaN }
            if x != y && !x.isNaN { return x > y }
            return a < b
        }
        var top: [Int] = []
        top.reserveCapacity(k + 1)
        for i in 0..<values.count {
            // Insertion into a list of at most k: O(C * k), k <= 5.
            var pos = top.count
            while pos > 0 && before(i, top[pos - 1]) { pos -= 1 }
            if pos < k {
                top.insert(i, at: pos)
                if top.count > k { top.removeLast() }
            }
        }
        return top
    }
}
