import ArgumentParser
import Foundation
import Torchport

@main
struct TorchportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torchport",
        abstract: "Read, bind, convert and verify PyTorch ResNet checkpoints without Python.",
        version: "0.1.0",
        subcommands: [Inspect.self, Verify.self, Convert.self, Bench.self, Scan.self, Classify.self])

    static func main() {
        ConversionCleanup.installInputFaultHandler()
        selectBLASKernels()
        main(nil)
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
