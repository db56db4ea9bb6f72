// The reader-only umbrella: `import TorchportReader` gives the checkpoint reader, the safetensors
// reader and writer, the name mapping with architecture recognition, and conversion, and links
// neither a BLAS nor the image libraries (the `TorchportReader` product).
@_exported import Conversion
@_exported import SafeTensors
@_exported import StateDict
@_exported import TorchCheckpoint
@_exported import TorchportCore
