import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import Torchport
import TorchportCore

struct Convert: ParsableCommand {
    /// Smaller inputs convert in a blink: no progress display.
    static let progressMinimumBytes = 16 << 20

    static let configuration = CommandConfiguration(
        abstract: "Convert a checkpoint of any model to a .safetensors file under its state-dict names, checked against the source.",
        discussion: """
            Reads any checkpoint Torchport reads (zip, legacy, TorchScript, a whole-model pickle, \
            Lightning .ckpt, Hugging Face .bin, or a .safetensors), finds the model's state dict \
            (wrappers such as model / state_dict unwrapped and prefixes module. / _orig_mod. \
            stripped where nothing else sits beside them; each decision printed), and writes every \
            tensor under the name model.state_dict() gives, so load_state_dict(strict=True) takes \
            the file. A training checkpoint's optimizer state is dropped (and listed); its other \
            values (epoch, args, hyper-parameters, classes) are kept as JSON in the metadata \
            (torchport.checkpoint.<key>, torchport.classes). --include / --exclude choose tensors \
            by glob pattern on their state-dict names. The metadata holds format=pt (the \
            safetensors convention) and Torchport's keys under torchport. (source_sha256, \
            source_format, dtype, converter_version, mapping, parameters; for a ResNet also arch \
            and num_classes). --golden and --arch apply to ResNets only. Values are bit-identical \
            to the source unless --dtype casts them (as torch's .half() / .bfloat16() round: to \
            nearest, ties to even; integer tensors are kept as they are).

            The file is written under a temporary name next to OUT, read back and compared with the \
            source (name, dtype, shape and every byte of every tensor), verified against --golden if \
            given, and only then renamed to OUT. On any failure, or Ctrl-C, nothing is left behind \
            and an existing OUT is untouched. The input is only ever read. An OUT that is an existing \
            directory receives OUT/<stem>.safetensors, as cp would.

            Exit status: 0 written, 1 the written file failed its check or the golden verification, \
            2 unusable input or refused output (OUT exists without --force, or OUT is the input).

            Many inputs: give several, or a directory (its .pth, .pt, .ckpt and .bin files, not recursive, \
            sorted; *.golden.* files left out). OUT is then a directory (created if absent) and \
            each input <stem>.<ext> is written to OUT/<stem>.safetensors; --golden, if given, is \
            a directory holding <stem>.golden.pth (or .golden.pt, .golden.safetensors) for every \
            input, and an input without one fails ("no golden"). Up to --jobs conversions run at \
            once, each as safe as a single one. Every input is tried; one line is printed per file \
            written, the inputs that failed are listed at the end on stderr, and the exit status is \
            the worst of them (2 if any input was unusable or refused, else 1 if any failed its \
            check). On a terminal, progress is shown on stderr. --json prints one object with a \
            `results` array and the counts.

            Examples:
              torchport convert resnet50.pth -o resnet50.safetensors
              torchport convert ckpt.pth -o r50-fp16.safetensors --dtype float16 --golden g.pth --rtol 1e-2
              torchport convert model.pth -o model.safetensors --force --json
              torchport convert checkpoints/ -o converted/ --golden goldens/ --jobs 2
              torchport convert train.pth -o backbone.safetensors --exclude 'head.*' --exclude 'fc.*'
            """)

    @Argument(help: "A .pth / .pt checkpoint (zip, legacy or TorchScript) or a .safetensors file; or several, or directories of them.",
              completion: .file())
    var inputs: [String]

    @Option(name: .shortAndLong, help: "The .safetensors file to write; with many inputs, the directory to write them to.",
            completion: .file())
    var output: String

    @Option(help: "Write floating-point weights as float32, float16 or bfloat16 (default: keep each tensor's dtype).")
    var dtype: DTypeChoice?

    @Flag(help: "Replace OUT if it exists (never the input itself).")
    var force = false

    @Option(help: "Architecture override for ambiguous state dicts (e.g. resnet50).")
    var arch: ArchChoice?

    @Option(name: .customLong("include"), help: ArgumentHelp("Keep only the tensors whose state-dict name matches this glob (repeatable).", valueName: "pattern"))
    var includes: [String] = []

    @Option(name: .customLong("exclude"), help: ArgumentHelp("Leave out the tensors whose state-dict name matches this glob (repeatable).", valueName: "pattern"))
    var excludes: [String] = []

    @Option(help: "Verify the written file against this golden file (see `torchport verify`) before keeping it (ResNets only: another model fails with 'no ResNet found').",
            completion: .file())
    var golden: String?

    /// With --golden: the criterion (try --rtol 1e-2 with --dtype float16).
    @OptionGroup var tolerance: ToleranceFlags
    @Option(help: "With --golden: threads for inference.") var threads = 2

    @Option(help: ArgumentHelp("Write Hugging Face's sharded layout into the folder OUT: shards of at most this much tensor data (5MB, 2GB, 1GiB, or bytes) and model.safetensors.index.json (one model.safetensors when all fits).", valueName: "size"))
    var maxShardSize: String?

    @Flag(help: "fsync the written file and its folder before it takes the output's name (survives a power loss).")
    var sync = false

    @Flag(help: "Print a JSON summary instead of text.")
    var json = false

    @Option(help: "With many inputs: how many conversions to run at once.") var jobs = 2
    @Flag(inversion: .prefixedNo, help: "With many inputs: show progress on stderr (default: only when stderr is a terminal).")
    var progress: Bool?

    @OptionGroup var reader: ReaderFlags

    /// Several inputs, or a directory of them.
    /// (A folder that is one checkpoint, sharded or distributed, is one input.)
    var many: Bool { inputs.count > 1 || anyDirectory(inputs.filter { !Self.isMultiFileCheckpoint($0) }) }

    /// A Hugging Face sharded folder or index, or a `torch.distributed.checkpoint` folder.
    static func isMultiFileCheckpoint(_ path: String) -> Bool {
        switch CheckpointLayout.detect(path) {
        case .shardedIndex?, .distributed?: true
        default: false
        }
    }
    var input: String { inputs[0] }
    /// The file one input is written to: OUT, or OUT/<stem>.safetensors when OUT is a directory.
    var target: String {
        maxShardSize != nil ? output : isDirectory(output) ? (output as NSString).appendingPathComponent(fileStem(input) + ".safetensors") : output
    }

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one input") }
        try requireAtLeast([("--jobs", jobs, 1), ("--threads", threads, 1)])
        if let maxShardSize {
            guard Self.parseSize(maxShardSize) != nil else {
                throw ValidationError("--max-shard-size \(maxShardSize): give a positive size such as 5MB, 2GB, 1GiB or a byte count")
            }
            if many { throw ValidationError("--max-shard-size writes one model's shards: give one input") }
            if golden != nil { throw ValidationError("--golden verifies one file: leave out --max-shard-size") }
        }
        if many {
            if FileManager.default.fileExists(atPath: output), !isDirectory(output) {
                throw ValidationError("with several inputs (or a directory), -o must be a directory; '\(output)' is a file")
            }
            if let golden, !isDirectory(golden) {
                throw ValidationError("with several inputs (or a directory), --golden must be a directory holding <stem>.golden.pth for each input; '\(golden)' is not one")
            }
        }
    }

    func run() throws {
        removeFilesOnSignals()
        if many { return try runMany() }
        let output = target

        let options = conversionOptions
        let display = ProgressMeter(textEnabled: isatty(STDERR_FILENO) == 1 && inputSize() >= Self.progressMinimumBytes)
        var verification: VerificationReport?
        let summary: ConversionSummary
        do {
            summary = try convertCheckpoint(from: input, to: output, options: options, progress: display.conversion) { written in
                guard let golden else { return }
                display.show("converting: verifying against \(golden)")
                let report = try verifyModel(written, golden: golden, criterion: tolerance.criterion,
                                             arch: arch, reader: reader, executor: Executor(threads: threads))
                verification = report
                if !report.passed { throw GoldenMismatch(report: report) }
            }
            display.clear()
        } catch let mismatch as GoldenMismatch {
            display.clear()
            if json {
                try printJSON(ConvertJSON(failed: output, error: "golden verification failed; nothing written",
                                          verification: mismatch.report))
            } else {
                print(mismatch.report.text)
            }
            FileHandle.standardError.write(Data("error: \(output): golden verification failed; nothing written\n".utf8))
            throw ExitCode(ExitStatus.mismatch)
        } catch let e as ConversionError where e.kind.isCheckFailure {
            display.clear()
            FileHandle.standardError.write(Data("error: \(e.description); nothing written\n".utf8))
            throw ExitCode(ExitStatus.mismatch)
        } catch {
            display.clear()
            reportFailure(error, json: json, verbose: reader.verbose, file: input)
            throw ExitCode(ExitStatus.unusableFile)
        }

        if json {
            try printJSON(ConvertJSON(summary, verification: verification))
        } else {
            print(text(summary, verification: verification))
        }
    }

    /// The options every conversion of this command uses.
    var conversionOptions: ConversionOptions {
        var options = ConversionOptions(dtype: dtype?.target, force: force, architecture: arch?.architecture,
                                        reader: reader.options, durable: sync)
        options.include = includes.map(NamePattern.init)
        options.exclude = excludes.map(NamePattern.init)
        options.maxShardBytes = maxShardSize.flatMap(Self.parseSize)
        return options
    }

    /// `5MB` (5,000,000 bytes, as Hugging Face counts), `2GB`, `1GiB` (2^30), `500KB`, `123` (bytes).
    static func parseSize(_ text: String) -> Int? {
        let units: [(String, Int)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("TIB", 1 << 40),
                                      ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000),
                                      ("B", 1)]
        let upper = text.trimmingCharacters(in: .whitespaces).uppercased()
        var number = upper, scale = 1
        for (suffix, factor) in units where upper.hasSuffix(suffix) {
            number = String(upper.dropLast(suffix.count)).trimmingCharacters(in: .whitespaces)
            scale = factor
            break
        }
        guard let value = Double(number), value.isFinite, value > 0 else { return nil }
        let bytes = value * Double(scale)
        guard bytes >= 1, bytes < 9e18 else { return nil }
        return Int(bytes)
    }

    private func inputSize() -> Int {
        (try? FileManager.default.attributesOfItem(atPath: input)[.size] as? Int) ?? 0
    }

    /// `wrote OUT: resnet50, 1000 classes, 320 tensors, ... in 0.52 s`, or for another model
    /// `wrote OUT: state dict, 2.2M parameters, 158 tensors, ...`
    func headline(_ s: ConversionSummary) -> String {
        let model = s.architecture.map { arch in
            "\(arch), " + (s.numClasses.map { "\($0) classes" } ?? "headless (features)")
        } ?? "state dict, \(StateDictSelection.describeParameters(s.parameters))"
        return "wrote \(s.output): \(model)"
            + ", \(s.tensors) tensors, \(s.bytes) bytes (\(InspectReport.humanBytes(s.bytes))) \(s.dtype?.rawValue ?? "mixed")"
            + (s.castTensors > 0 ? " (\(s.castTensors) cast)" : "")
            + String(format: " in %.2f s", s.seconds)
    }

    private func text(_ s: ConversionSummary, verification: VerificationReport?) -> String {
        var lines = [
            headline(s),
            "source:    \(s.input) (\(s.sourceFormat.rawValue)), sha256 \(s.sourceSHA256)",
            "mapping:",
        ]
        lines += s.decisions.map { "  - \($0)" }
        if !s.files.isEmpty { lines.append("files:     " + s.files.joined(separator: ", ")) }
        lines.append("checked:   read back; name, dtype, shape and every byte of every tensor match the source"
                     + (s.castTensors > 0 ? " (after the cast)" : ""))
        if let verification {
            lines.append("golden:    \(golden ?? "")")
            lines.append(verification.text)
        }
        return lines.joined(separator: "\n")
    }
}

extension Convert {
    /// The outcome for one of many inputs.
    enum Outcome: Sendable {
        case converted(ConversionSummary, VerificationReport?)
        /// The written file failed its check or the golden verification: exit 1.
        case failedCheck(String, VerificationReport?)
        /// Unusable input or refused output: exit 2.
        case unusable(String)

        var error: String? {
            switch self {
            case .converted: nil
            case .failedCheck(let message, _), .unusable(let message): message
            }
        }
    }

    struct ManyJSON: Encodable {
        let results: [ConvertJSON]
        let total: Int
        let converted: Int
        let failedCheck: Int
        let unusable: Int
    }

    func runMany() throws {
        let expanded = expandInputs(inputs, extensions: ["pth", "pt", "ckpt", "bin"], recursive: false, skip: isGoldenName)
        let files = expanded.files
        let total = files.count + expanded.failures.count
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        } catch {
            FileHandle.standardError.write(Data("error: \(output): cannot create the directory: \(error.localizedDescription)\n".utf8))
            throw ExitCode(ExitStatus.unusableFile)
        }
        let outputs = files.map { (output as NSString).appendingPathComponent(fileStem($0) + ".safetensors") }
        // Two inputs with the same stem would write the same file: the later ones fail.
        var firstWith: [String: String] = [:]
        var clashes: [String?] = []
        for (file, out) in zip(files, outputs) {
            if let first = firstWith[out] {
                clashes.append("\(out) is also the output of \(first); rename one of them")
            } else {
                firstWith[out] = file
                clashes.append(nil)
            }
        }
        let clash = clashes
        let goldens: [String?] = files.map { file in self.golden.flatMap { goldenFile(for: file, in: $0) } }

        let options = conversionOptions
        let criterion = tolerance.criterion
        let (golden, arch, reader, threads) = (self.golden, self.arch, self.reader, self.threads)
        let meter = ProgressMeter(total: files.count, enabled: progressEnabled(progress))

        var outcomes: [Outcome] = []
        runConcurrently(count: files.count, jobs: jobs, work: { i in
            let outcome = Self.convertOne(files[i], to: outputs[i], clash: clash[i], golden: golden, goldenFile: goldens[i],
                                          options: options, criterion: criterion, arch: arch, reader: reader,
                                          threads: threads)
            meter.advance(name: files[i])
            return outcome
        }, done: { i, outcome in
            outcomes.append(outcome)
            guard !json, case .converted(let s, let verification) = outcome else { return }
            meter.clear()
            let line = self.headline(s) + (verification.map { "; golden \($0.verdictLine)" } ?? "")
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        })
        meter.finish()

        var failures = expanded.failures
        var converted = 0, failedCheck = 0, unusable = expanded.failures.count
        for (file, outcome) in zip(files, outcomes) {
            switch outcome {
            case .converted: converted += 1
            case .failedCheck(let message, _):
                failedCheck += 1
                failures.append(BatchFailure(name: file, error: message))
            case .unusable(let message):
                unusable += 1
                failures.append(BatchFailure(name: file, error: message))
            }
        }
        if json {
            var items = expanded.failures.map { ConvertJSON(failedInput: $0.name, output: nil, error: $0.error, verification: nil) }
            for (i, outcome) in outcomes.enumerated() {
                switch outcome {
                case .converted(let s, let v): items.append(ConvertJSON(s, verification: v))
                case .failedCheck(let message, let v):
                    items.append(ConvertJSON(failedInput: files[i], output: outputs[i], error: message, verification: v))
                case .unusable(let message):
                    items.append(ConvertJSON(failedInput: files[i], output: outputs[i], error: message, verification: nil))
                }
            }
            try printJSON(ManyJSON(results: items, total: total, converted: converted, failedCheck: failedCheck,
                                        unusable: unusable))
        } else {
            print("converted \(converted) of \(total) into \(output)")
        }
        if !failures.isEmpty {
            writeFailureSummary("\(failures.count) of \(total) failed:", failures)
        }
        if unusable > 0 { throw ExitCode(ExitStatus.unusableFile) }
        if failedCheck > 0 { throw ExitCode(ExitStatus.mismatch) }
    }

    /// One conversion of many, as safe as a single one; every error becomes an outcome. With a
    /// golden, the written file is verified on an executor of `threads` threads of its own (--jobs
    /// conversions run side by side).
    static func convertOne(_ input: String, to output: String, clash: String?, golden: String?, goldenFile: String?,
                           options: ConversionOptions, criterion: Criterion?, arch: ArchChoice?,
                           reader: ReaderFlags, threads: Int) -> Outcome {
        if let clash { return .unusable(clash) }
        if let golden, goldenFile == nil {
            return .unusable("no golden: \((golden as NSString).appendingPathComponent(fileStem(input) + ".golden.pth")) does not exist; nothing written")
        }
        var verification: VerificationReport?
        do {
            let summary = try convertCheckpoint(from: input, to: output, options: options, progress: nil) { written in
                guard let goldenFile else { return }
                let report = try verifyModel(written, golden: goldenFile, criterion: criterion, arch: arch, reader: reader,
                                             executor: Executor(threads: threads))
                verification = report
                if !report.passed { throw GoldenMismatch(report: report) }
            }
            return .converted(summary, verification)
        } catch let mismatch as GoldenMismatch {
            return .failedCheck("golden verification failed (\(mismatch.report.verdictLine)); nothing written",
                                mismatch.report)
        } catch let e as ConversionError where e.kind.isCheckFailure {
            return .failedCheck("\(e.description); nothing written", nil)
        } catch {
            return .unusable(describe(error, verbose: reader.verbose))
        }
    }
}

/// `--dtype` choices.
enum DTypeChoice: String, ExpressibleByArgument, CaseIterable {
    case float32, float16, bfloat16

    var target: ConversionOptions.TargetDType {
        switch self {
        case .float32: .float32
        case .float16: .float16
        case .bfloat16: .bfloat16
        }
    }
}

/// The golden verification of the written file failed (thrown from the validation hook).
struct GoldenMismatch: Error {
    let report: VerificationReport
}

extension ConversionError.Kind {
    var isCheckFailure: Bool {
        if case .checkFailed = self { return true }
        return false
    }
}

/// `--json`: the summary, or on a golden mismatch the report and the error.
struct ConvertJSON: Encodable {
    var ok: Bool
    var output: String
    var input: String?
    var tensors: Int?
    var bytes: Int?
    var fileBytes: Int?
    var dtype: String?
    var castTensors: Int?
    var arch: String?
    var numClasses: Int?
    var parameters: Int?
    var keptValues: [String]?
    /// With --max-shard-size: the files written in the output folder.
    var files: [String]?
    var sourceSha256: String?
    var sourceFormat: String?
    var mapping: [String]?
    var metadata: [String: String]?
    var seconds: Double?
    var verification: VerificationReport?
    var error: String?

    init(_ s: ConversionSummary, verification: VerificationReport?) {
        ok = true
        output = s.output
        input = s.input
        tensors = s.tensors
        bytes = s.bytes
        fileBytes = s.fileBytes
        dtype = s.dtype?.rawValue ?? "mixed"
        castTensors = s.castTensors
        arch = s.architecture?.description
        numClasses = s.numClasses
        parameters = s.parameters
        keptValues = s.keptValues
        files = s.files.isEmpty ? nil : s.files
        sourceSha256 = s.sourceSHA256
        sourceFormat = s.sourceFormat.rawValue
        mapping = s.decisions.map(\.description)
        metadata = s.metadata
        seconds = s.seconds
        self.verification = verification
    }

    init(failed output: String, error: String, verification: VerificationReport) {
        ok = false
        self.output = output
        self.error = error
        self.verification = verification
    }

    /// One failed input of many (`output` nil when none was planned: an argument that is not there).
    init(failedInput input: String, output: String?, error: String, verification: VerificationReport?) {
        ok = false
        self.input = input
        self.output = output ?? ""
        self.error = error
        self.verification = verification
    }
}

/// The signals after which `convert` removes its files before dying of them.
private let cleanedUpSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM,
                                         SIGPROF, SIGXCPU, SIGXFSZ, SIGPIPE]

/// The write end of the pipe the signal handler writes to (set once, before any handler runs).
nonisolated(unsafe) private var signalPipe: Int32 = -1

/// On a signal whose default action ends the process (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
/// SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ, SIGPIPE): remove what the conversion
/// has written so far, then die of the signal as usual. The handler only writes the signal number to a pipe (async-signal-safe); a
/// thread reading it does the cleanup. (libdispatch's signal sources miss signals on Linux unless
/// every thread blocks them, and OpenBLAS starts its threads before `main`.) A signal that was
/// ignored when the process started (e.g. SIGINT for a background job) stays ignored; one that
/// was blocked is unblocked.
/// Set by the signal handler (before anything else): a fatal signal is being handled, and the
/// process must die of it, not exit on its own in the meantime (the cleanup removes the staging
/// file, which the conversion, still running, would otherwise report as an error, exit 2).
private let fatalSignalArrived = Atomic<Int32>(0)

/// Blocks for good once a fatal signal is being handled: the cleanup thread re-raises it, which
/// ends the process. Called by the CLI before it exits, whatever the outcome.
func waitIfDyingOfSignal() {
    while fatalSignalArrived.load(ordering: .acquiring) != 0 { pause() }
}

private func removeFilesOnSignals() {
    var fds: [Int32] = [-1, -1]
    guard pipe(&fds) == 0 else { return }
    signalPipe = fds[1]
    let readEnd = fds[0]
    Thread.detachNewThread {
        var sig: Int32 = 0
        while read(readEnd, &sig, MemoryLayout<Int32>.size) != MemoryLayout<Int32>.size {
            if errno != EINTR { return }
        }
        ConversionCleanup.removeFilesInProgress()
        signal(sig, SIG_DFL)
        kill(getpid(), sig)
    }
    // A parent may hand down these signals blocked (Foundation's `Process` does): unblock them.
    var handled = sigset_t()
    sigemptyset(&handled)
    for sig in cleanedUpSignals { sigaddset(&handled, sig) }
    pthread_sigmask(SIG_UNBLOCK, &handled, nil)
    for sig in cleanedUpSignals {
        let previous = signal(sig) { sig in
            fatalSignalArrived.store(1, ordering: .releasing)
            var s = sig
            _ = write(signalPipe, &s, MemoryLayout<Int32>.size)
        }
        if let previous, unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) {
            signal(sig, SIG_IGN)
        }
    }
}
