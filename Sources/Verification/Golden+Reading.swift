import SafeTensors
import TorchCheckpoint

extension Golden {
    /// The named tensors of a golden file: a `.safetensors` file by its name, anything else by the
    /// checkpoint reader; a file the checkpoint reader does not recognize is tried as safetensors
    /// before its error is reported.
    static func readTensors(path: String) throws -> [NamedTensor] {
        if path.hasSuffix(".safetensors") {
            return try SafeTensorsFile(contentsOf: path).tensors
        }
        do {
            return try Checkpoint(contentsOf: path).tensors
        } catch let e as CheckpointError {
            guard case .unrecognizedFormat = e.kind, let file = try? SafeTensorsFile(contentsOf: path) else { throw e }
            return file.tensors
        }
    }
}
