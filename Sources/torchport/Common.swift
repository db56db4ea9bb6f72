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

/// Loads and binds a model, for commands that run one.
func loadModel(_ path: String, arch: ArchChoice?, reader: ReaderFlags, engine: InferenceEngine? = nil) throws -> LoadedResNet {
    try LoadedResNet(contentsOf: path, architecture: arch?.architecture, options: reader.options, engine: engine)
}

extension InferenceEngine: ExpressibleByArgument {}

/// `--engine`, for the commands that run a model.
struct EngineFlags: ParsableArguments {
    @Option(help: "Inference engine: packed (Torchport's AVX-512 kernels) or reference (im2col + OpenBLAS). Default: the fastest this CPU runs.")
    var engine: InferenceEngine?
}

/// Runs `body`; a failure to read or bind a file is printed and exits with status 2 (unusable file),
/// keeping status 1 for numerical mismatches. `verbose`: a binding error lists every key.
func withExitCode2<T>(verbose: Bool = false, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        FileHandle.standardError.write(Data("error: \(describe(error, verbose: verbose))\n".utf8))
        throw ExitCode(2)
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
