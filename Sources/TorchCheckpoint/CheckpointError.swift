import Foundation
import TorchportCore

/// Every failure of the reader: what went wrong (`kind`) and where (`file`, `entry`, byte `offset`,
/// pickle `opcode`, `key`). The reader never traps on file data; it throws one of these.
public struct CheckpointError: TorchportError {
    /// What went wrong.
    public var kind: Kind
    /// The file being read (as given by the caller).
    public var file: String?
    /// The archive entry (zip member, or a section of a legacy stream such as `pickle:main`).
    public var entry: String?
    /// Byte offset inside `entry` (or inside the file for container-level errors).
    public var offset: Int?
    /// The pickle opcode being executed, when the error came from the unpickler.
    public var opcode: UInt8?
    /// The dict key, tensor path or global involved.
    public var key: String?

    /// Creates an error of `kind`, with whatever context is known.
    public init(_ kind: Kind, file: String? = nil, entry: String? = nil, offset: Int? = nil,
                opcode: UInt8? = nil, key: String? = nil) {
        self.kind = kind
        self.file = file
        self.entry = entry
        self.offset = offset
        self.opcode = opcode
        self.key = key
    }

    /// The resource limits of ``ReaderLimits``, named in ``Kind/limitExceeded(_:limit:)``.
    public enum Limit: String, Sendable {
        /// One per bound of ``ReaderLimits``: `depth` (``ReaderLimits/maxDepth``), `memo` (``ReaderLimits/maxMemoEntries``),
        /// `ops` (``ReaderLimits/maxOps``), `elements` (``ReaderLimits/maxElements``), `stack`
        /// (``ReaderLimits/maxStackSize``), `entrySize` (``ReaderLimits/maxInflatedEntryBytes``), `entries`
        /// (``ReaderLimits/maxEntries``), `names` (``ReaderLimits/maxNameBytes``), `inflatedTotal`
        /// (``ReaderLimits/maxInflatedTotalBytes``); `headerSize` is named but no current bound raises it.
        case depth, memo, ops, elements, stack, entrySize, headerSize, entries, names, inflatedTotal
    }

    /// The kinds of failure, grouped by the layer of the reader that detects them.
    public enum Kind: Sendable, Equatable {
        // MARK: Files and containers
        /// The bytes are not a zip archive, a legacy stream, or anything else Torchport knows.
        case unrecognizedFormat(String)
        /// Reading past the end of the available bytes.
        case truncated(needed: Int, available: Int)
        /// The zip end record, Zip64 records or central directory contradict the file.
        case zipStructure(String)
        /// A zip entry's data (or local header) extends past the end of the file.
        case zipEntryOutOfBounds(name: String)
        /// Two zip entries' data ranges overlap.
        case zipOverlappingEntries(String, String)
        /// The same name appears twice in the central directory.
        case zipDuplicateEntry(String)
        /// torch's zip reader (miniz) and Torchport's could read different bytes from this archive:
        /// two entries whose names differ only in case (miniz looks names up case-insensitively),
        /// or an end record that miniz would take and Torchport could not. Refused, never guessed.
        case zipAmbiguous(String)
        /// An entry name with `..`, an absolute path, a backslash or a NUL byte.
        case zipUnsafeName(String)
        /// A compression method other than stored (0) or deflate (8).
        case zipUnsupportedCompression(method: Int)
        /// Inflating a compressed entry failed or produced a size other than the declared one.
        case zipInflate(String)
        /// A required entry (e.g. `data.pkl`, a storage `data/<key>`) is absent.
        case missingEntry(String)
        /// The legacy stream does not start with torch's magic number.
        case legacyMagicMismatch
        /// The legacy stream's protocol version is not 1001.
        case legacyProtocolVersion(Int)
        /// A legacy storage's element count is negative, overflows, or exceeds the remaining bytes.
        case legacyStorageSize(key: String, count: Int64)
        /// The legacy stream lists a storage the pickle never referenced (or the reverse).
        case legacyStorageKeys(String)

        // MARK: Pickle structure
        /// An opcode byte that is not a pickle opcode of protocols 0 to 5.
        case unknownOpcode(UInt8)
        /// An opcode popped more values than the stack holds above the current MARK.
        case stackUnderflow
        /// An opcode that collects items up to a MARK ran with no MARK open.
        case missingMark
        /// The pickle ended without a STOP opcode.
        case missingStop
        /// Bytes follow STOP where nothing should.
        case trailingData(count: Int)
        /// A memo GET of an index that was never PUT.
        case memoMissing(index: Int)
        /// A declared length is negative, or beyond the remaining bytes.
        case badLength(Int64)
        /// A string operand is not valid UTF-8 (or a protocol 0 UNICODE `\u` escape is not a valid code point).
        case invalidUTF8
        /// An opcode operand that is not well formed (e.g. a bad decimal INT, an unquoted STRING).
        case malformedOperand(String)
        /// FRAME misuse: a frame that straddles the end of the data, or an opcode across frames.
        case frameBoundary(String)
        /// An unsupported protocol number in PROTO.
        case unsupportedProtocol(Int)
        /// A configured ``ReaderLimits`` bound was exceeded.
        case limitExceeded(Limit, limit: Int)

        // MARK: Globals and objects
        /// A global outside the allowlists; the file is refused (nothing was called).
        case disallowedGlobal(module: String, name: String)
        /// GLOBAL / STACK_GLOBAL names that are not plain strings or valid dotted identifiers.
        case invalidGlobal(String)
        /// An opcode applied to a value of the wrong kind (BUILD on a list, SETITEM on a tensor, ...).
        case wrongType(operation: String, expected: String, got: String)
        /// An interpreted function called with the wrong argument count or types.
        case badArguments(function: String, reason: String)
        /// A persistent id that is not a storage reference Torchport understands.
        case badPersistentID(String)
        /// EXT1/EXT2/EXT4 refer to the extension registry, which would import code.
        case extensionRegistry(code: Int)

        // MARK: Tensors
        /// A storage class or dtype that is not a tensor storage.
        case unknownStorageType(String)
        /// A storage key with `/`, `..`, or other characters that could escape the archive folder.
        case unsafeStorageKey(String)
        /// Negative sizes or strides, or a shape whose element count overflows.
        case badShape(String)
        /// The tensor's view reaches outside its storage.
        case tensorOutOfBounds(needed: Int, available: Int)
        /// Two references to one storage disagree on its dtype or size.
        case storageMismatch(String)
        /// Could not map or read the file from disk.
        case io(String)
        /// A checkpoint spread over several files (a Hugging Face `*.index.json` and its shards, a
        /// `torch.distributed.checkpoint` folder) whose parts do not fit together: a path that
        /// leaves the folder, a missing shard or tensor, a name twice, chunks that do not tile
        /// their tensor (the reason is in the string; the file and key in the location).
        case layout(String)
    }

    /// What went wrong, in one sentence.
    public var reason: String {
        switch kind {
        case .unrecognizedFormat(let s): "not a PyTorch checkpoint: \(s)"
        case .truncated(let n, let a): "truncated: needed \(n) bytes, \(a) available"
        case .zipStructure(let s): "inconsistent zip archive: \(s)"
        case .zipEntryOutOfBounds(let n): "zip entry '\(n)' extends past the end of the file"
        case .zipOverlappingEntries(let a, let b): "zip entries '\(a)' and '\(b)' overlap"
        case .zipDuplicateEntry(let n): "duplicate zip entry '\(n)'"
        case .zipAmbiguous(let s): "ambiguous zip archive (torch.load could read other bytes than Torchport): \(s)"
        case .zipUnsafeName(let n): "unsafe zip entry name \(n.debugDescription)"
        case .zipUnsupportedCompression(let m): "unsupported zip compression method \(m)"
        case .zipInflate(let s): "cannot inflate entry: \(s)"
        case .missingEntry(let n): "missing entry '\(n)'"
        case .legacyMagicMismatch: "legacy stream does not start with torch's magic number"
        case .legacyProtocolVersion(let v): "legacy protocol version \(v), expected 1001"
        case .legacyStorageSize(let k, let c): "legacy storage '\(k)' declares \(c) elements, more than the file holds"
        case .legacyStorageKeys(let s): "legacy storage keys: \(s)"
        case .unknownOpcode(let op): "unknown pickle opcode 0x\(String(op, radix: 16))"
        case .stackUnderflow: "pickle stack underflow"
        case .missingMark: "pickle MARK expected but absent"
        case .missingStop: "pickle ends without STOP"
        case .trailingData(let n): "\(n) bytes after the pickle's STOP"
        case .memoMissing(let i): "memo index \(i) read before it was set"
        case .badLength(let l): "declared length \(l) is negative or beyond the remaining bytes"
        case .invalidUTF8: "invalid UTF-8 in a string"
        case .malformedOperand(let s): "malformed operand: \(s)"
        case .frameBoundary(let s): "frame boundary: \(s)"
        case .unsupportedProtocol(let p): "unsupported pickle protocol \(p)"
        case .limitExceeded(let l, let v): "\(l.rawValue) limit exceeded (limit \(v))"
        case .disallowedGlobal(let m, let n): "refused global '\(m).\(n)' (not on the allowlist; nothing was executed)"
        case .invalidGlobal(let s): "invalid global reference: \(s)"
        case .wrongType(let op, let e, let g): "\(op) expects \(e), got \(g)"
        case .badArguments(let f, let r): "bad arguments to \(f): \(r)"
        case .badPersistentID(let s): "bad persistent id: \(s)"
        case .extensionRegistry(let c): "extension registry code \(c) refused"
        case .unknownStorageType(let s): "unknown storage type '\(s)'"
        case .unsafeStorageKey(let s): "unsafe storage key \(s.debugDescription)"
        case .badShape(let s): "bad tensor shape: \(s)"
        case .tensorOutOfBounds(let n, let a): "tensor needs \(n) bytes of its storage, which holds \(a)"
        case .storageMismatch(let s): "storage mismatch: \(s)"
        case .io(let s): "I/O error: \(s)"
        case .layout(let s): "inconsistent multi-file checkpoint: \(s)"
        }
    }

    /// The reason, followed by the known context in brackets (file, entry, offset, opcode, key).
    public var description: String {
        var context: [String] = []
        if let file { context.append(file) }
        if let entry { context.append("entry \(entry)") }
        if let offset { context.append("offset \(offset)") }
        if let opcode { context.append(String(format: "opcode 0x%02x", opcode)) }
        if let key { context.append("key \(key)") }
        return context.isEmpty ? reason : "\(reason) [\(context.joined(separator: ", "))]"
    }
}

extension CheckpointError {
    /// File, entry, offset and key (the pickle opcode is in ``opcode`` and ``description``).
    public var location: ErrorLocation { ErrorLocation(file: file, entry: entry, offset: offset, key: key) }
}

extension CheckpointError {
    /// Fills in context that an inner layer did not know.
    func with(file: String? = nil, entry: String? = nil) -> CheckpointError {
        var e = self
        if e.file == nil { e.file = file }
        if e.entry == nil { e.entry = entry }
        return e
    }
}

/// Inner layers that know no context yet return a bare `Kind`; callers wrap it with context.
extension CheckpointError.Kind: Error {}
