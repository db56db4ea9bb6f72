import ArgumentParser
import Foundation
import Torchport
import TorchportCore

@main
struct TorchportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torchport",
        abstract: "Read, bind, convert and verify PyTorch ResNet checkpoints without Python.",
        version: torchportVersion,
        subcommands: [Inspect.self, Verify.self, Convert.self, Diff.self, Bench.self, Scan.self, Classify.self])

    static func main() {
        ConversionCleanup.installInputFaultHandler()
        suggestSubcommand()
        selectBLASKernels()
        BLASKernels.releaseThreads()
        do {
            var command = try parseAsRoot(nil)
            try command.run()
            waitIfDyingOfSignal()
        } catch {
            waitIfDyingOfSignal()
            // Help, version and exit codes as swift-argument-parser has them; a command-line
            // mistake with the `error:` prefix every other failure has.
            let code = exitCode(for: error)
            if code == .success || error is ExitCode { exit(withError: error) }
            let message = fullMessage(for: error)
            let text = message.hasPrefix("Error: ") ? "error: " + message.dropFirst("Error: ".count) : "error: " + message
            FileHandle.standardError.write(Data((text + "\n").utf8))
            Foundation.exit(code.rawValue)
        }
    }

    /// A first argument that is no subcommand but close to one (`inspct`): say which one was meant
    /// and exit 2, instead of the parser's "unexpected arguments".
    static func suggestSubcommand() {
        guard let first = CommandLine.arguments.dropFirst().first, !first.hasPrefix("-") else { return }
        let names = configuration.subcommands.map { $0._commandName } + ["help"]
        guard !names.contains(first) else { return }
        let ranked = names.map { ($0, editDistance($0, first)) }.sorted { $0.1 < $1.1 }
        guard let best = ranked.first, best.1 <= 2 else { return }
        FileHandle.standardError.write(Data("error: unknown command '\(first)'; did you mean '\(best.0)'?\n".utf8))
        Foundation.exit(2)
    }

    /// When OpenBLAS fell back to its generic kernels on a CPU it does not know, restart once with
    /// `OPENBLAS_CORETYPE` naming the kernels the CPU supports (OpenBLAS reads it only at load).
    /// An `OPENBLAS_CORETYPE` already set by the user is always respected.
    static func selectBLASKernels() {
        // Only commands that run the model need the kernels; the others skip the restart.
        let args = CommandLine.arguments.dropFirst()
        let runsModel = ["verify", "bench", "classify"].contains(args.first ?? "")
            || (args.first == "convert" && args.contains("--golden"))
        guard runsModel, ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
              let core = BLASKernels.betterCoreType() else { return }
        restartSelf(setting: "OPENBLAS_CORETYPE", to: core)
        // Not restarted (exec failed, or not Linux): carry on with the generic kernels.
    }
}
