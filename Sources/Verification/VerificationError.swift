import Foundation
import TorchCheckpoint
import TorchportCore

/// Why a golden file (or a computed output checked against one) cannot be used: what went wrong
/// (`kind`) and in which file. Loading never traps on file data; it throws one of these, and the
/// CLI maps every one of them to exit code 2 (``ExitStatus/unusableFile``).
public struct VerificationError: TorchportError {
    /// What went wrong.
    public var kind: Kind
    /// The golden file, as the caller named it.
    public var file: String?
    /// The checkpoint reader's own error when it could not parse the file (``Kind/unreadable(_:)``);
    /// a safetensors reader's error is kept in the kind's text.
    public var underlying: CheckpointError?
    /// What the file looks like, when that helps (the tensors it holds; an NHWC input; a model
    /// given where a golden was expected).
    public var hint: String?

    /// Creates an error of `kind`, with the file and the reader's error when known.
    public init(_ kind: Kind, file: String? = nil, underlying: CheckpointError? = nil) {
        self.kind = kind
        self.file = file
        self.underlying = underlying
    }

    /// The kinds of failure.
    public enum Kind: Sendable, Equatable {
        /// The file is not a checkpoint Torchport can read; the reason is the reader's.
        case unreadable(String)
        /// A tensor the golden must hold is absent: `input`; `logits` when the file has no output
        /// at all (neither `logits` nor `features` nor `feature_map`); or the output asked for.
        case missingTensor(String)
        /// A tensor has the wrong rank or sizes; `expected` describes the layout, e.g. `N x 3 x H x W`.
        case badShape(name: String, shape: [Int], expected: String)
        /// A tensor has the wrong element type (`input` and `logits` must be float32).
        case dtype(name: String, dtype: DType, expected: DType)
        /// A tensor's batch size (first dimension) differs from `input`'s.
        case batchMismatch(name: String, batch: Int, expected: Int)
        /// A reference value is NaN or infinite: nothing can be verified against it.
        case nonFinite(name: String, index: Int)
        /// Computed output's shape differs from the golden's.
        case shapeMismatch(name: String, computed: [Int], reference: [Int])
    }

    /// Always ``ExitStatus/unusableFile`` (2).
    public var exitCode: Int32 { ExitStatus.unusableFile }

    /// What went wrong, in one sentence.
    public var reason: String {
        switch kind {
        case .unreadable(let s): "unreadable golden file: \(s)"
        case .missingTensor(let n) where n == GoldenTensor.logits:
            "golden has no tensor 'logits' (nor 'features' or 'feature_map', which a headless backbone's golden holds)"
        case .missingTensor(let n): "golden has no tensor '\(n)'"
        case .badShape(let n, let s, let e): "tensor '\(n)' has shape \(Self.shape(s)), expected \(e)"
        case .dtype(let n, let d, let e): "tensor '\(n)' is \(d.rawValue), expected \(e.rawValue)"
        case .batchMismatch(let n, let b, let e): "tensor '\(n)' holds \(b) samples, 'input' holds \(e)"
        case .nonFinite(let n, let i): "tensor '\(n)' holds a NaN or infinite value at flat index \(i)"
        case .shapeMismatch(let n, let c, let r):
            "computed \(n) have shape \(Self.shape(c)), the golden's have \(Self.shape(r))"
        }
    }

    static func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }

    /// The reason, followed by the file in brackets when known.
    public var description: String {
        let text = hint.map { "\(reason); \($0)" } ?? reason
        guard let file else { return text }
        return "\(text) [\(file)]"
    }
}

extension VerificationError {
    /// The golden file.
    public var location: ErrorLocation { ErrorLocation(file: file) }
}
