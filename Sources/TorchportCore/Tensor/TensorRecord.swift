/// A tensor of a checkpoint: dtype, shape, strides and storage offset (in elements, as torch
/// counts them) over its storage's bytes, already validated against them. Contiguous tensors of
/// stored entries are views of the mapped file; non-contiguous ones are gathered on request.
public struct TensorRecord: Sendable {
    /// The element type.
    public let dtype: DType
    /// The dimensions, outermost first (empty for a scalar).
    public let shape: [Int]
    /// Steps between neighbours along each dimension, in elements.
    public let strides: [Int]
    /// Offset of the first element from the start of the storage, in elements.
    public let storageOffset: Int
    /// Number of elements (the product of `shape`).
    public let numel: Int
    /// The key of the storage in the checkpoint (`data/<key>` in a zip); tensors sharing a storage
    /// share it. For a contiguous tensor made from bytes, the `name` it was given.
    public let storageKey: String
    /// Where the storage says it lived when saved (`cpu`, `cuda:0`): informational, read on the CPU.
    public let location: String
    /// Whether the tensor was saved with `requires_grad`.
    public let requiresGrad: Bool
    /// Whether the tensor was saved as an `nn.Parameter` (rather than a plain tensor or a buffer).
    public let isParameter: Bool
    /// All bytes of the storage (little-endian).
    public let storage: ByteSlice

    /// A record from a reader that has validated the view against its storage.
    package init(dtype: DType, shape: [Int], strides: [Int], storageOffset: Int, numel: Int, storageKey: String,
                 location: String, requiresGrad: Bool, isParameter: Bool, storage: ByteSlice) {
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.storageOffset = storageOffset
        self.numel = numel
        self.storageKey = storageKey
        self.location = location
        self.requiresGrad = requiresGrad
        self.isParameter = isParameter
        self.storage = storage
    }

    /// A contiguous tensor over `bytes` (e.g. a safetensors entry, or computed data). Returns nil
    /// when `bytes` does not hold exactly `shape.product * dtype.size` bytes.
    public init?(dtype: DType, shape: [Int], bytes: ByteSlice, name: String = "") {
        guard let n = Shape.elementCount(shape), let total = Shape.elementCount(shape, times: dtype.size),
              total == bytes.count else { return nil }
        self.dtype = dtype
        self.shape = shape
        strides = Self.contiguousStrides(shape)
        storageOffset = 0
        numel = n
        storageKey = name
        location = "cpu"
        requiresGrad = false
        isParameter = false
        storage = bytes
    }

    /// Logical size in bytes (`numel * dtype.size`).
    public var nbytes: Int { numel * dtype.size }

    /// Row-major strides for `shape`.
    public static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var s = Array(repeating: 1, count: shape.count)
        var acc = 1
        for i in shape.indices.reversed() {
            s[i] = acc
            acc = acc &* max(shape[i], 1)
        }
        return s
    }

    /// True when the elements lie in row-major order without gaps (size-1 dimensions ignored).
    public var isContiguous: Bool {
        if numel <= 1 { return true }
        var expected = 1
        for (size, stride) in zip(shape, strides).reversed() where size != 1 {
            if stride != expected { return false }
            expected *= size
        }
        return true
    }

    /// The bytes of a contiguous tensor as a view of its storage (no copy); nil when not contiguous.
    public var contiguousView: ByteSlice? {
        guard isContiguous else { return nil }
        // Validated at load: offset + numel fits the storage.
        return storage.slice(storageOffset * dtype.size, nbytes)
    }

    /// Calls `body` with the tensor's values in logical (row-major) order: the mapped bytes
    /// themselves when contiguous, a gathered copy otherwise.
    public func withContiguousBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let view = contiguousView { return try body(view.buffer) }
        let copy = gathered()
        return try copy.withUnsafeBytes(body)
    }

    /// The tensor's values in logical order, as a new array of bytes.
    public func contiguousBytes() -> [UInt8] {
        if let view = contiguousView { return Array(view.buffer) }
        return gathered()
    }

    /// Gathers a strided view into row-major order, one element (or inner run) at a time.
    private func gathered() -> [UInt8] {
        let size = dtype.size
        var out = [UInt8](repeating: 0, count: nbytes)
        guard numel > 0 else { return out }
        let src = storage.buffer
        let rank = shape.count
        // Copy innermost runs with memcpy when the last dimension is dense.
        let innerDense = rank > 0 && strides[rank - 1] == 1
        let run = innerDense ? shape[rank - 1] : 1
        let outerRank = innerDense ? rank - 1 : rank
        var index = Array(repeating: 0, count: outerRank)
        var srcElem = storageOffset
        var dst = 0
        out.withUnsafeMutableBytes { o in
            while true {
                o.baseAddress!.advanced(by: dst).copyMemory(from: src.baseAddress!.advanced(by: srcElem * size), byteCount: run * size)
                dst += run * size
                var d = outerRank - 1
                while d >= 0 {
                    index[d] += 1
                    srcElem += strides[d]
                    if index[d] < shape[d] { break }
                    srcElem -= strides[d] * shape[d]
                    index[d] = 0
                    d -= 1
                }
                if d < 0 { break }
            }
        }
        return out
    }

    /// Values widened to `Float` in logical order (float, integer and bool dtypes; the real part
    /// of complex ones).
    public func floats() -> [Float] { widened(Float.self) }

    /// Values as `Double` in logical order: exact for every dtype but 64-bit integers beyond 2^53.
    public func doubles() -> [Double] { widened(Double.self) }

    private func widened<T: BinaryFloatingPoint>(_: T.Type) -> [T] {
        withContiguousBytes { b in
            [T](unsafeUninitializedCapacity: numel) { out, initialized in
                // One loop per dtype: the switch stays outside (little-endian host, like every read here).
                func fill(_ value: (Int) -> T) {
                    for i in 0..<numel { out[i] = value(i) }
                }
                switch dtype {
                case .float32: fill { T(b.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self)) }
                case .float64: fill { T(b.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
                case .float16: fill { T(FloatCast.float(halfBits: b.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
                case .bfloat16: fill { T(FloatCast.float(bfloat16Bits: b.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
                case .int64: fill { T(b.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
                case .int32: fill { T(b.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
                case .int16: fill { T(b.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self)) }
                case .int8: fill { T(Int8(bitPattern: b[$0])) }
                case .uint8, .bool: fill { T(b[$0]) }
                case .complex64: fill { T(b.loadUnaligned(fromByteOffset: $0 * 8, as: Float.self)) }
                case .complex128: fill { T(b.loadUnaligned(fromByteOffset: $0 * 16, as: Double.self)) }
                }
                initialized = numel
            }
        }
    }
}

/// A tensor reached from the root, by its full dotted path (`model.layer1.0.conv1.weight`).
public struct NamedTensor: Sendable {
    /// The full dotted path from the root.
    public let name: String
    /// The tensor.
    public let tensor: TensorRecord

    /// Pairs a name with a tensor.
    public init(name: String, tensor: TensorRecord) {
        self.name = name
        self.tensor = tensor
    }
}
