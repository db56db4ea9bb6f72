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
    /// Throws `InputError` when the golden's input does not fit the model, ``VerificationError``
    /// when the golden lacks the output or its shape differs.
    public static func verify(_ model: ResNetModel, against golden: Golden,
                              criterion: Criterion = .default) throws -> VerificationReport {
        try run(model, against: golden, criterion: criterion).report
    }

    /// ``verify(_:against:criterion:)``, with the model's output too (to save it).
    public static func run(_ model: ResNetModel, against golden: Golden,
                           criterion: Criterion = .default) throws -> (report: VerificationReport, output: ModelOutput) {
        let input = try FeatureMap(shape: golden.inputShape, data: golden.input)
        let which: GoldenOutput = model.architecture.numClasses == nil ? .features : .logits
        let output = try model(input)
        var report = try compare(computed: output.values, shape: output.shape, golden: golden, output: which,
                                 criterion: criterion)
        report.engine = model.engine
        report.interpret(weightDType: model.storedDType)
        return (report, output)
    }
}
