import ArgumentParser
import Foundation
import Torchport

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a golden file's inputs through the model and compare with PyTorch's outputs.",
        discussion: """
            A golden file holds `input` (N x 3 x H x W) and `logits` (N x C), both float32, written by
            real PyTorch (`torch.save({"input": x, "logits": model(x)})`); a headless backbone's golden
            holds `features` (N x C) instead. Exit status: 0 pass, 1 numerical mismatch, 2 a file
            cannot be used. Default criterion, per sample:
              max|d| <= atol + rtol * max|ref|   (atol 0, rtol 1e-5), and identical top-1
            Example:
              torchport verify resnet50.pth --golden resnet50.golden.pth
              torchport verify model.safetensors --golden g.pth --json --save-logits ours.safetensors
            """)

    @Argument(help: "A checkpoint (.pth / .pt) or a converted .safetensors file.", completion: .file())
    var model: String

    @Option(help: "The golden file (any file Torchport reads) holding `input` and `logits`.", completion: .file())
    var golden: String

    @Option(help: "Absolute tolerance added to the criterion.") var atol = Criterion.defaultAbsoluteTolerance
    @Option(help: "Tolerance relative to the logit scale max|ref| of each sample.") var rtol = Criterion.defaultRelativeTolerance
    @Option(help: "Write the computed outputs to this .safetensors file (tensor `logits`, N x C).", completion: .file())
    var saveLogits: String?
    @Option(help: "Threads (OpenBLAS).") var threads = 2
    @Option(help: "Architecture override for ambiguous state dicts (e.g. resnet50).") var arch: ArchChoice?
    @Flag(help: "Print the report as JSON.") var json = false
    @OptionGroup var reader: ReaderFlags

    func validate() throws {
        if let problem = Criterion(atol: atol, rtol: rtol).validationProblem { throw ValidationError(problem) }
    }

    func run() throws {
        setInferenceThreads(threads)
        let report: VerificationReport = try withExitCode2 {
            try verifyModel(model, golden: golden, criterion: Criterion(atol: atol, rtol: rtol), arch: arch,
                            reader: reader, saveLogits: saveLogits)
        }
        if json {
            print(report.jsonString())
        } else {
            print(report.text)
        }
        if !report.passed { throw ExitCode(report.exitCode) }
    }
}

/// Loads and binds `model`, runs the golden's input through it and compares the outputs with the
/// golden's (shared by `verify` and `convert --golden`). Throws when a file cannot be used.
func verifyModel(_ model: String, golden: String, criterion: Criterion, arch: ArchChoice?, reader: ReaderFlags,
                 saveLogits: String? = nil) throws -> VerificationReport {
    let loaded = try loadModel(model, arch: arch, reader: reader)
    let g = try Golden.load(path: golden)
    let input = FeatureMap(n: g.inputShape[0], c: g.inputShape[1], h: g.inputShape[2], w: g.inputShape[3], data: g.input)
    let output: GoldenOutput = loaded.model.fc == nil ? .features : .logits
    let computed = try loaded.model(input)
    let shape = [input.n, loaded.model.outputWidth]
    if let saveLogits {
        try SafeTensorsWriter.writeAtomically(
            [.init(name: "logits", dtype: .float32, shape: shape, bytes: computed.withUnsafeBytes { Array($0) })],
            metadata: ["format": "torchport", "model": model, "golden": golden, "output": output.rawValue],
            to: saveLogits)
    }
    return try Verifier.compare(computed: computed, shape: shape, golden: g, output: output, criterion: criterion)
}
