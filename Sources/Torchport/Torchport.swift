// The umbrella module: `import Torchport` gives every public stage of the pipeline (the reader
// product's modules, the Swift ResNet and its engines, verification, images, classification),
// and loads a model in one line (`ResNetModel(contentsOf:)`).
@_exported import Classification
@_exported import Images
@_exported import ResNet
@_exported import TorchportReader
@_exported import Verification
