import ArgumentParser
import Foundation
import Torchport

/// `--arch` choices: torchvision's ten ResNets.
enum ArchChoice: String, ExpressibleByArgument, CaseIterable {
    case resnet18, resnet34, resnet50, resnet101, resnet152
    case resnext50_32x4d, resnext101_32x8d, resnext101_64x4d
    case wide_resnet50_2, wide_resnet101_2

    var architecture: ResNetArchitecture? { ResNetArchitecture.named[rawValue] }
}

/// The dtype most of a model's weights were stored in (before they were widened to float32).
func storedDType(_ loaded: LoadedResNet) -> String? {
    let counts = Dictionary(grouping: loaded.mapping.stateDict.map(\.tensor.dtype.rawValue), by: { $0 })
    return counts.max { $0.value.count < $1.value.count }?.key
}

/// Loads and binds a model, for commands that run one, its forward passes on `executor` (each
/// command builds one from its `--threads`).
func loadModel(_ path: String, arch: ArchChoice?, reader: ReaderFlags, engine: InferenceEngine? = nil,
               executor: Executor) throws -> LoadedResNet {
    try LoadedResNet(contentsOf: path, architecture: arch?.architecture, options: reader.options, engine: engine,
                     executor: executor)
}

extension InferenceEngine: ExpressibleByArgument {}

/// `--engine`, for the commands that run a model.
struct EngineFlags: ParsableArguments {
    @Option(help: "Inference engine: packed (Torchport's AVX-512 kernels) or reference (im2col + OpenBLAS). Default: the fastest this CPU runs.")
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
        case let e as CheckpointError: (e.code, e.file)
        case let e as SafeTensorsError: (e.code, e.file)
        case let e as VerificationError: (e.code, e.file)
        case let e as ImageError: (Self.caseName(e.kind), e.file)
        case let e as ConversionError: (Self.caseName(e.kind), e.file)
        case let e as BindingError: (Self.caseName(e), nil)
        case is LabelsError: ("labels", nil)
        default: (String(describing: type(of: error)), nil)
        }
        self.error = Body(code: code, message: message, file: errorFile ?? file)
    }

    /// An enum value's case name (`mismatch` for `.mismatch(...)`).
    static func caseName(_ value: Any) -> String {
        Mirror(reflecting: value).children.first?.label ?? String(describing: value)
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
