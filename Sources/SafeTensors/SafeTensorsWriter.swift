import TorchportCore

/// Writes safetensors files. With the default ``Order/safetensors`` the bytes are identical to
/// what Python's `safetensors.torch.save_file` / `safetensors.numpy.save_file` write for the same
/// tensors, whenever the metadata has at most one key (Python writes several keys in hash-map
/// order, which changes from run to run; Torchport sorts them). See docs/safetensors.md.
public enum SafeTensorsWriter {
    /// The order of tensors in the header and the data buffer.
    public enum Order: Sendable {
        /// The reference implementation's order: dtype size descending (its `Dtype` enum order,
        /// reversed), then name by UTF-8 bytes. Every tensor then starts at a multiple of its
        /// element size (relative to the 8-aligned buffer).
        case safetensors
        /// The order given; no alignment beyond what the sizes give.
        case asGiven
    }

    /// One tensor to write.
    public struct Entry {
        /// Where the entry's bytes come from.
        public enum Source {
            /// Contiguous little-endian bytes, held in memory.
            case bytes([UInt8])
            /// A tensor record (any layout; non-contiguous ones are gathered while writing).
            case record(TensorRecord)
            /// Memory owned by the caller, which must stay valid until the write returns.
            case unsafeBuffer(UnsafeRawBufferPointer)
        }

        /// The tensor's name, the key in the header.
        public let name: String
        /// The element type.
        public let dtype: DType
        /// The dimensions (empty for a scalar).
        public let shape: [Int]
        /// Where the bytes come from.
        public let source: Source

        /// A tensor of contiguous little-endian `bytes` (`shape x dtype.size` of them).
        public init(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) {
            self.init(name: name, dtype: dtype, shape: shape, source: .bytes(bytes))
        }

        /// A tensor record (any layout; non-contiguous ones are gathered while writing).
        public init(name: String, tensor: TensorRecord) {
            self.init(name: name, dtype: tensor.dtype, shape: tensor.shape, source: .record(tensor))
        }

        /// Contiguous little-endian bytes in caller-owned memory, valid until the write returns.
        public init(name: String, dtype: DType, shape: [Int], unsafeBuffer: UnsafeRawBufferPointer) {
            self.init(name: name, dtype: dtype, shape: shape, source: .unsafeBuffer(unsafeBuffer))
        }

        /// A tensor with an explicit byte source; the byte count must equal `shape x dtype.size`.
        public init(name: String, dtype: DType, shape: [Int], source: Source) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.source = source
        }

        var byteCount: Int {
            switch source {
            case .bytes(let b): b.count
            case .record(let r): r.nbytes
            case .unsafeBuffer(let b): b.count
            }
        }

        /// Calls `body` with the tensor's bytes in row-major order.
        func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            switch source {
            case .bytes(let b): try b.withUnsafeBytes(body)
            case .record(let r): try r.withContiguousBytes(body)
            case .unsafeBuffer(let b): try body(b)
            }
        }
    }

    /// The validated layout of a file: its header bytes (length prefix included) and the entries
    /// in data order.
    public struct Layout {
        /// The 8-byte length followed by the space-padded JSON header.
        public let prefix: [UInt8]
        /// The entries in the order of their data.
        public let entries: [Entry]
        /// Size of the data buffer.
        public let dataSize: Int
        /// Size of the whole file.
        public var fileSize: Int { prefix.count + dataSize }
    }

    // MARK: - Convenience inputs

    /// Tuples of contiguous bytes, as `(name, dtype, shape, bytes)`.
    public static func entries(_ tensors: [(name: String, dtype: DType, shape: [Int], bytes: [UInt8])]) -> [Entry] {
        tensors.map { Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: $0.bytes) }
    }

    /// Named tensor records, as read from a checkpoint or a safetensors file.
    public static func entries(_ tensors: [NamedTensor]) -> [Entry] {
        tensors.map { Entry(name: $0.name, tensor: $0.tensor) }
    }

    // MARK: - Serializing

    /// The whole file in memory.
    public static func serialize(_ entries: [Entry], metadata: [String: String]? = nil,
                                 order: Order = .safetensors) throws(SafeTensorsError) -> [UInt8] {
        let plan = try layout(entries, metadata: metadata, order: order)
        var out = plan.prefix
        out.reserveCapacity(plan.fileSize)
        for e in plan.entries { e.withBytes { out.append(contentsOf: $0) } }
        return out
    }

    /// The whole file in memory, from named tensor records.
    public static func serialize(_ tensors: [NamedTensor], metadata: [String: String]? = nil,
                                 order: Order = .safetensors) throws(SafeTensorsError) -> [UInt8] {
        try serialize(entries(tensors), metadata: metadata, order: order)
    }

    /// The whole file in memory, from `(name, dtype, shape, bytes)` tuples.
    public static func serialize(_ tensors: [(name: String, dtype: DType, shape: [Int], bytes: [UInt8])],
                                 metadata: [String: String]? = nil,
                                 order: Order = .safetensors) throws(SafeTensorsError) -> [UInt8] {
        try serialize(entries(tensors), metadata: metadata, order: order)
    }

    /// Validates the entries and computes the header. `metadata` nil writes no `__metadata__`;
    /// an empty dictionary writes `"__metadata__":{}` (as Python does for `metadata={}`).
    public static func layout(_ entries: [Entry], metadata: [String: String]? = nil,
                              order: Order = .safetensors) throws(SafeTensorsError) -> Layout {
        var seen: Set<String> = []
        for e in entries {
            guard e.name != SafeTensorsFormat.metadataKey else {
                throw SafeTensorsError(.invalidEntry(key: e.name, reason: "a tensor cannot be named __metadata__"), key: e.name)
            }
            guard seen.insert(e.name).inserted else {
                throw SafeTensorsError(.duplicateKey(e.name), key: e.name)
            }
            guard e.dtype.safetensorsName != nil else {
                throw SafeTensorsError(.unsupportedDType(key: e.name, dtype: e.dtype.rawValue), key: e.name)
            }
            if let d = e.shape.first(where: { $0 < 0 }) {
                throw SafeTensorsError(.invalidEntry(key: e.name, reason: "negative dimension \(d)"), key: e.name)
            }
            guard let count = Shape.elementCount(e.shape, times: e.dtype.size) else {
                throw SafeTensorsError(.shapeOverflow(key: e.name), key: e.name)
            }
            guard count == e.byteCount else {
                throw SafeTensorsError(.sizeMismatch(key: e.name, expected: count, actual: e.byteCount), key: e.name)
            }
        }

        let ordered: [Entry]
        switch order {
        case .asGiven:
            ordered = entries
        case .safetensors:
            ordered = entries.sorted { a, b in
                if a.dtype.safetensorsRank != b.dtype.safetensorsRank {
                    return a.dtype.safetensorsRank > b.dtype.safetensorsRank
                }
                return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
            }
        }

        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func comma() {
            if !first { json.append(UInt8(ascii: ",")) }
            first = false
        }
        if let metadata {
            comma()
            appendJSONString(SafeTensorsFormat.metadataKey, to: &json)
            json.append(contentsOf: Array(":{".utf8))
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (k, key) in keys.enumerated() {
                if k > 0 { json.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                appendJSONString(metadata[key] ?? "", to: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for e in ordered {
            comma()
            let (end, o) = offset.addingReportingOverflow(e.byteCount)
            guard !o else { throw SafeTensorsError(.shapeOverflow(key: e.name), key: e.name) }
            appendJSONString(e.name, to: &json)
            json.append(contentsOf: Array(":{\"dtype\":".utf8))
            appendJSONString(e.dtype.safetensorsName ?? "", to: &json)
            json.append(contentsOf: Array(",\"shape\":[".utf8))
            json.append(contentsOf: Array(e.shape.map(String.init).joined(separator: ",").utf8))
            json.append(contentsOf: Array("],\"data_offsets\":[\(offset),\(end)]}".utf8))
            offset = end
        }
        json.append(UInt8(ascii: "}"))
        let align = SafeTensorsFormat.headerAlignment
        let padding = (align - json.count % align) % align
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))

        var prefix: [UInt8] = []
        prefix.reserveCapacity(8 + json.count)
        let n = UInt64(json.count)
        for s in stride(from: 0, to: 64, by: 8) { prefix.append(UInt8(truncatingIfNeeded: n >> UInt64(s))) }
        prefix.append(contentsOf: json)
        return Layout(prefix: prefix, entries: ordered, dataSize: offset)
    }

    /// A JSON string as serde_json writes it (the Rust library's serializer): `"` and `\` escaped,
    /// `\b \f \n \r \t` for those controls, `\u00xx` (lower-case hex) for the other controls,
    /// everything else (non-ASCII, DEL, `/`) written as raw UTF-8.
    static func appendJSONString(_ s: String, to out: inout [UInt8]) {
        let hexDigits = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x00..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hexDigits[Int(b >> 4)])
                out.append(hexDigits[Int(b & 0xF)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
