#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SafeTensors
import TorchCheckpoint
import TorchportCore

/// Every tensor of a checkpoint or a safetensors file (recognised by content, not extension).
public func readTensors(_ url: URL, options: ReaderOptions = .init()) throws -> (tensors: [NamedTensor], format: WeightsFormat) {
    try readTensors(url.path, options: options)
}

/// Every tensor of the checkpoint or safetensors file at `path`; see ``readTensors(_:options:)-(URL,_)``.
public func readTensors(_ path: String, options: ReaderOptions = .init()) throws -> (tensors: [NamedTensor], format: WeightsFormat) {
    if WeightsFormat.isSafeTensors(path: path) {
        return (try SafeTensorsFile(contentsOf: path).tensors, .safetensors)
    }
    let checkpoint = try Checkpoint(contentsOf: path, options: options)
    return (checkpoint.tensors, checkpoint.format)
}
