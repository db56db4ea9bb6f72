import Foundation
import SafeTensors
import TorchCheckpoint
import TorchportCore

/// How a checkpoint lies on disk: one file, a Hugging Face sharded index with its shards, or a
/// `torch.distributed.checkpoint` folder. Detected from the path and the folder's contents.
public enum CheckpointLayout: Sendable, Equatable {
    /// One file (any format ``readTensors(_:options:)-(String,_)`` reads).
    case file(String)
    /// A `*.index.json` (`{"metadata": {...}, "weight_map": {name: shard}}`) beside its shards.
    case shardedIndex(String)
    /// A folder with `.metadata` and `.distcp` files.
    case distributed(String)

    /// The index files looked for in a folder, in this order (`model.safetensors.index.json` before
    /// `pytorch_model.bin.index.json` when a repository has both).
    public static let indexNames = ["model.safetensors.index.json", "pytorch_model.bin.index.json"]

    /// The layout of `path`: a `*.index.json` file is a sharded index; a folder holding `.metadata`
    /// is a distributed checkpoint, one holding a known index (or exactly one `*.index.json`) a
    /// sharded one; anything else is a file. Nil for a folder that is none of these.
    public static func detect(_ path: String) -> CheckpointLayout? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            return path.hasSuffix(".index.json") ? .shardedIndex(path) : .file(path)
        }
        if DistributedCheckpoint.isDistributedCheckpoint(path) { return .distributed(path) }
        for name in indexNames {
            let candidate = (path as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: candidate) { return .shardedIndex(candidate) }
        }
        let indexes = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".index.json") }
        if indexes.count == 1, let only = indexes.first { return .shardedIndex((path as NSString).appendingPathComponent(only)) }
        return nil
    }

    /// The file whose SHA-256 identifies the checkpoint (`torchport.source_sha256`): the file, the
    /// index, or the distributed checkpoint's `.metadata`.
    public var identifyingFile: String {
        switch self {
        case .file(let p), .shardedIndex(let p): p
        case .distributed(let folder): (folder as NSString).appendingPathComponent(DistributedCheckpoint.metadataName)
        }
    }
}

/// A Hugging Face sharded checkpoint read as one state dict: the index's `weight_map` names, for
/// each tensor, the shard holding it (a `.safetensors` file, or a `torch.save` `.bin`, told apart
/// by content). Every shard is read once; tensors are views of the shards' maps.
///
/// Hostile indexes are refused with `CheckpointError.Kind.layout` naming the index and
/// the key: a shard path that is not a plain file name in the index's folder (`..`, `/`,
/// absolute), a missing shard, a tensor missing from its shard, a name given twice (the strict
/// JSON parser refuses duplicate keys), an index over 64 MiB.
public struct ShardedCheckpoint: Sendable {
    /// The index file.
    public let index: String
    /// Every tensor of the `weight_map`, in its order.
    public let tensors: [NamedTensor]
    /// The shard files, in order of first use.
    public let shards: [String]
    /// The formats of the shards.
    public let shardFormats: Set<WeightsFormat>

    /// The largest index read (Hugging Face's largest are a few MiB).
    public static let maxIndexBytes = 64 << 20

    /// Reads the index at `index` and every shard it names.
    public init(index: String, options: ReaderOptions = .init()) throws {
        self.index = index
        func fail(_ reason: String, key: String? = nil, offset: Int? = nil) -> CheckpointError {
            CheckpointError(.layout(reason), file: index, offset: offset, key: key)
        }
        let bytes: FileBytes
        do { bytes = try FileBytes.map(path: index) } catch { throw CheckpointError(.io(error.reason), file: index) }
        guard bytes.count <= Self.maxIndexBytes else { throw fail("index of \(bytes.count) bytes, over \(Self.maxIndexBytes)") }
        if let bad = firstInvalidUTF8(bytes.bytes) { throw fail("index is not UTF-8", offset: bad) }
        var parser = HeaderJSONParser(bytes: bytes.bytes, base: 0)
        let document: JSONValue
        do { document = try parser.parseDocument() } catch {
            throw fail("index is not valid JSON: \(error.reason)", key: error.location.key, offset: error.location.offset)
        }
        guard case .object(let members) = document,
              let map = members.first(where: { $0.key == "weight_map" }), case .object(let entries) = map.value else {
            throw fail("expected an object with a \"weight_map\" object")
        }
        var order: [String] = []
        var names: [String: [(name: String, offset: Int)]] = [:]
        for e in entries {
            guard case .string(let shard) = e.value else { throw fail("the shard of a tensor is not a string", key: e.key, offset: e.offset) }
            guard DistributedCheckpoint.isPlainFileName(shard) else {
                throw fail("shard \(shard.debugDescription) is not a plain file name in the index's folder", key: e.key, offset: e.offset)
            }
            if names[shard] == nil { order.append(shard) }
            names[shard, default: []].append((e.key, e.offset))
        }
        let folder = (index as NSString).deletingLastPathComponent
        var byName: [String: TensorRecord] = [:]
        var formats: Set<WeightsFormat> = []
        for shard in order {
            let path = folder.isEmpty ? shard : (folder as NSString).appendingPathComponent(shard)
            guard FileManager.default.fileExists(atPath: path) else {
                throw fail("shard \(shard) is missing", key: names[shard]?.first?.name)
            }
            let (shardTensors, format) = try readSingleFile(path, options: options)
            formats.insert(format)
            var inShard: [String: TensorRecord] = [:]
            for t in shardTensors where inShard[t.name] == nil { inShard[t.name] = t.tensor }
            for (name, offset) in names[shard] ?? [] {
                guard let t = inShard[name] else { throw fail("tensor not found in shard \(shard)", key: name, offset: offset) }
                byName[name] = t
            }
        }
        var out: [NamedTensor] = []
        for e in entries { if let t = byName[e.key] { out.append(NamedTensor(name: e.key, tensor: t)) } }
        tensors = out
        shards = order
        shardFormats = formats
    }
}
