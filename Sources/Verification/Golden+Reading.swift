import SafeTensors
import TorchCheckpoint
import TorchportCore

extension Golden {
    /// The named tensors of a golden file: a `.safetensors` file by its name, anything else by the
    /// checkpoint reader; a file the checkpoint reader does not recognize is tried as safetensors
    /// before its error is reported.
    static func readTensors(path: String) throws -> [NamedTensor] {
        if WeightsFormat.isSafeTensors(path: path) {
            return try SafeTensorsFile(contentsOf: path).tensors
        }
        return try Checkpoint(contentsOf: path).tensors
    }
}
