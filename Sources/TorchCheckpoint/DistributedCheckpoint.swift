#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TorchportCore

/// A `torch.distributed.checkpoint` folder (`dcp.save`, FSDP / DTensor), read offline: `.metadata`
/// (a pickle of torch's dataclasses, read as inert records) says each tensor's full size and its
/// chunks; every chunk is a `torch.save` blob at `(relative_path, offset, length)` in a
/// `__<rank>_<n>.distcp` file. Chunks of sharded tensors (any dimension) are put together into
/// full tensors; a tensor stored whole (replicated, or saved by one rank) is a view of its file.
///
/// ```swift
/// let dcp = try DistributedCheckpoint(folder: "checkpoints/step-1000")
/// for t in dcp.tensors { print(t.name, t.tensor.shape) }
/// ```
public final class DistributedCheckpoint: @unchecked Sendable {
    /// The folder.
    public let folder: String
    /// Every tensor, full size, in `.metadata` order.
    public let tensors: [NamedTensor]
    /// Entries that are not tensors (`BytesStorageMetadata`: pickled Python values), left out.
    public let nonTensorEntries: [String]

    /// The metadata file's name inside the folder.
    public static let metadataName = ".metadata"

    /// Whether `path` is a folder holding a `.metadata` file.
    public static func isDistributedCheckpoint(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
            && FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(metadataName))
    }

    /// Reads the folder: `.metadata`, then every chunk it names.
    public init(folder: String, options: ReaderOptions = .init()) throws {
        self.folder = folder
        let metaPath = (folder as NSString).appendingPathComponent(Self.metadataName)
        func fail(_ reason: String, key: String? = nil, file: String = metaPath) -> CheckpointError {
            CheckpointError(.layout(reason), file: file, key: key)
        }
        let metaBytes: FileBytes
        do { metaBytes = try FileBytes.map(path: metaPath) } catch { throw CheckpointError(.io(error.reason), file: metaPath) }
        var metaOptions = options
        metaOptions.distributedMetadata = true
        let unpickler = Unpickler(data: metaBytes.bytes, options: metaOptions, file: metaPath, entry: Self.metadataName)
        let root: PickleValue
        do { root = try unpickler.load() } catch let e as CheckpointError { throw e.with(file: metaPath) }
        let graph = unpickler.result

        func object(_ v: PickleValue?, _ cls: String) -> InertObject? {
            guard case .object(let i)? = v, graph.objects[i].name == cls else { return nil }
            return graph.objects[i]
        }
        func attribute(_ o: InertObject, _ name: String) -> PickleValue? { o.attributes.first { $0.name == name }?.value }
        func ints(_ v: PickleValue?) -> [Int]? {
            guard let v, let items = graph.sequence(v) else { return nil }
            var out: [Int] = []
            for case .int(let i) in items { out.append(i) }
            return out.count == items.count ? out : nil
        }
        func dict(_ v: PickleValue?) -> PickleDict? {
            guard case .dict(let d)? = v else { return nil }
            return graph.dicts[d]
        }
        guard let metadata = object(root, "Metadata"),
              let stateMeta = dict(attribute(metadata, "state_dict_metadata")),
              let storageData = dict(attribute(metadata, "storage_data")) else {
            throw fail("expected a Metadata with state_dict_metadata and storage_data, got \(graph.summary(root))")
        }

        // Where each chunk lies: (fqn, chunk offsets) -> (file, offset, length).
        struct Place { let file: String; let offset: Int; let length: Int }
        var places: [String: [[Int]: Place]] = [:]
        for (k, v) in zip(storageData.keys, storageData.values) {
            // A non-tensor entry (BytesStorageMetadata) is indexed with no offset: not read.
            if let index = object(k, "MetadataIndex"), (attribute(index, "offset") ?? PickleValue.none) == PickleValue.none { continue }
            guard let index = object(k, "MetadataIndex"), case .string(let fqn)? = attribute(index, "fqn"),
                  let offsets = ints(attribute(index, "offset")), let info = object(v, "_StorageInfo"),
                  case .string(let relative)? = attribute(info, "relative_path"),
                  case .int(let offset)? = attribute(info, "offset"), case .int(let length)? = attribute(info, "length") else {
                throw fail("a storage_data entry is not MetadataIndex(fqn, offset, index) -> _StorageInfo(relative_path, offset, length): \(graph.summary(k))")
            }
            guard Self.isPlainFileName(relative) else {
                throw fail("chunk file \(relative.debugDescription) is not a plain file name inside the folder", key: fqn)
            }
            guard offset >= 0, length >= 0 else { throw fail("negative offset or length for a chunk", key: fqn) }
            guard places[fqn, default: [:]][offsets] == nil else {
                throw fail("two storage entries for the chunk at \(offsets)", key: fqn)
            }
            places[fqn, default: [:]][offsets] = Place(file: relative, offset: offset, length: length)
        }

        var files: [String: FileBytes] = [:]
        func chunkTensor(_ place: Place, fqn: String) throws -> TensorRecord {
            let path = (folder as NSString).appendingPathComponent(place.file)
            if files[place.file] == nil {
                do { files[place.file] = try FileBytes.map(path: path) } catch {
                    throw fail("chunk file missing or unreadable: \(error.reason)", key: fqn, file: path)
                }
            }
            guard let whole = files[place.file] else { throw fail("chunk file lost", key: fqn, file: path) }
            let (end, overflow) = place.offset.addingReportingOverflow(place.length)
            guard !overflow, let slice = FileBytes.view(of: whole, range: place.offset..<end) else {
                throw CheckpointError(.truncated(needed: overflow ? Int.max : end, available: whole.count), file: path, offset: place.offset, key: fqn)
            }
            let name = "\(path)@\(place.offset)"
            let blob = try Checkpoint(bytes: slice, name: name, options: options)
            guard blob.tensors.count == 1, let t = blob.tensors.first?.tensor else {
                throw fail("the blob at offset \(place.offset) holds \(blob.tensors.count) tensors, expected one", key: fqn, file: path)
            }
            return t
        }

        var out: [NamedTensor] = []
        var skipped: [String] = []
        for (k, v) in zip(stateMeta.keys, stateMeta.values) {
            guard case .string(let fqn) = k else { throw fail("a state_dict_metadata key is \(graph.summary(k))") }
            if object(v, "BytesStorageMetadata") != nil { skipped.append(fqn); continue }
            guard let meta = object(v, "TensorStorageMetadata"), let size = ints(attribute(meta, "size")),
                  let props = object(attribute(meta, "properties"), "TensorProperties"),
                  let chunkValues = attribute(meta, "chunks").flatMap({ graph.sequence($0) }) else {
                throw fail("expected TensorStorageMetadata(properties, size, chunks), got \(graph.summary(v))", key: fqn)
            }
            // TensorProperties pickles its state as a tuple: (dtype, layout, requires_grad, memory_format, pin_memory[, ...]).
            var dtype: DType?
            if let state = props.state, let fields = graph.sequence(state), case .dtype(let d)? = fields.first { dtype = d }
            if dtype == nil, case .dtype(let d)? = attribute(props, "dtype") { dtype = d }
            guard let dtype else { throw fail("TensorProperties without a dtype", key: fqn) }
            let numel = try TensorMeta.validate(shape: size, strides: TensorRecord.contiguousStrides(size), offset: 0, dtype: dtype,
                                                storageBytes: Int.max, limits: options.limits)
                .mapError { CheckpointError($0, file: metaPath, key: fqn) }.get()
            var chunks: [(offsets: [Int], sizes: [Int], tensor: TensorRecord)] = []
            for c in chunkValues {
                guard let chunk = object(c, "ChunkStorageMetadata"), let offsets = ints(attribute(chunk, "offsets")),
                      let sizes = ints(attribute(chunk, "sizes")), offsets.count == size.count, sizes.count == size.count else {
                    throw fail("a chunk is not ChunkStorageMetadata(offsets, sizes) of \(size.count) dimensions", key: fqn)
                }
                for d in 0..<size.count {
                    let (end, o) = offsets[d].addingReportingOverflow(sizes[d])
                    guard offsets[d] >= 0, sizes[d] >= 0, !o, end <= size[d] else {
                        throw fail("chunk at \(offsets) of size \(sizes) leaves the tensor's size \(size)", key: fqn)
                    }
                }
                guard let place = places[fqn]?[offsets] else { throw fail("no storage entry for the chunk at \(offsets)", key: fqn) }
                let t = try chunkTensor(place, fqn: fqn)
                guard t.dtype == dtype, t.shape == sizes else {
                    throw fail("the chunk at \(offsets) holds \(t.dtype.rawValue)\(t.shape), expected \(dtype.rawValue)\(sizes)", key: fqn)
                }
                chunks.append((offsets, sizes, t))
            }
            out.append(NamedTensor(name: fqn, tensor: try Self.assemble(fqn: fqn, size: size, numel: numel, dtype: dtype,
                                                                         chunks: chunks, file: metaPath)))
        }
        tensors = out
        nonTensorEntries = skipped
    }

    /// A name inside the folder: no separator, not `.` or `..`, no NUL.
    package static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\\") && !name.contains("\0")
    }

    /// The full tensor from chunks that tile it exactly (no gap, no overlap): the chunk itself when
    /// one covers it all, otherwise a new buffer with each chunk's rows copied into place.
    static func assemble(fqn: String, size: [Int], numel: Int, dtype: DType,
                         chunks: [(offsets: [Int], sizes: [Int], tensor: TensorRecord)], file: String) throws -> TensorRecord {
        func fail(_ reason: String) -> CheckpointError { CheckpointError(.layout(reason), file: file, key: fqn) }
        if let whole = chunks.first(where: { $0.sizes == size }) {
            // Replicated: stored once (any other chunk would overlap it).
            guard chunks.count == 1 else { throw fail("\(chunks.count) chunks, one of which covers the whole tensor") }
            return whole.tensor
        }
        // Exact tiling: the chunks' elements add up to the tensor's, and no element is written
        // twice (a bitmap of the elements, checked row by row as they are copied: linear in the
        // tensor, however many chunks a file lists).
        var covered = 0
        for c in chunks {
            let (sum, overflow) = covered.addingReportingOverflow(c.tensor.numel)
            guard !overflow else { throw fail("chunks cover more elements than an integer counts") }
            covered = sum
        }
        guard covered == numel else { throw fail("chunks cover \(covered) of \(numel) elements") }
        let element = dtype.size
        let strides = TensorRecord.contiguousStrides(size)
        var written = [UInt64](repeating: 0, count: (numel + 63) / 64)
        /// Marks elements `start..<end` written; false when one already was.
        func mark(_ start: Int, _ end: Int) -> Bool {
            var i = start
            while i < end {
                let word = i >> 6, bit = i & 63
                let n = min(64 - bit, end - i)
                let mask: UInt64 = (n == 64 ? ~0 : ((1 << UInt64(n)) - 1)) << UInt64(bit)
                if written[word] & mask != 0 { return false }
                written[word] |= mask
                i += n
            }
            return true
        }
        var overlap: [Int]?
        let owner = FileBytes.filled(count: numel * element) { dst in
            for c in chunks where c.tensor.numel > 0 && overlap == nil {
                c.tensor.withContiguousBytes { src in
                    guard let to = dst.baseAddress, let from = src.baseAddress else { return }
                    // Rows along the last dimension are contiguous in both; walk the others.
                    let rank = size.count
                    let rowElements = rank == 0 ? 1 : c.sizes[rank - 1]
                    let rows = c.tensor.numel / max(rowElements, 1)
                    var index = [Int](repeating: 0, count: max(rank - 1, 0))
                    for row in 0..<rows {
                        var target = 0
                        for d in 0..<rank { target += (c.offsets[d] + (d < rank - 1 ? index[d] : 0)) * strides[d] }
                        guard mark(target, target + rowElements) else {
                            overlap = c.offsets
                            return
                        }
                        memcpy(to + target * element, from + row * rowElements * element, rowElements * element)
                        var d = rank - 2
                        while d >= 0 {
                            index[d] += 1
                            if index[d] < c.sizes[d] { break }
                            index[d] = 0
                            d -= 1
                        }
                    }
                    // Copied: the chunk's pages of the mapped .distcp file go back to the kernel, so
                    // the file and the full tensor are not both resident (read again if touched).
                    if c.tensor.storage.owner.isFileMap, c.tensor.isContiguous { MemoryPages.release(src) }
                }
            }
        }
        if let overlap { throw fail("the chunk at \(overlap) overlaps another") }
        guard let t = TensorRecord(dtype: dtype, shape: size, bytes: ByteSlice(owner: owner), name: fqn) else {
            throw fail("cannot make a \(dtype.rawValue)\(size) tensor")
        }
        return t
    }
}
