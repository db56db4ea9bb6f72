import ArgumentParser
import Foundation
import Torchport
import TorchportCore

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a golden file's inputs through the model and compare with PyTorch's outputs.",
        discussion: """
            A golden file holds `input` (N x 3 x H x W) and `logits` (N x C), both float32, written by \
            real PyTorch (`torch.save({"input": x, "logits": model(x)})`); a headless backbone's golden \
            holds `features` (N x C) instead. Exit status: 0 pass, 1 numerical mismatch, 2 a file \
            cannot be used. Default criterion, per sample:
              max|d| <= atol + rtol * max|ref|   (atol 0, rtol 1e-5), and identical top-1
            (weights stored in float16 or bfloat16 get torch.testing.assert_close's tolerances for \
            that dtype; a golden with `logits_f64` also passes an output within 4x PyTorch's own \
            float32 distance from it). A golden with `intermediates` (scripts/make_golden.py) has \
            every module output the engine computes compared too: a per-layer table, the first \
            layer beyond tolerance and whether the error grows from there; --plot draws it.

            Many models: give several, or a directory (its .pth, .pt and .safetensors files, not \
            recursive, sorted; *.golden.* files left out). --golden is then a directory holding \
            <stem>.golden.pth (or .golden.pt, .golden.safetensors) for each model <stem>.<ext>, \
            or one golden file that every model is compared with (variants of one model). \
            Up to --jobs models are verified at once (each with --threads threads). One line is \
            printed per model, then the counts; every model is tried, and the ones that failed are \
            listed at the end on stderr. On a terminal, progress is shown on stderr. --json prints \
            one object with a `results` array and the counts. Exit status: 0 all pass, 1 a \
            numerical mismatch (and no unusable file), 2 a file cannot be used.

            Examples:
              torchport verify resnet50.pth --golden resnet50.golden.pth
              torchport verify model.safetensors --golden g.pth --json --save-logits ours.safetensors
              torchport verify converted/ --golden goldens/ --jobs 2
              torchport verify resnet50.pth --golden layers.golden.pth --plot layers.svg
            """)

    @Argument(help: "Checkpoints (.pth / .pt) or converted .safetensors files, or directories of them.",
              completion: .file())
    var models: [String]

    @Option(help: "The golden file (any file Torchport reads) holding `input` and `logits`; with many models, a directory of <stem>.golden.pth files, or one golden for all.",
            completion: .file())
    var golden: String

    @OptionGroup var tolerance: ToleranceFlags
    @Option(help: "Write the computed outputs to this .safetensors file (tensor `logits`, N x C).", completion: .file())
    var saveLogits: String?
    @Option(help: "Draw the per-layer relative errors (the golden must hold intermediates) into this SVG file.",
            completion: .file())
    var plot: String?
    @Flag(help: "Replace an existing --save-logits or --plot file.") var force = false
    @Option(help: "Inference threads of each model (a persistent pool per model; OpenBLAS runs single-threaded inside each).") var threads = 2
    @Option(help: "Architecture override for ambiguous state dicts (e.g. resnet50).") var arch: ArchChoice?
    @Flag(help: "Print the report as JSON.") var json = false
    @Option(help: "With many models: how many to verify at once.") var jobs = 1
    @Flag(inversion: .prefixedNo, help: "Show progress on stderr (default: only when stderr is a terminal).")
    var progress: Bool?
    @OptionGroup var reader: ReaderFlags
    @OptionGroup var engineFlags: EngineFlags

    /// Several models, or a directory of them.
    /// (A folder that is one checkpoint, sharded or distributed, is one model.)
    var many: Bool { models.count > 1 || anyDirectory(models.filter { !Convert.isMultiFileCheckpoint($0) }) }
    var model: String { models[0] }

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give at least one model") }
        try requireAtLeast([("--jobs", jobs, 1), ("--threads", threads, 1)])
        if many {
            guard FileManager.default.fileExists(atPath: golden) else {
                throw ValidationError("--golden '\(golden)' does not exist (with several models: a directory of <stem>.golden.pth files, or one golden for all)")
            }
            guard saveLogits == nil else { throw ValidationError("--save-logits takes a single model") }
        }
        if let saveLogits { try checkOutputFile(saveLogits, option: "--save-logits", force: force) }
        if let plot {
            guard !many else { throw ValidationError("--plot takes a single model") }
            try checkOutputFile(plot, option: "--plot", force: force)
        }
    }

    func run() throws {
        if many { return try runMany() }
        let report: VerificationReport = try withExitCode2(json: json, verbose: reader.verbose, file: model) {
            try verifyModel(model, golden: golden, criterion: tolerance.criterion, arch: arch,
                            reader: reader, engine: engineFlags.engine, executor: Executor(threads: threads),
                            saveLogits: saveLogits)
        }
        if let plot {
            try withExitCode2(json: json, file: golden) {
                guard let layers = report.layers else { throw PlotError.noIntermediates(golden) }
                let title = "\((model as NSString).lastPathComponent) against \((golden as NSString).lastPathComponent)"
                    + (report.engine.map { " (\($0.rawValue) engine)" } ?? "")
                try Data(layers.svg(title: title).utf8).write(to: URL(fileURLWithPath: plot), options: .atomic)
            }
        }
        if json {
            print(report.jsonString())
        } else {
            print(report.text)
        }
        if !report.passed { throw ExitCode(report.exitCode) }
    }

    /// Why `--plot` has nothing to draw.
    enum PlotError: LocalizedError {
        case noIntermediates(String)
        var errorDescription: String? {
            switch self {
            case .noIntermediates(let golden):
                "\(golden) holds no intermediates: --plot needs a golden with module outputs (scripts/make_golden.py)"
            }
        }
    }
}

extension Verify {
    /// The outcome for one of many models.
    enum Outcome: Sendable {
        case report(VerificationReport)
        case unusable(String)
    }

    struct ManyJSON: Encodable {
        struct Item: Encodable {
            let model: String
            let golden: String?
            let passed: Bool
            let error: String?
            let report: VerificationReport?
        }
        let results: [Item]
        let total: Int
        let passed: Int
        let mismatched: Int
        let unusable: Int
    }

    func runMany() throws {
        let expanded = expandInputs(models, extensions: ["pth", "pt", "safetensors"], recursive: false,
                                    skip: isGoldenName)
        let files = expanded.files
        let total = files.count + expanded.failures.count
        let criterion = tolerance.criterion
        let (golden, arch, reader, threads) = (self.golden, self.arch, self.reader, self.threads)
        // A directory: each model's own golden; a file: the one golden every model is compared with.
        let goldens = isDirectory(golden) ? files.map { goldenFile(for: $0, in: golden) } : files.map { _ in golden }
        let meter = ProgressMeter(total: files.count, enabled: progressEnabled(progress))
        let width = files.map(\.count).max() ?? 0

        var outcomes: [Outcome] = []
        runConcurrently(count: files.count, jobs: jobs, work: { i in
            let outcome: Outcome
            if let g = goldens[i] {
                do {
                    // Each model on executors of its own: --jobs models run side by side.
                    outcome = .report(try verifyModel(files[i], golden: g, criterion: criterion, arch: arch,
                                                      reader: reader, engine: engineFlags.engine,
                                                      executor: Executor(threads: threads)))
                } catch {
                    outcome = .unusable(describe(error, verbose: reader.verbose))
                }
            } else {
                outcome = .unusable("no golden: \((golden as NSString).appendingPathComponent(fileStem(files[i]) + ".golden.pth")) does not exist")
            }
            meter.advance(name: files[i])
            return outcome
        }, done: { i, outcome in
            outcomes.append(outcome)
            guard !json else { return }
            meter.clear()
            let name = files[i].padding(toLength: width, withPad: " ", startingAt: 0)
            let line = switch outcome {
            case .report(let r): "\(r.passed ? "PASS " : "FAIL ") \(name)  \(r.verdictLine.dropFirst(6))"
            case .unusable(let message): "ERROR \(name)  \(message)"
            }
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        })
        meter.finish()

        var failures = expanded.failures
        var passed = 0, mismatched = 0, unusable = expanded.failures.count
        for (file, outcome) in zip(files, outcomes) {
            switch outcome {
            case .report(let r) where r.passed: passed += 1
            case .report(let r):
                mismatched += 1
                failures.append(BatchFailure(name: file, error: "numerical mismatch: \(r.verdictLine)"))
            case .unusable(let message):
                unusable += 1
                failures.append(BatchFailure(name: file, error: message))
            }
        }
        if json {
            var items = expanded.failures.map {
                ManyJSON.Item(model: $0.name, golden: nil, passed: false, error: $0.error, report: nil)
            }
            for (i, outcome) in outcomes.enumerated() {
                switch outcome {
                case .report(let r):
                    items.append(.init(model: files[i], golden: goldens[i], passed: r.passed,
                                       error: r.passed ? nil : "numerical mismatch", report: r))
                case .unusable(let message):
                    items.append(.init(model: files[i], golden: goldens[i], passed: false, error: message, report: nil))
                }
            }
            try printJSON(ManyJSON(results: items, total: total, passed: passed, mismatched: mismatched,
                                        unusable: unusable))
        } else {
            print("\(passed) of \(total) passed" + (mismatched > 0 ? ", \(mismatched) numerical mismatch" : "")
                  + (unusable > 0 ? ", \(unusable) unusable" : ""))
        }
        if !failures.isEmpty {
            writeFailureSummary("\(failures.count) of \(total) failed:", failures)
        }
        if unusable > 0 { throw ExitCode(ExitStatus.unusableFile) }
        if mismatched > 0 { throw ExitCode(ExitStatus.mismatch) }
    }
}

/// Loads and binds `model`, runs the golden's input through it and compares the outputs with the
/// golden's (shared by `verify` and `convert --golden`), on `executor`. Throws when a file cannot be used.
func verifyModel(_ model: String, golden: String, criterion: Criterion?, arch: ArchChoice?, reader: ReaderFlags,
                 engine: InferenceEngine? = nil, executor: Executor, saveLogits: String? = nil) throws -> VerificationReport {
    let loaded = try loadModel(model, arch: arch, reader: reader, engine: engine, executor: executor)
    let g = try Golden.load(path: golden)
    let (report, computed) = try Verifier.run(loaded, against: g, criterion: criterion)
    if let saveLogits {
        try SafeTensorsWriter.writeAtomically(
            [.init(name: "logits", dtype: .float32, shape: computed.shape, bytes: computed.values.withUnsafeBytes { Array($0) })],
            metadata: ["format": "pt", "torchport.model": model, "torchport.golden": golden,
                       "torchport.output": report.output.rawValue],
            to: saveLogits)
    }
    return report
}
