import Foundation
import TorchportCore

/// A safetensors file, validated in full before any tensor is handed out: the header length, the
/// header JSON (strictly parsed), every entry, and the layout of the data buffer (entries sorted
/// by offset tile it exactly from 0 to its end). Tensors are zero-copy views of the memory-mapped
/// file, which stays mapped while any tensor refers to it. See docs/safetensors.md.
public struct SafeTensorsFile: Sendable {
    /// The file as given by the caller (or the name of in-memory bytes).
    public let file: String?
    /// All bytes of the file (a read-only memory map, or an owned buffer for in-memory input).
    public let bytes: FileBytes
    /// N, the length of the JSON header (padding included), as declared in the first 8 bytes.
    public let headerSize: Int
    /// The string-to-string `__metadata__` (empty when the file has none).
    public let metadata: [String: String]
    /// True when the header has a `__metadata__` object (possibly empty).
    public let hasMetadata: Bool
    /// The tensors in file order (by data offset), each a view of the file's bytes.
    public let tensors: [NamedTensor]
    private let index: [String: Int]

    /// Offset of the data buffer in the file (`8 + headerSize`).
    public var dataOffset: Int { 8 + headerSize }
    /// The data buffer: every byte after the header.
    public var dataBuffer: ByteSlice {
        // In range: validated at init (8 + headerSize <= bytes.count).
        ByteSlice(owner: bytes).slice(dataOffset, bytes.count - dataOffset) ?? ByteSlice(owner: FileBytes.owned([]))
    }

    /// Memory-maps the file at `url` read-only and validates it; see ``init(contentsOf:maxHeaderBytes:)-(String,_)``.
    public init(contentsOf url: URL, maxHeaderBytes: Int = SafeTensorsFormat.defaultMaxHeaderBytes) throws(SafeTensorsError) {
        try self.init(contentsOf: url.path, maxHeaderBytes: maxHeaderBytes)
    }

    /// Memory-maps `path` read-only and validates it. `maxHeaderBytes` caps the header length
    /// (the reference implementation's 100 MB by default).
    public init(contentsOf path: String, maxHeaderBytes: Int = SafeTensorsFormat.defaultMaxHeaderBytes) throws(SafeTensorsError) {
        let mapped: FileBytes
        do {
            mapped = try FileBytes.map(path: path)
        } catch {
            throw SafeTensorsError(.io(error.reason), file: path)
        }
        try self.init(bytes: mapped, name: path, maxHeaderBytes: maxHeaderBytes)
    }

    /// Validates in-memory bytes (tests, fuzzing, data fetched from elsewhere).
    public init(bytes: [UInt8], name: String? = nil, maxHeaderBytes: Int = SafeTensorsFormat.defaultMaxHeaderBytes) throws(SafeTensorsError) {
        try self.init(bytes: FileBytes.owned(bytes), name: name, maxHeaderBytes: maxHeaderBytes)
    }

    /// Validates `bytes`; the tensors are views of them.
    public init(bytes: FileBytes, name: String?, maxHeaderBytes: Int = SafeTensorsFormat.defaultMaxHeaderBytes) throws(SafeTensorsError) {
        do {
            let parsed = try Self.parse(bytes, maxHeaderBytes: maxHeaderBytes)
            file = name
            self.bytes = bytes
            headerSize = parsed.headerSize
            metadata = parsed.metadata ?? [:]
            hasMetadata = parsed.metadata != nil
            tensors = parsed.tensors
            var index: [String: Int] = [:]
            for (i, t) in parsed.tensors.enumerated() { index[t.name] = i }
            self.index = index
        } catch {
            throw error.with(file: name)
        }
    }

    /// The tensor called `name`, or nil.
    public func tensor(named name: String) -> TensorRecord? {
        index[name].map { tensors[$0].tensor }
    }

    /// Tensor names in file order.
    public var names: [String] { tensors.map(\.name) }

    /// Total bytes of all tensors (equals the data buffer's size).
    public var totalBytes: Int { tensors.reduce(0) { $0 + $1.tensor.nbytes } }
}

// MARK: - Validation

extension SafeTensorsFile {
    private struct Parsed {
        var headerSize: Int
        var metadata: [String: String]?
        var tensors: [NamedTensor]
    }

    private struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let begin: Int
        let end: Int
        let headerIndex: Int
        let offset: Int
    }

    private static func parse(_ file: FileBytes, maxHeaderBytes: Int) throws(SafeTensorsError) -> Parsed {
        let all = file.bytes
        guard all.count >= 8 else { throw SafeTensorsError(.truncated(size: all.count), offset: 0) }
        let declared = UInt64(littleEndian: all.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        if declared > UInt64(max(maxHeaderBytes, 0)) {
            throw SafeTensorsError(.headerTooLarge(declared: declared, limit: maxHeaderBytes), offset: 0)
        }
        let available = all.count - 8
        guard declared <= UInt64(available) else {
            throw SafeTensorsError(.headerLength(declared: declared, available: available), offset: 0)
        }
        let n = Int(declared)
        let header = UnsafeRawBufferPointer(rebasing: all[8..<(8 + n)])
        if let bad = firstInvalidUTF8(header) {
            throw SafeTensorsError(.invalidUTF8, offset: 8 + bad)
        }
        var parser = HeaderJSONParser(bytes: header, base: 8)
        let root = try parser.parseDocument()
        guard case .object(let members) = root else {
            throw SafeTensorsError(.notAnObject(found: root.kindName), offset: 8)
        }
        // The format says the header starts with '{'; JSON would allow leading whitespace.
        guard header.first == UInt8(ascii: "{") else {
            throw SafeTensorsError(.invalidJSON("the header must begin with '{' (found leading whitespace)"), offset: 8)
        }

        var metadata: [String: String]?
        var entries: [Entry] = []
        entries.reserveCapacity(members.count)
        for member in members {
            if member.key == SafeTensorsFormat.metadataKey {
                metadata = try parseMetadata(member)
            } else {
                entries.append(try parseEntry(member, headerIndex: entries.count))
            }
        }

        let bufferSize = available - n
        let dataStart = 8 + n
        let data = ByteSlice(owner: file)
        entries.sort { ($0.begin, $0.end, $0.headerIndex) < ($1.begin, $1.end, $1.headerIndex) }
        var expected = 0
        var tensors: [NamedTensor] = []
        tensors.reserveCapacity(entries.count)
        for e in entries {
            if e.begin > expected {
                throw SafeTensorsError(.offsetsHole(key: e.name, expected: expected, found: e.begin),
                                       key: e.name, offset: e.offset)
            }
            if e.begin < expected {
                throw SafeTensorsError(.offsetsOverlap(key: e.name, expected: expected, found: e.begin),
                                       key: e.name, offset: e.offset)
            }
            if e.end > bufferSize {
                throw SafeTensorsError(.offsetsOutOfBounds(key: e.name, end: e.end, bufferSize: bufferSize),
                                       key: e.name, offset: e.offset)
            }
            guard let slice = data.slice(dataStart + e.begin, e.end - e.begin),
                  let record = TensorRecord(dtype: e.dtype, shape: e.shape, bytes: slice, name: e.name)
            else {
                // Unreachable after the checks above; refused rather than trapped on.
                throw SafeTensorsError(.sizeMismatch(key: e.name, expected: -1, actual: e.end - e.begin),
                                       key: e.name, offset: e.offset)
            }
            tensors.append(NamedTensor(name: e.name, tensor: record))
            expected = e.end
        }
        if expected != bufferSize {
            throw SafeTensorsError(.bufferSizeMismatch(covered: expected, bufferSize: bufferSize),
                                   offset: dataStart + expected)
        }
        return Parsed(headerSize: n, metadata: metadata, tensors: tensors)
    }

    private static func parseMetadata(_ member: JSONMember) throws(SafeTensorsError) -> [String: String] {
        let key = SafeTensorsFormat.metadataKey
        guard case .object(let pairs) = member.value else {
            throw SafeTensorsError(.invalidMetadata("\(member.value.kindName), not an object"), key: key, offset: member.offset)
        }
        var metadata: [String: String] = [:]
        for pair in pairs {
            guard case .string(let value) = pair.value else {
                throw SafeTensorsError(.invalidMetadata("value of \(pair.key.debugDescription) is \(pair.value.kindName), not a string"),
                                       key: key, offset: pair.offset)
            }
            metadata[pair.key] = value
        }
        return metadata
    }

    private static func parseEntry(_ member: JSONMember, headerIndex: Int) throws(SafeTensorsError) -> Entry {
        let name = member.key
        func invalid(_ reason: String) -> SafeTensorsError {
            SafeTensorsError(.invalidEntry(key: name, reason: reason), key: name, offset: member.offset)
        }
        guard case .object(let fields) = member.value else {
            throw invalid("\(member.value.kindName), not an object")
        }
        var dtypeValue: JSONValue?, shapeValue: JSONValue?, offsetsValue: JSONValue?
        for field in fields {
            switch field.key {
            case "dtype": dtypeValue = field.value
            case "shape": shapeValue = field.value
            case "data_offsets": offsetsValue = field.value
            default: throw invalid("unexpected field \(field.key.debugDescription)")
            }
        }
        guard let dtypeValue else { throw invalid("missing field \"dtype\"") }
        guard let shapeValue else { throw invalid("missing field \"shape\"") }
        guard let offsetsValue else { throw invalid("missing field \"data_offsets\"") }

        guard case .string(let dtypeName) = dtypeValue else { throw invalid("dtype is \(dtypeValue.kindName), not a string") }
        guard let dtype = DType(safetensorsName: dtypeName) else {
            if SafeTensorsFormat.unsupportedDTypeNames.contains(dtypeName) {
                throw SafeTensorsError(.unsupportedDType(key: name, dtype: dtypeName), key: name, offset: member.offset)
            }
            throw SafeTensorsError(.unknownDType(key: name, dtype: dtypeName), key: name, offset: member.offset)
        }

        guard case .array(let dims) = shapeValue else { throw invalid("shape is \(shapeValue.kindName), not an array") }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for (k, dim) in dims.enumerated() {
            guard case .number(let number) = dim else { throw invalid("shape[\(k)] is \(dim.kindName), not an integer") }
            switch number.nonNegativeInteger {
            case .success(let v): shape.append(v)
            case .failure(.negative): throw invalid("shape[\(k)] is negative")
            case .failure(.notInteger): throw invalid("shape[\(k)] is not an integer")
            case .failure(.tooLarge):
                throw SafeTensorsError(.shapeOverflow(key: name), key: name, offset: member.offset)
            }
        }

        guard case .array(let bounds) = offsetsValue, bounds.count == 2 else {
            throw invalid("data_offsets must be an array of two integers [begin, end]")
        }
        var pair: [Int] = []
        for (k, bound) in bounds.enumerated() {
            let which = k == 0 ? "begin" : "end"
            guard case .number(let number) = bound else { throw invalid("data_offsets \(which) is \(bound.kindName), not an integer") }
            switch number.nonNegativeInteger {
            case .success(let v): pair.append(v)
            case .failure(.negative): throw invalid("data_offsets \(which) is negative")
            case .failure(.notInteger): throw invalid("data_offsets \(which) is not an integer")
            case .failure(.tooLarge): throw invalid("data_offsets \(which) does not fit in a 64-bit integer")
            }
        }
        let (begin, end) = (pair[0], pair[1])
        guard begin <= end else { throw invalid("data_offsets end \(end) precedes begin \(begin)") }

        guard let count = Shape.elementCount(shape, times: dtype.size) else {
            throw SafeTensorsError(.shapeOverflow(key: name), key: name, offset: member.offset)
        }
        guard count == end - begin else {
            throw SafeTensorsError(.sizeMismatch(key: name, expected: count, actual: end - begin), key: name, offset: member.offset)
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end, headerIndex: headerIndex, offset: member.offset)
    }
}
