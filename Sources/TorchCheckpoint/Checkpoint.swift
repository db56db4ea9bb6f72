import Foundation
import TorchportCore

/// A PyTorch checkpoint, parsed and validated: every storage located and every tensor's view
/// checked against its storage. Tensors of stored zip entries are views of the mapped file.
///
/// ```swift
/// let checkpoint = try Checkpoint(contentsOf: "resnet50.pth")
/// for t in checkpoint.tensors { print(t.name, t.tensor.dtype, t.tensor.shape) }
/// ```
public final class Checkpoint: @unchecked Sendable {
    /// The path or name the checkpoint was read from, used in errors; nil when none was given.
    public let file: String?
    /// The container the checkpoint came in.
    public let format: WeightsFormat
    /// The zip's top folder (`archive`, or the saved file's base name); nil for legacy streams.
    public let prefix: String?
    /// How the storages were written. Big-endian data is swapped on load.
    public let byteOrder: ByteOrder
    /// The pickle's protocol number.
    public let pickleProtocol: Int
    /// The parsed pickle: every object, storage and tensor it builds, referenced by index.
    public let graph: PickleGraph
    /// The value the pickle returns (usually a dict: the state dict, or a training checkpoint).
    public let root: PickleValue
    /// Every tensor (and bare storage) reachable from the root, by its dotted path.
    public let tensors: [NamedTensor]
    /// The options the checkpoint was read with.
    public let options: ReaderOptions

    /// Opens and memory-maps the file at `url`. The file is never opened for writing.
    public convenience init(contentsOf url: URL, options: ReaderOptions = .init()) throws {
        try self.init(contentsOf: url.path, options: options)
    }

    /// Opens and memory-maps `path`. The file is never opened for writing.
    public convenience init(contentsOf path: String, options: ReaderOptions = .init()) throws {
        let bytes: FileBytes
        do {
            bytes = try FileBytes.map(path: path)
        } catch {
            throw CheckpointError(.io(error.reason), file: path)
        }
        try self.init(bytes: bytes, name: path, options: options)
    }

    /// Reads a checkpoint held in memory (`name` is used in errors).
    public convenience init(bytes: [UInt8], name: String? = nil, options: ReaderOptions = .init()) throws {
        try self.init(bytes: FileBytes.owned(bytes), name: name, options: options)
    }

    /// Reads a checkpoint from `bytes` (mapped or owned); `name` is used in errors.
    public init(bytes: FileBytes, name: String?, options: ReaderOptions = .init()) throws {
        self.file = name
        self.options = options
        let parsed: Parsed
        do {
            if ZipArchive.looksLikeZip(bytes.bytes) {
                parsed = try Self.readZip(bytes, name: name, options: options)
            } else {
                parsed = try Self.readLegacy(bytes, name: name, options: options)
            }
        } catch let e as CheckpointError {
            throw e.with(file: name)
        }
        do {
            tensors = try Self.collectTensors(graph: parsed.graph, root: parsed.root, storages: parsed.storageBytes,
                                              limits: options.limits)
        } catch let e as CheckpointError {
            throw e.with(file: name)
        }
        format = parsed.format
        prefix = parsed.prefix
        byteOrder = parsed.bigEndian ? .big : .little
        pickleProtocol = parsed.protocolVersion
        graph = parsed.graph
        root = parsed.root
    }

    struct Parsed {
        var format: WeightsFormat
        var prefix: String?
        var bigEndian: Bool
        var protocolVersion: Int
        var graph: PickleGraph
        var root: PickleValue
        /// Bytes of each storage of `graph.storages`, same order, little-endian.
        var storageBytes: [ByteSlice]
    }

    // MARK: - Zip archives

    private static func readZip(_ bytes: FileBytes, name: String?, options: ReaderOptions) throws -> Parsed {
        let zip = try ZipArchive(file: bytes, fileName: name, limits: options.limits)
        let pickles = zip.entries.filter {
            $0.name.hasSuffix("/data.pkl") && $0.name.split(separator: "/", omittingEmptySubsequences: false).count == 2
        }
        guard let pkl = pickles.first else { throw CheckpointError(.missingEntry("<prefix>/data.pkl")) }
        guard pickles.count == 1 else {
            throw CheckpointError(.zipStructure("several data.pkl entries: \(pickles.map(\.name))"))
        }
        let prefix = String(pkl.name.dropLast("/data.pkl".count))
        let isScript = zip.entry(named: "\(prefix)/constants.pkl") != nil
            || zip.entries.contains { $0.name.hasPrefix("\(prefix)/code/") }

        var bigEndian = false
        if let bo = zip.entry(named: "\(prefix)/byteorder") {
            let text = try zip.data(of: bo, limits: options.limits).withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
                .trimmingCharacters(in: .whitespacesAndNewlines)
            switch text {
            case "little": bigEndian = false
            case "big": bigEndian = true
            default: throw CheckpointError(.zipStructure("byteorder entry says \(text.prefix(20).debugDescription)"), entry: bo.name)
            }
        }

        let pickleData = try zip.data(of: pkl, limits: options.limits)
        let unpickler = Unpickler(data: pickleData.buffer, options: options, file: name, entry: pkl.name)
        let root = try pickleData.withUnsafeBytes { _ in try unpickler.load() }
        let graph = unpickler.result

        var storageBytes: [ByteSlice] = []
        storageBytes.reserveCapacity(graph.storages.count)
        for ref in graph.storages {
            let entryName = "\(prefix)/data/\(ref.key)"
            guard let entry = zip.entry(named: entryName) else {
                throw CheckpointError(.missingEntry(entryName), entry: entryName, key: ref.key)
            }
            let data = try zip.data(of: entry, limits: options.limits)
            let (needed, overflow) = ref.numel.multipliedReportingOverflow(by: ref.dtype.size)
            guard !overflow, data.count == needed else {
                throw CheckpointError(.storageMismatch("entry holds \(data.count) bytes, the pickle declares \(ref.numel) x \(ref.dtype.size)"),
                                      entry: entryName, offset: entry.localHeaderOffset, key: ref.key)
            }
            storageBytes.append(bigEndian ? byteSwapped(data, unit: ref.dtype.swapUnit) : data)
        }
        return Parsed(format: isScript ? .torchScript : .zip, prefix: prefix, bigEndian: bigEndian,
                      protocolVersion: unpickler.protocolVersion, graph: graph, root: root, storageBytes: storageBytes)
    }

    /// What a file that is neither a zip archive nor a pickle stream looks like, for the error.
    static func describeUnrecognized(_ buf: UnsafeRawBufferPointer) -> String {
        if buf.isEmpty { return "an empty file (0 bytes)" }
        if SafeTensorsSignature.matches(buf, fileSize: buf.count) {
            return "a safetensors file, not a PyTorch checkpoint (SafeTensorsFile reads it; torchport's commands take both)"
        }
        if SafeTensorsSignature.headerLength(buf, fileSize: buf.count) != nil, buf.count >= 12,
           buf[8] == 0xEF, buf[9] == 0xBB, buf[10] == 0xBF {
            return "a safetensors file whose JSON header starts with a UTF-8 byte-order mark (the format does not allow one)"
        }
        if buf.count >= 2, buf[0] == 0x1F, buf[1] == 0x8B { return "a gzip file: decompress it first" }
        if buf.count >= 4, buf.prefix(4).elementsEqual("PK\u{5}\u{6}".utf8) { return "an empty zip archive" }
        let head = String(decoding: buf.prefix(8), as: UTF8.self)
        if head.hasPrefix("version ") { return "a text file (a Git LFS pointer? fetch the real file)" }
        return "neither a zip archive nor a pickle stream (first byte 0x\(String(buf[0], radix: 16)))"
    }

    // MARK: - Legacy streams

    /// `0x1950a86a20f9469cfc6c`, torch's legacy magic number, little-endian.
    static let legacyMagic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]

    private static func readLegacy(_ bytes: FileBytes, name: String?, options: ReaderOptions) throws -> Parsed {
        let buf = bytes.bytes
        if buf.count >= 262, String(decoding: buf[257..<262], as: UTF8.self) == "ustar" {
            throw CheckpointError(.unrecognizedFormat("a tar archive (torch < 0.4 format), not supported"), offset: 0)
        }
        // A pickle starts with PROTO (protocol 2+) or a protocol 0/1 opcode for an integer.
        guard let first = buf.first, first == Op.proto || first == Op.long || first == Op.int else {
            throw CheckpointError(.unrecognizedFormat(Self.describeUnrecognized(buf)), offset: 0)
        }
        var pos = 0
        var graph = PickleGraph()
        var protocolVersion = 0
        func nextPickle(_ section: String, legacyIDs: Bool = false) throws -> PickleValue {
            let slice = UnsafeRawBufferPointer(rebasing: buf[pos...])
            let u = Unpickler(data: slice, graph: graph, options: options, file: name, entry: "pickle:\(section)", baseOffset: pos)
            u.legacyPersistentIDs = legacyIDs
            let v = try u.load(requireEnd: false)
            pos += u.offset
            graph = u.result
            protocolVersion = max(protocolVersion, u.protocolVersion)
            return v
        }
        let magic: PickleValue
        do { magic = try nextPickle("magic") } catch let e as CheckpointError {
            // A refused global is a pickle's own error (the file is a pickle, and is refused for it),
            // as is a limit; anything else at this point means the bytes are no pickle stream.
            switch e.kind {
            case .disallowedGlobal, .invalidGlobal, .extensionRegistry, .limitExceeded: throw e
            default: throw CheckpointError(.unrecognizedFormat("not a pickle stream: \(e.description)"), entry: "pickle:magic", offset: e.offset)
            }
        }
        guard case .bigInt(let m) = magic, m.bytes.prefix(10) == legacyMagic[...],
              m.bytes.dropFirst(10).allSatisfy({ $0 == 0 }) else {
            throw CheckpointError(.legacyMagicMismatch, entry: "pickle:magic", offset: 0)
        }
        let protocolStart = pos
        guard case .int(let version) = try nextPickle("protocol"), version == 1001 else {
            let v = (try? nextPickleValueForError(buf, protocolStart)) ?? -1
            throw CheckpointError(.legacyProtocolVersion(v), entry: "pickle:protocol", offset: protocolStart)
        }
        let sysInfo = try nextPickle("sys_info")
        var bigEndian = false
        if case .dict(let d) = sysInfo, case .bool(let little)? = graph.dicts[d]["little_endian"] {
            bigEndian = !little
        }
        let root = try nextPickle("main", legacyIDs: true)
        let keysStart = pos
        let keysValue = try nextPickle("keys")
        guard let keyValues = graph.sequence(keysValue) else {
            throw CheckpointError(.legacyStorageKeys("expected a list of keys, got \(graph.summary(keysValue))"), entry: "pickle:keys", offset: keysStart)
        }
        var keys: [String] = []
        for k in keyValues {
            guard case .string(let s) = k else {
                throw CheckpointError(.legacyStorageKeys("a key is \(k.kindName)"), entry: "pickle:keys", offset: keysStart)
            }
            keys.append(s)
        }

        // Root storages in the order of the key list: an int64 element count, then the bytes.
        let rootDtypes = Dictionary(graph.storages.filter { $0.viewKey == nil }.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        var rootBytes: [String: ByteSlice] = [:]
        let all = ByteSlice(owner: bytes)
        for key in keys {
            guard let ref = rootDtypes[key] else {
                throw CheckpointError(.legacyStorageKeys("key '\(key)' is not referenced by the pickle"), entry: "pickle:keys", offset: keysStart, key: key)
            }
            guard rootBytes[key] == nil else {
                throw CheckpointError(.legacyStorageKeys("key '\(key)' listed twice"), entry: "pickle:keys", offset: keysStart, key: key)
            }
            let header = try ByteReader(buf).u64(pos)
            let raw = bigEndian ? header.byteSwapped : header
            let count = Int64(bitPattern: raw)
            let (bytesNeeded, overflow) = Int(clamping: count).multipliedReportingOverflow(by: ref.dtype.size)
            guard count >= 0, !overflow, let slice = all.slice(pos + 8, bytesNeeded) else {
                throw CheckpointError(.legacyStorageSize(key: key, count: count), entry: "storage:\(key)", offset: pos, key: key)
            }
            guard count == Int64(ref.numel) else {
                throw CheckpointError(.storageMismatch("stream holds \(count) elements, the pickle declares \(ref.numel)"),
                                      entry: "storage:\(key)", offset: pos, key: key)
            }
            rootBytes[key] = bigEndian ? byteSwapped(slice, unit: ref.dtype.swapUnit) : slice
            pos += 8 + bytesNeeded
        }
        if pos != buf.count {
            throw CheckpointError(.trailingData(count: buf.count - pos), entry: "storages", offset: pos)
        }
        var storageBytes: [ByteSlice] = []
        for ref in graph.storages {
            guard let base = rootBytes[ref.key] else {
                throw CheckpointError(.legacyStorageKeys("storage '\(ref.key)' is not in the key list"), entry: "pickle:keys", offset: keysStart, key: ref.key)
            }
            // View storages (old files) are sub-ranges of their root, already bounds checked.
            guard let view = base.slice(ref.viewOffset * ref.dtype.size, ref.numel * ref.dtype.size) else {
                throw CheckpointError(.tensorOutOfBounds(needed: (ref.viewOffset + ref.numel) * ref.dtype.size, available: base.count), key: ref.viewKey ?? ref.key)
            }
            storageBytes.append(view)
        }
        return Parsed(format: .legacy, prefix: nil, bigEndian: bigEndian, protocolVersion: protocolVersion,
                      graph: graph, root: root, storageBytes: storageBytes)
    }

    private static func nextPickleValueForError(_ buf: UnsafeRawBufferPointer, _ start: Int) throws -> Int {
        let u = Unpickler(data: UnsafeRawBufferPointer(rebasing: buf[start...]))
        if case .int(let v) = try u.load(requireEnd: false) { return v }
        return -1
    }

    static func byteSwapped(_ data: ByteSlice, unit: Int) -> ByteSlice {
        guard unit > 1 else { return data }
        let src = data.buffer
        let owner = FileBytes.filled(count: src.count) { dst in
            var i = 0
            while i + unit <= src.count {
                for j in 0..<unit { dst[i + j] = src[i + unit - 1 - j] }
                i += unit
            }
        }
        return ByteSlice(owner: owner)
    }

    // MARK: - Naming

    /// Walks the graph depth-first in insertion order; each container is expanded once (shared or
    /// cyclic structures cost nothing extra), iteratively (any nesting depth is safe). Paths are
    /// parent links, spelled out only for tensors, so deep nesting costs no quadratic string work;
    /// a tensor nested deeper than `maxDepth`, or names adding up past `maxNameBytes`, is refused.
    private static func collectTensors(graph: PickleGraph, root: PickleValue, storages: [ByteSlice],
                                       limits: ReaderLimits) throws -> [NamedTensor] {
        var out: [NamedTensor] = []
        var visited = Set<DictKey>()
        var paths: [(parent: Int, part: String, depth: Int)] = [(-1, "", 0)]
        var work: [(path: Int, value: PickleValue)] = [(0, root)]
        var nameBytes = 0
        // Children looked at, against the ops budget: containers sharing one large element array
        // (a memoized list turned into many sets) are each walked, so the walk is bounded too.
        var steps = 0
        func keyName(_ k: PickleValue) -> String {
            switch k {
            case .string(let s): s
            case .int(let i): String(i)
            default: graph.summary(k)
            }
        }
        func name(_ path: Int) throws -> String {
            guard paths[path].depth <= limits.maxDepth else {
                throw CheckpointError(.limitExceeded(.depth, limit: limits.maxDepth), entry: "tensor names")
            }
            var parts: [String] = []
            var p = path
            while p > 0 { parts.append(paths[p].part); p = paths[p].parent }
            let n = parts.reversed().joined(separator: ".")
            nameBytes += n.utf8.count
            guard nameBytes <= limits.maxNameBytes else {
                throw CheckpointError(.limitExceeded(.names, limit: limits.maxNameBytes), entry: "tensor names")
            }
            return n
        }
        func record(_ meta: TensorMeta, _ path: Int) throws {
            out.append(NamedTensor(name: try name(path), tensor: TensorRecord(
                meta: meta, storage: graph.storages[meta.storage], bytes: storages[meta.storage])))
        }
        while let (path, value) = work.popLast() {
            let children: [(String, PickleValue)]
            switch value {
            case .tensor(let i):
                try record(graph.tensors[i], path)
                continue
            case .storage(let i):
                let ref = graph.storages[i]
                try record(TensorMeta(dtype: ref.dtype, shape: [ref.numel], strides: [1], storageOffset: 0, storage: i,
                                      numel: ref.numel), path)
                continue
            case .list, .tuple, .set, .dict, .object:
                guard visited.insert(DictKey(value)).inserted else { continue }
            default:
                continue
            }
            switch value {
            case .list(let i): children = graph.lists[i].enumerated().map { (String($0.offset), $0.element) }
            case .tuple(let i): children = graph.tuples[i].enumerated().map { (String($0.offset), $0.element) }
            case .set(let i): children = graph.sets[i].enumerated().map { (String($0.offset), $0.element) }
            case .dict(let i):
                let d = graph.dicts[i]
                children = zip(d.keys, d.values).map { (keyName($0.0), $0.1) }
            case .object(let i):
                let o = graph.objects[i]
                if let state = moduleState(o, graph: graph) {
                    children = state  // an nn.Module of a whole-model pickle: its state_dict() entries
                } else {
                    children = o.attributes.map { ($0.name, $0.value) }
                        + o.entries.map { (keyName($0.key), $0.value) }
                        + o.items.enumerated().map { (String($0.offset), $0.element) }
                }
            default:
                children = []
            }
            steps += children.count
            guard steps <= limits.maxOps else {
                throw CheckpointError(.limitExceeded(.ops, limit: limits.maxOps), entry: "tensor names")
            }
            let depth = paths[path].depth + 1
            for (part, child) in children.reversed() {
                switch child {
                case .tensor, .storage, .list, .tuple, .set, .dict, .object:
                    paths.append((path, part, depth))
                    work.append((paths.count - 1, child))
                default:
                    continue
                }
            }
        }
        return out
    }

    /// For an `nn.Module` restored as a record (a whole-model pickle: its instance dict holds
    /// `_parameters`, `_buffers` and `_modules`), the entries `state_dict()` walks, in its order:
    /// parameters (not None), persistent buffers (not None, not in `_non_persistent_buffers_set`),
    /// then submodules (not None). Nil for any other object.
    static func moduleState(_ o: InertObject, graph: PickleGraph) -> [(String, PickleValue)]? {
        var parameters: PickleDict?, buffers: PickleDict?, modules: PickleDict?
        var nonPersistent: Set<String> = []
        for a in o.attributes {
            switch (a.name, a.value) {
            case ("_parameters", .dict(let d)): parameters = graph.dicts[d]
            case ("_buffers", .dict(let d)): buffers = graph.dicts[d]
            case ("_modules", .dict(let d)): modules = graph.dicts[d]
            case ("_non_persistent_buffers_set", .set(let s)):
                for case .string(let name) in graph.sets[s] { nonPersistent.insert(name) }
            default: continue
            }
        }
        guard let parameters, let modules else { return nil }
        var out: [(String, PickleValue)] = []
        func add(_ d: PickleDict, skipping: Set<String> = []) {
            for (k, v) in zip(d.keys, d.values) {
                guard case .string(let name) = k, v != .none, !skipping.contains(name) else { continue }
                out.append((name, v))
            }
        }
        add(parameters)
        if let buffers { add(buffers, skipping: nonPersistent) }
        add(modules)
        return out
    }

    // MARK: - Queries

    /// The tensor named `name`, if any.
    public func tensor(named name: String) -> TensorRecord? {
        tensors.first { $0.name == name }?.tensor
    }

    /// Top-level entries of a dict root (`model`, `optimizer`, `epoch`, ...) with a short description.
    public var topLevel: [(key: String, summary: String)] {
        switch root {
        case .dict(let d):
            let dict = graph.dicts[d]
            return zip(dict.keys, dict.values).map { (k, v) in
                (key: { if case .string(let s) = k { return s } else { return graph.summary(k) } }(), summary: graph.summary(v))
            }
        case .object(let o):
            return graph.objects[o].attributes.map { (key: $0.name, summary: graph.summary($0.value)) }
        default:
            return []
        }
    }

    /// Total logical bytes of all listed tensors.
    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.tensor.nbytes } }
    /// Total number of elements of all listed tensors.
    public var totalElements: Int { tensors.reduce(0) { $0 + $1.tensor.numel } }
}
