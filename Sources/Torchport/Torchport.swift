// The umbrella module: `import Torchport` gives every public stage of the pipeline.
@_exported import TorchCheckpoint
@_exported import SafeTensors
@_exported import ResNet
@_exported import Verification
