import Foundation
import TorchportCore

/// Every failure of the safetensors reader and writer: what went wrong (`kind`) and where (`file`,
/// the tensor name or header `key`, the byte `offset` in the file). The reader never traps on file
/// data; it throws one of these.
public struct SafeTensorsError: TorchportError {
    /// What went wrong.
    public var kind: Kind
    /// The file being read or written (as given by the caller).
    public var file: String?
    /// The header key (tensor name, or `__metadata__`) involved.
    public var key: String?
    /// Byte offset in the file: of the JSON token for header errors, of the entry's key for entry
    /// errors, of the data for offset errors.
    public var offset: Int?

    /// Creates an error of `kind`, with whatever context is known.
    public init(_ kind: Kind, file: String? = nil, key: String? = nil, offset: Int? = nil) {
        self.kind = kind
        self.file = file
        self.key = key
        self.offset = offset
    }

    /// The kinds of failure, grouped by the part of the file they concern.
    public enum Kind: Sendable, Equatable {
        // MARK: The 8-byte length and the header
        /// The file is shorter than the 8-byte header length.
        case truncated(size: Int)
        /// The declared header length exceeds what the file holds after the 8-byte prefix.
        case headerLength(declared: UInt64, available: Int)
        /// The declared header length exceeds the reader's cap (`maxHeaderBytes`).
        case headerTooLarge(declared: UInt64, limit: Int)
        /// The header is not valid UTF-8 (`offset` points at the first bad byte).
        case invalidUTF8
        /// The header is not well-formed JSON (or is JSON the strict parser refuses).
        case invalidJSON(String)
        /// Arrays and objects nest deeper than the parser allows.
        case jsonTooDeep(limit: Int)
        /// The header's JSON value is not an object (an array, a string, ...).
        case notAnObject(found: String)
        /// A key appears twice in one JSON object (byte-equal, or canonically equivalent Unicode).
        case duplicateKey(String)

        // MARK: Entries
        /// `__metadata__` is not an object of string values.
        case invalidMetadata(String)
        /// A tensor entry lacks a field, has an extra one, or has a field of the wrong type or value.
        case invalidEntry(key: String, reason: String)
        /// A dtype string that is not a safetensors dtype at all.
        case unknownDType(key: String, dtype: String)
        /// A safetensors dtype Torchport has no `DType` for (U16, U32, U64, F8_*, ...), or a `DType`
        /// safetensors cannot store (complex128).
        case unsupportedDType(key: String, dtype: String)
        /// A dimension, or the product of the shape and the dtype size, does not fit in `Int`.
        case shapeOverflow(key: String)
        /// `shape x dtype size` differs from the entry's byte count.
        case sizeMismatch(key: String, expected: Int, actual: Int)

        // MARK: The data buffer
        /// Entries sorted by offset leave unclaimed bytes before this one (`expected` is where it
        /// should begin; a first entry not at 0 is a hole too).
        case offsetsHole(key: String, expected: Int, found: Int)
        /// This entry begins before the previous one ends.
        case offsetsOverlap(key: String, expected: Int, found: Int)
        /// This entry ends past the end of the data buffer.
        case offsetsOutOfBounds(key: String, end: Int, bufferSize: Int)
        /// The entries end before the data buffer does (trailing bytes nobody claims).
        case bufferSizeMismatch(covered: Int, bufferSize: Int)

        // MARK: Files
        /// Could not open, map, write, sync or rename a file.
        case io(String)
    }

    /// What went wrong, in one sentence.
    public var reason: String {
        switch kind {
        case .truncated(let s): "not a safetensors file: \(s) bytes, fewer than the 8-byte header length"
        case .headerLength(let d, let a): "header length \(d) exceeds the \(a) bytes after the length prefix"
        case .headerTooLarge(let d, let l): "header length \(d) exceeds the limit of \(l) bytes"
        case .invalidUTF8: "header is not valid UTF-8"
        case .invalidJSON(let s): "invalid JSON in header: \(s)"
        case .jsonTooDeep(let l): "header JSON nests deeper than \(l) levels"
        case .notAnObject(let f): "header is \(f), not a JSON object"
        case .duplicateKey(let k): "duplicate key \(k.debugDescription) in header"
        case .invalidMetadata(let s): "invalid __metadata__: \(s)"
        case .invalidEntry(let k, let r): "invalid entry \(k.debugDescription): \(r)"
        case .unknownDType(let k, let d): "tensor \(k.debugDescription) has unknown dtype \(d.debugDescription)"
        case .unsupportedDType(let k, let d): "tensor \(k.debugDescription) has dtype \(d), which Torchport does not support in safetensors"
        case .shapeOverflow(let k): "tensor \(k.debugDescription): shape x dtype size overflows"
        case .sizeMismatch(let k, let e, let a): "tensor \(k.debugDescription): shape x dtype size is \(e) bytes, its data holds \(a)"
        case .offsetsHole(let k, let e, let f): "tensor \(k.debugDescription) begins at \(f), leaving a hole after \(e)"
        case .offsetsOverlap(let k, let e, let f): "tensor \(k.debugDescription) begins at \(f), overlapping data up to \(e)"
        case .offsetsOutOfBounds(let k, let e, let b): "tensor \(k.debugDescription) ends at \(e), past the \(b)-byte data buffer"
        case .bufferSizeMismatch(let c, let b): "tensors cover \(c) bytes of a \(b)-byte data buffer"
        case .io(let s): "I/O error: \(s)"
        }
    }

    /// The reason, followed by the known context in brackets (file, key, offset).
    public var description: String {
        var context: [String] = []
        if let file { context.append(file) }
        if let key { context.append("key \(key.debugDescription)") }
        if let offset { context.append("offset \(offset)") }
        return context.isEmpty ? reason : "\(reason) [\(context.joined(separator: ", "))]"
    }
}

extension SafeTensorsError {
    /// File, header key and byte offset.
    public var location: ErrorLocation { ErrorLocation(file: file, offset: offset, key: key) }
}

extension SafeTensorsError {
    /// Fills in context that an inner layer did not know.
    func with(file: String?) -> SafeTensorsError {
        var e = self
        if e.file == nil { e.file = file }
        return e
    }
}
