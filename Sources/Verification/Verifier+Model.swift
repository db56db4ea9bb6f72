import ResNet
import TorchportCore

extension Verifier {
    /// Runs `golden`'s input through `model` and compares the output with the golden's (logits,
    /// or features for a headless backbone) under `criterion`: the report names the engine and,
    /// for a failure, what it may mean (``VerificationReport/notes``).
    ///
    /// ```swift
    /// let model = try ResNetModel(contentsOf: URL(fileURLWithPath: "resnet18.pth"))
    /// let golden = try Golden.load(contentsOf: URL(fileURLWithPath: "resnet18.golden.pth"))
    /// let report = try Verifier.verify(model, against: golden)
    /// print(report.text)      // exit(report.exitCode): 0 pass, 1 mismatch
    /// ```
    ///
    /// A golden that holds `intermediates` (`scripts/make_golden.py`) has every module output the
    /// engine computes compared too (`LayerReport`): the report then names the first layer beyond
    /// tolerance, and passes only if there is none.
    ///
    /// Throws `InputError` when the golden's input does not fit the model, ``VerificationError``
    /// when the golden lacks the output or its shape differs.
    ///
    /// `criterion` nil: the default (`rtol 1e-5` of the logit scale), or for weights stored in
    /// float16 or bfloat16 the tolerances `torch.testing.assert_close` uses for that dtype
    /// (``Criterion/assertCloseDefaults(for:)``), announced in ``VerificationReport/toleranceSource``.
    public static func verify(_ model: ResNetModel, against golden: Golden,
                              criterion: Criterion? = nil) throws -> VerificationReport {
        try run(model, against: golden, criterion: criterion).report
    }

    /// ``verify(_:against:criterion:)``, with the model's output too (to save it).
    public static func run(_ model: ResNetModel, against golden: Golden,
                           criterion: Criterion? = nil) throws -> (report: VerificationReport, output: ModelOutput) {
        let input = try FeatureMap(shape: golden.inputShape, data: golden.input)
        let which: GoldenOutput = model.architecture.numClasses == nil ? .features : .logits
        let output = try model(input)
        let stored = model.storedDType
        let dtypeDefaults = stored.flatMap { Criterion.assertCloseDefaults(for: $0) }
        let chosen = criterion ?? dtypeDefaults ?? .default
        var report = try compare(computed: output.values, shape: output.shape, golden: golden, output: which,
                                 criterion: chosen)
        if criterion != nil {
            report.toleranceSource = "given"
        } else if let stored, dtypeDefaults != nil {
            report.toleranceSource = "\(stored.rawValue) weights: torch.testing.assert_close's \(stored.rawValue) tolerances"
        }
        report.engine = model.engine
        if !golden.intermediates.isEmpty {
            report.attach(layers: LayerReport(traced: try model.trace(input), intermediates: golden.intermediates,
                                              criterion: chosen))
        }
        report.interpret(weightDType: model.storedDType)
        return (report, output)
    }
}
