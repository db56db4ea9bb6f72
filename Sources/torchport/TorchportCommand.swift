import ArgumentParser
import Foundation

@main
struct TorchportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torchport",
        abstract: "Read, bind, convert and verify PyTorch ResNet checkpoints without Python.",
        version: "0.1.0",
        subcommands: [Inspect.self])
}
