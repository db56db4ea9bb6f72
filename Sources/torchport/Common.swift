import ArgumentParser
import Foundation
import Torchport
import TorchportCore

/// `--arch` choices: torchvision's ten ResNets.
enum ArchChoice: String, ExpressibleByArgument, CaseIterable {
    case resnet18, resnet34, resnet50, resnet101, resnet152
    case resnext50_32x4d, resnext101_32x8d, resnext101_64x4d
    case wide_resnet50_2, wide_resnet101_2

    var architecture: ResNetArchitecture? { ResNetArchitecture.named[rawValue] }
}

/// Loads and binds a model, for commands that run one, its forward passes on `executor` (each
/// command builds one from its `--threads`).
func loadModel(_ path: String, arch: ArchChoice?, reader: ReaderFlags, engine: InferenceEngine? = nil,
               executor: Executor) throws -> ResNetModel {
    try ResNetModel(contentsOf: path, architecture: arch?.architecture, engine: engine, options: reader.options,
                    executor: executor)
}

extension InferenceEngine: ExpressibleByArgument {}

/// `--engine`, for the commands that run a model.
struct EngineFlags: ParsableArguments {
    @Option(help: "Inference engine: packed (Torchport's AVX-512 or AVX2 kernels; TORCHPORT_ISA=avx512|avx2|reference forces one) or reference (im2col + OpenBLAS). Default: the fastest this CPU runs.")
    var engine: InferenceEngine?
}

/// Runs `body`; a failure to read or bind a file is printed and exits with status 2 (unusable file),
/// keeping status 1 for numerical mismatches. `verbose`: a binding error lists every key.
/// `json`: standard output gets one JSON document for the failure too (``ErrorJSON``).
func withExitCode2<T>(json: Bool = false, verbose: Bool = false, file: String? = nil, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        reportFailure(error, json: json, verbose: verbose, file: file)
        throw ExitCode(2)
    }
}

/// Prints `error:` and the error on standard error and, with `json`, its ``ErrorJSON`` on
/// standard output, so that `--json` output is always one JSON document.
func reportFailure(_ error: Error, json: Bool, verbose: Bool = false, file: String? = nil) {
    let message = describe(error, verbose: verbose)
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    if json { try? printJSON(ErrorJSON(error, message: message, file: file)) }
}

/// `{"error": {"code": ..., "message": ..., "file": ...}}`: a failure, with `--json`.
struct ErrorJSON: Encodable {
    struct Body: Encodable {
        /// A stable name for the kind of failure (`disallowedGlobal`, `mismatch`, `io`, ...).
        let code: String
        let message: String
        let file: String?
    }
    let error: Body

    init(_ error: Error, message: String, file: String? = nil) {
        let (code, errorFile): (String, String?) = switch error {
        case let e as any TorchportError: (e.code, e.location.file)
        default: (String(describing: type(of: error)), nil)
        }
        self.error = Body(code: code, message: message, file: errorFile ?? file)
    }
}

/// An error's text for the user: a binding error's first keys of each kind, or all of them.
func describe(_ error: Error, verbose: Bool) -> String {
    if verbose, let b = error as? BindingError { return b.fullDescription }
    return error.localizedDescription
}

/// Checks a file a command will write (`--save-logits`) before any work: not a directory, in a
/// folder that exists and is writable, and not replacing an existing file without `--force`.
func checkOutputFile(_ path: String, option: String, force: Bool) throws {
    if isDirectory(path) { throw ValidationError("\(option): '\(path)' is a directory") }
    if FileManager.default.fileExists(atPath: path), !force {
        throw ValidationError("\(option): '\(path)' exists (use --force to replace it)")
    }
    let folder = (path as NSString).deletingLastPathComponent
    let dir = folder.isEmpty ? "." : folder
    guard isDirectory(dir), FileManager.default.isWritableFile(atPath: dir) else {
        throw ValidationError("\(option): cannot write in '\(dir)' (no such folder, or no permission)")
    }
}

/// Refuses the first count option below its least value, naming it and the value given
/// (`--threads must be at least 1, got 0`).
func requireAtLeast(_ options: [(name: String, value: Int, least: Int)]) throws {
    for o in options where o.value < o.least {
        throw ValidationError("\(o.name) must be at least \(o.least), got \(o.value)")
    }
}

/// `--check-error-stat` choices (Polygraphy's names).
enum ErrorStatChoice: String, ExpressibleByArgument, CaseIterable {
    case max, mean, median, quantile
}

/// The tolerance options of the commands that verify against a golden.
struct ToleranceFlags: ParsableArguments {
    @Option(parsing: .unconditional, help: "Absolute tolerance added to the criterion (default 0).")
    var atol: Double?
    @Option(parsing: .unconditional, help: """
        Tolerance relative to the logit scale max|ref| of each sample (default 1e-5; for weights \
        stored in float16 or bfloat16, torch.testing.assert_close's tolerances for that dtype).
        """)
    var rtol: Double?
    @Option(help: "Which statistic of each sample's |d| is held to the tolerance: max, mean, median or quantile.")
    var checkErrorStat: ErrorStatChoice = .max
    @Option(help: "With --check-error-stat quantile: the quantile, between 0 and 1 (default 0.99).")
    var errorQuantile: Double?

    /// The criterion asked for; nil when no option was given (the stored dtype then chooses).
    var criterion: Criterion? {
        guard atol != nil || rtol != nil || checkErrorStat != .max else { return nil }
        let stat: Criterion.ErrorStatistic = switch checkErrorStat {
        case .max: .max
        case .mean: .mean
        case .median: .median
        case .quantile: .quantile(errorQuantile ?? 0.99)
        }
        return Criterion(atol: atol ?? Criterion.defaultAbsoluteTolerance, rtol: rtol ?? Criterion.defaultRelativeTolerance,
                         errorStat: stat)
    }

    func validate() throws {
        if let problem = (criterion ?? .default).validationProblem { throw ValidationError(problem) }
        if errorQuantile != nil && checkErrorStat != .quantile {
            throw ValidationError("--error-quantile needs --check-error-stat quantile")
        }
    }
}
