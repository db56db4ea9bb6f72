import TorchportCore
/// Why an image could not be decoded. Every failure of ``ImageDecoder`` is one of these: a corrupt,
/// truncated or hostile file is reported, never crashes the process.
public struct ImageError: TorchportError, Equatable {
    /// The category of failure, for callers that react differently to each.
    public enum Kind: Sendable, Equatable {
        /// The file or buffer holds no bytes.
        case empty
        /// The bytes start with neither a JPEG nor a PNG signature.
        case unrecognizedFormat
        /// The data ends before the image does.
        case truncated
        /// The decoder found the data malformed (bad marker, bad CRC, bad Huffman code, ...).
        case corrupt
        /// The declared size exceeds ``ImageDecoder/Limits`` (refused before allocating pixels).
        case tooLarge(width: Int, height: Int)
        /// A valid file in a form this module does not handle (for example a 2-channel JPEG).
        case unsupported
        /// The file could not be read from disk.
        case unreadable
        /// A caller's argument (a size, a crop, padding, a preprocessing) that cannot be applied.
        case invalidArgument
    }

    /// The category of failure.
    public let kind: Kind
    /// The decoder's own explanation (libjpeg's or libpng's message where one exists).
    public let message: String
    /// The file the bytes came from, when known.
    public var file: String?

    /// Creates an error of `kind` explained by `message`, optionally naming the file.
    public init(_ kind: Kind, _ message: String, file: String? = nil) {
        self.kind = kind
        self.message = message
        self.file = file
    }

    /// The file, when known.
    public var location: ErrorLocation { ErrorLocation(file: file) }

    /// One line: the file (if known), the category and the decoder's message.
    public var description: String { file.map { "\($0): \(reason)" } ?? reason }

    /// The category and the decoder's message.
    public var reason: String {
        let what: String
        switch kind {
        case .empty: what = "empty file"
        case .unrecognizedFormat: what = "not a JPEG or PNG image"
        case .truncated: what = "truncated image"
        case .corrupt: what = "corrupt image"
        case .tooLarge(let w, let h): what = "image too large (\(w)x\(h))"
        case .unsupported: what = "unsupported image"
        case .unreadable: what = "cannot read file"
        case .invalidArgument: what = "invalid argument"
        }
        return message.isEmpty ? what : "\(what): \(message)"
    }
}
