import Foundation
import TorchportCore

extension VerificationReport {
    /// A table, one row per sample, then the verdict and the criterion:
    ///
    /// ```
    /// sample  max|d|     rel        cosine      top-1     top-5
    ///      0  2.480e-02  3.662e-03  0.99999655  match     yes  FAIL
    ///      1  3.815e-06  6.949e-07  1.00000000  match     yes
    /// FAIL: 1 of 2 samples within tolerance; max|d| 2.480e-02, rel 3.662e-03, min cosine 0.99999655, top-1 2/2, top-5 2/2
    /// criterion: max|d| <= 0 + 1e-05 * max|ref| per sample, and top-1 identical unless the reference's top-2 gap is within that tolerance
    /// ```
    public var text: String {
        var lines: [String] = []
        let topHeader = topK == 5 ? "top-5" : "top-\(topK)"
        lines.append("sample  max|d|     rel        cosine      top-1     \(topHeader)")
        for m in perSample {
            let row = [
                Self.pad(String(m.sample), 6, right: true),
                Self.pad(Self.scientific(m.maxAbsError), 9),
                Self.pad(Self.scientific(m.maxRelError), 9),
                Self.pad(Self.fixed(m.cosine), 10),
                Self.pad(m.top1.rawValue, 8),
                m.top5 ? "yes" : "no",
            ].joined(separator: "  ")
            lines.append(m.passed ? row : row + "  FAIL")
        }
        let verdict = passed ? "PASS" : "FAIL"
        var summary = "\(verdict): \(samples - failedSamples.count) of \(samples) samples within tolerance"
            + (decidedBy == .float64Reference ? " (passed by the float64 rule)" : "")
        summary += "; max|d| \(Self.scientific(maxAbsError)), rel \(Self.scientific(maxRelError))"
        summary += ", min cosine \(Self.fixed(minCosine))"
        summary += ", top-1 \(top1Agreement)/\(samples)" + (top1Ties > 0 ? " (+\(top1Ties) tie)" : "")
        summary += ", \(topHeader) \(top5Agreement)/\(samples)"
        lines.append(summary)
        let percent = elements > 0 ? 100 * Double(elementsOutOfTolerance) / Double(elements) : 0
        lines.append("tolerance: \(elementsOutOfTolerance) of \(elements) elements (\(String(format: "%.1f", percent))%) "
                     + "out; would pass with atol >= \(Self.scientific(smallestPassingAtol)) (at rtol \(Criterion.number(rtol))) "
                     + "or rtol >= \(Self.scientific(smallestPassingRtol)) (at atol \(Criterion.number(atol)))")
        if let f = float64Reference {
            let ratio = f.pytorchMaxRelError > 0 ? f.computedMaxRelError / f.pytorchMaxRelError : .infinity
            lines.append("vs float64: PyTorch float32 rel \(Self.scientific(f.pytorchMaxRelError)), "
                         + "computed rel \(Self.scientific(f.computedMaxRelError)) (\(String(format: "%.2f", ratio))x; "
                         + "within \(Criterion.number(Self.float64Factor))x passes)")
        }
        for note in notes { lines.append("note: \(note)") }
        if let engine { lines.append("engine: \(engine)") }
        if let layers { lines.append(layers.text) }
        lines.append("criterion: \(criterion)" + (toleranceSource == "default" ? "" : " (tolerances: \(toleranceSource))")
                     + "; decided by: \(decidedBy == .criterion ? "the criterion" : "the float64 rule")")
        return lines.joined(separator: "\n")
    }

    static func scientific(_ x: Double) -> String {
        x.isFinite ? String(format: "%.3e", x) : String(describing: x)
    }

    static func fixed(_ x: Double) -> String {
        x.isFinite ? String(format: "%.8f", x) : String(describing: x)
    }

    static func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        guard s.count < width else { return s }
        let fill = String(repeating: " ", count: width - s.count)
        return right ? fill + s : s + fill
    }
}
