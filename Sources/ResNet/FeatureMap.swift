import TorchportCore

/// A batch of images or feature maps, float32, layout NCHW (as torch): the model's input.
///
/// ```swift
/// let input = try FeatureMap(n: 1, c: 3, h: 224, w: 224, data: pixels)  // throws on a wrong size
/// ```
public struct FeatureMap: Sendable {
    /// Batch size, channels, height and width.
    public private(set) var n: Int, c: Int, h: Int, w: Int
    /// The elements in NCHW order (`n * c * h * w` floats).
    public internal(set) var data: [Float]

    /// A feature map over NCHW `data`; throws ``InputError`` when a dimension is negative, the
    /// element count overflows, or `data.count` is not `n * c * h * w`.
    public init(n: Int, c: Int, h: Int, w: Int, data: [Float]) throws(InputError) {
        let shape = [n, c, h, w]
        guard shape.allSatisfy({ $0 >= 0 }) else { throw InputError(.negativeDimension(shape: shape)) }
        guard let count = Shape.elementCount(shape) else { throw InputError(.sizeOverflow(shape: shape)) }
        guard data.count == count else { throw InputError(.sizeMismatch(shape: shape, count: data.count)) }
        self.init(unchecked: n, c: c, h: h, w: w, data: data)
    }

    /// A feature map of shape `[n, c, h, w]` from `[n, c, h, w]`-shaped `shape` and `data`.
    public init(shape: [Int], data: [Float]) throws(InputError) {
        guard shape.count == 4 else { throw InputError(.rank(shape: shape)) }
        try self.init(n: shape[0], c: shape[1], h: shape[2], w: shape[3], data: data)
    }

    /// A map whose size the engine computed.
    init(unchecked n: Int, c: Int, h: Int, w: Int, data: [Float]) {
        self.n = n; self.c = c; self.h = h; self.w = w
        self.data = data
    }

    /// Storage every element of which the caller overwrites (no zero fill).
    init(n: Int, c: Int, h: Int, w: Int) {
        let count = n * c * h * w
        self.init(unchecked: n, c: c, h: h, w: w, data: [Float](unsafeUninitializedCapacity: count) { _, initialized in
            initialized = count
        })
    }

    /// `[n, c, h, w]`.
    public var shape: [Int] { [n, c, h, w] }
    var plane: Int { h * w }
    var imageSize: Int { c * h * w }
}

/// An input the model cannot take.
public struct InputError: TorchportError, Equatable {
    /// What is wrong with the input.
    public enum Kind: Sendable, Equatable {
        /// A negative dimension.
        case negativeDimension(shape: [Int])
        /// The element count of `shape` overflows `Int`.
        case sizeOverflow(shape: [Int])
        /// `count` elements given for `shape`.
        case sizeMismatch(shape: [Int], count: Int)
        /// A shape that is not `[n, c, h, w]`.
        case rank(shape: [Int])
        /// A ResNet takes 3 input channels.
        case channels(expected: Int, got: Int)
        /// No images.
        case emptyBatch
        /// Too small to stay at least 1x1 through the stem, the pool and three stride-2 stages.
        case tooSmall(height: Int, width: Int)
    }

    /// What is wrong.
    public let kind: Kind
    /// Always empty: an input is the caller's value, not a file.
    public var location: ErrorLocation { ErrorLocation() }

    /// An error of `kind`.
    public init(_ kind: Kind) { self.kind = kind }

    /// What is wrong, in one sentence.
    public var reason: String {
        func text(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
        switch kind {
        case .negativeDimension(let s): return "bad input: shape \(text(s)) has a negative dimension"
        case .sizeOverflow(let s): return "bad input: shape \(text(s)) holds more elements than memory can"
        case .sizeMismatch(let s, let c): return "bad input: shape \(text(s)) needs \(s.reduce(1, *)) floats, got \(c)"
        case .rank(let s): return "bad input: shape \(text(s)) is not [n, c, h, w]"
        case .channels(let e, let g): return "bad input: expected \(e) input channels, got \(g)"
        case .emptyBatch: return "bad input: empty batch"
        case .tooSmall(let h, let w): return "bad input: input \(h)x\(w) is too small for a ResNet"
        }
    }
}
