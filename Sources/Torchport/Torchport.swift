// The umbrella module: `import Torchport` gives every public stage of the pipeline (the reader
// product's modules, the Swift ResNet and its engines, verification, images).
@_exported import TorchportReader
@_exported import ResNet
@_exported import Verification
