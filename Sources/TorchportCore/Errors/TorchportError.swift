import Foundation
/// Where a failure happened: as much of the file, the entry inside it, the byte offset and the
/// key (dict key, tensor name, header key) as the layer that failed knew.
public struct ErrorLocation: Sendable, Equatable, CustomStringConvertible {
    /// The file, as the caller named it.
    public var file: String?
    /// The archive entry (a zip member, a section of a legacy stream such as `pickle:main`).
    public var entry: String?
    /// Byte offset inside `entry`, or inside the file.
    public var offset: Int?
    /// The dict key, tensor name, header key or global involved.
    public var key: String?

    /// A location with whatever is known.
    public init(file: String? = nil, entry: String? = nil, offset: Int? = nil, key: String? = nil) {
        self.file = file
        self.entry = entry
        self.offset = offset
        self.key = key
    }

    /// Nothing is known.
    public var isEmpty: Bool { file == nil && entry == nil && offset == nil && key == nil }

    /// `file, entry E, offset N, key K`, with what is known.
    public var description: String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if let entry { parts.append("entry \(entry)") }
        if let offset { parts.append("offset \(offset)") }
        if let key { parts.append("key \(key)") }
        return parts.joined(separator: ", ")
    }
}

/// The one shape of every public error of Torchport: what happened, as a `Kind` enum matched by
/// case (never by text), with its sentence in ``reason``; and where, in ``location``.
/// `description` and `localizedDescription` give both in one line.
///
/// ```swift
/// do { _ = try Checkpoint(contentsOf: url) }
/// catch let error as CheckpointError {
///     if case .disallowedGlobal(let module, let name) = error.kind { ... }
///     print(error.location.file ?? "-", error.localizedDescription)
/// }
/// ```
public protocol TorchportError: Error, LocalizedError, CustomStringConvertible, Sendable {
    /// The kinds of failure of this layer.
    associatedtype Kind: Sendable, Equatable
    /// What went wrong.
    var kind: Kind { get }
    /// Where it went wrong.
    var location: ErrorLocation { get }
    /// What went wrong, as one sentence without the location.
    var reason: String { get }
}

extension TorchportError {
    /// The reason, then the location in brackets when one is known.
    public var description: String { location.isEmpty ? reason : "\(reason) [\(location)]" }
    /// The same text as `description`.
    public var errorDescription: String? { description }

    /// The kind's case name (`mismatch` for `.mismatch(...)`): a stable short name for JSON output
    /// and logs (in Swift, match ``kind`` by case instead).
    public var code: String { Mirror(reflecting: kind).children.first?.label ?? String(describing: kind) }
}

/// A file that cannot be opened or mapped for reading.
public struct FileAccessError: TorchportError {
    /// Why the file cannot be read.
    public enum Kind: Sendable, Equatable {
        /// `open` failed (the system's message).
        case cannotOpen(String)
        /// `fstat` failed (the system's message).
        case cannotStat(String)
        /// The path names a FIFO, a directory, a device or a socket (named in the string).
        case notARegularFile(String)
        /// `mmap` failed (the system's message).
        case cannotMap(String)
    }

    /// What went wrong.
    public let kind: Kind
    /// The file.
    public let location: ErrorLocation

    /// An error of `kind` about `file`.
    public init(_ kind: Kind, file: String) {
        self.kind = kind
        location = ErrorLocation(file: file)
    }

    /// What went wrong, in one sentence.
    public var reason: String {
        switch kind {
        case .cannotOpen(let m): "cannot open: \(m)"
        case .cannotStat(let m): "cannot stat: \(m)"
        case .notARegularFile(let what): "\(what), not a regular file: checkpoints are read from files"
        case .cannotMap(let m): "cannot map: \(m)"
        }
    }
}
