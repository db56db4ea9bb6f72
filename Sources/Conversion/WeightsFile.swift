#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SafeTensors
import TorchCheckpoint
import TorchportCore

/// Every tensor of a checkpoint or a safetensors file (recognised by content, not extension), a
/// Hugging Face sharded checkpoint (its `*.index.json`, or the folder holding it: one state dict
/// across the shards), or a `torch.distributed.checkpoint` folder (full tensors from the chunks).
public func readTensors(_ url: URL, options: ReaderOptions = .init()) throws -> (tensors: [NamedTensor], format: WeightsFormat) {
    try readTensors(url.path, options: options)
}

/// Every tensor of the checkpoint at `path`; see ``readTensors(_:options:)-(URL,_)``.
public func readTensors(_ path: String, options: ReaderOptions = .init()) throws -> (tensors: [NamedTensor], format: WeightsFormat) {
    switch CheckpointLayout.detect(path) {
    case .shardedIndex(let index)?: return (try ShardedCheckpoint(index: index, options: options).tensors, .sharded)
    case .distributed(let folder)?: return (try DistributedCheckpoint(folder: folder, options: options).tensors, .distributed)
    case nil: throw CheckpointError(.layout("a folder with neither a .metadata file (torch.distributed.checkpoint) nor a *.index.json (Hugging Face shards)"), file: path)
    case .file?: return try readSingleFile(path, options: options)
    }
}

/// Every tensor of the one file at `path` (a checkpoint or a safetensors file), never a layout of
/// several (a shard of an index is read so: an index naming itself cannot recurse).
func readSingleFile(_ path: String, options: ReaderOptions) throws -> (tensors: [NamedTensor], format: WeightsFormat) {
    if WeightsFormat.isSafeTensors(path: path) {
        return (try SafeTensorsFile(contentsOf: path).tensors, .safetensors)
    }
    let checkpoint = try Checkpoint(contentsOf: path, options: options)
    return (checkpoint.tensors, checkpoint.format)
}
