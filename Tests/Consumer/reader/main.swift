// The reader-only product: read a checkpoint, map its names, recognise the architecture, convert
// it to safetensors, read that back and compare every tensor byte for byte.
// Usage: reader CHECKPOINT OUTPUT.safetensors
import Foundation
import TorchportReader

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: reader CHECKPOINT OUTPUT.safetensors\n".utf8))
    exit(2)
}
let checkpoint = try Checkpoint(contentsOf: URL(fileURLWithPath: arguments[1]).path)
let mapping = try NameMapping.map(checkpoint.tensors)
let architecture = try mapping.checkBinding()
print("format: \(checkpoint.format.rawValue)")
print("tensors: \(checkpoint.tensors.count) state dict: \(mapping.stateDict.count)")
print("layers: \(architecture.layers.map(String.init).joined(separator: ","))")
print("stage widths: \(architecture.stageWidths.map(String.init).joined(separator: ","))")
print("classes: \(architecture.numClasses ?? 0)")

let summary = try convertCheckpoint(from: arguments[1], to: arguments[2], options: .init(force: true))
let converted = try SafeTensorsFile(contentsOf: arguments[2])
// Every tensor of the state dict (the ResNet's and its BatchNorm counters) under its own name.
var equal = 0
for t in checkpoint.tensors {
    let (name, original) = (t.name, t.tensor)
    guard let copy = converted.tensors.first(where: { $0.name == name })?.tensor else { continue }
    let same = original.withContiguousBytes { a in copy.withContiguousBytes { b in a.elementsEqual(b) } }
    if same && original.shape == copy.shape && original.dtype == copy.dtype { equal += 1 }
}
print("converted: \(summary.tensors) tensors, \(equal) identical to the checkpoint's")
