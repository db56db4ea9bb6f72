// The umbrella module: `import Torchport` gives every public stage of the pipeline.
@_exported import TorchCheckpoint
