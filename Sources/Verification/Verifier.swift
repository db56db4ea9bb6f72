import TorchportCore
/// Compares computed outputs with PyTorch's, sample by sample, under a ``Criterion``.
///
/// ```swift
/// let golden = try Golden.load(path: "resnet18.golden.pth")
/// let logits = model(golden.input, shape: golden.inputShape)            // N x C, row-major
/// let report = try Verifier.compare(computed: logits, shape: [golden.batch, 1000], golden: golden)
/// print(report.text)
/// exit(report.exitCode)                                                  // 0 pass, 1 mismatch
/// ```
public enum Verifier {
    /// Compares two row-major `batch x classes` arrays; each row is a sample. Works for logits and
    /// for features alike (for a feature map `N x C x h x w`, pass `classes = C * h * w`).
    ///
    /// Throws ``VerificationError/Kind/shapeMismatch(name:computed:reference:)`` unless
    /// `computed.count == reference.count == batch * classes` with `batch >= 0` and `classes >= 1`.
    public static func compare(computed: [Float], reference: [Float], batch: Int, classes: Int,
                               criterion: Criterion = .default) throws(VerificationError) -> VerificationReport {
        let (count, overflow) = batch.multipliedReportingOverflow(by: classes)
        guard batch >= 0, classes >= 1, !overflow, computed.count == count, reference.count == count else {
            throw VerificationError(.shapeMismatch(name: GoldenOutput.logits.rawValue, computed: [computed.count],
                                                   reference: [reference.count]))
        }
        return compare(computed: computed, reference: reference, batch: batch, classes: classes, criterion: criterion,
                       output: .logits)
    }

    static func compare(computed: [Float], reference: [Float], batch: Int, classes: Int,
                        criterion: Criterion, output: GoldenOutput,
                        float64Reference: Float64Reference? = nil) -> VerificationReport {
        let metrics = (0..<batch).map { i in
            let rows = i * classes..<(i + 1) * classes
            return SampleMetrics(sample: i, computed: computed[rows], reference: reference[rows], criterion: criterion)
        }
        return VerificationReport(perSample: metrics, classes: classes, criterion: criterion, output: output,
                                  float64Reference: float64Reference)
    }

    /// Compares a computed output of shape `shape` with the golden's `output`. Throws
    /// ``VerificationError`` (exit code 2) when the golden lacks that output or the shapes differ.
    /// A golden holding the output's float64 run (`logits_f64`, ...) adds
    /// ``VerificationReport/float64Reference``.
    public static func compare(computed: [Float], shape: [Int], golden: Golden, output: GoldenOutput = .logits,
                               criterion: Criterion = .default) throws(VerificationError) -> VerificationReport {
        guard let (reference, referenceShape, referenceF64) = golden.output(output) else {
            throw VerificationError(.missingTensor(output.rawValue), file: golden.file)
        }
        guard shape == referenceShape, computed.count == reference.count else {
            throw VerificationError(.shapeMismatch(name: output.rawValue, computed: shape, reference: referenceShape),
                                    file: golden.file)
        }
        let batch = referenceShape[0]
        let classes = reference.count / batch
        var f64: Float64Reference?
        if let referenceF64 {
            f64 = Float64Reference(computed: computed, pytorch: reference, float64: referenceF64, batch: batch, classes: classes)
        }
        return compare(computed: computed, reference: reference, batch: batch, classes: classes, criterion: criterion,
                       output: output, float64Reference: f64)
    }
}
