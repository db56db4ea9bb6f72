import Foundation
import SafeTensors
import Testing
import TorchportCore

/// A hand-made file the reader must refuse with a specific error.
struct HostileHeader: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let code: String
    /// The key the error must name, when there is one.
    let key: String?
    /// The exact kind, when the test pins it down.
    let kind: SafeTensorsError.Kind?

    init(_ name: String, _ bytes: [UInt8], _ code: String, key: String? = nil, kind: SafeTensorsError.Kind? = nil) {
        self.name = name
        self.bytes = bytes
        self.code = code
        self.key = key
        self.kind = kind
    }

    var testDescription: String { name }
}

/// An entry's JSON: `"name":{"dtype":..,"shape":..,"data_offsets":..}`.
private func entry(_ name: String, _ dtype: String = "F32", _ shape: String = "[1]", _ offsets: String = "[0,4]") -> String {
    #""\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":\#(offsets)}"#
}

private func file(_ entries: String..., data: Int = 4) -> [UInt8] {
    rawFile(header: "{" + entries.joined(separator: ",") + "}", data: [UInt8](repeating: 0, count: data))
}

private let hostileHeaders: [HostileHeader] = [
    // The length prefix.
    HostileHeader("File shorter than the length prefix", [1, 0, 0], "truncated", kind: .truncated(size: 3)),
    HostileHeader("Header length larger than the file",
                  rawFile(headerBytes: Array("{}".utf8), declaredLength: 3), "headerLength",
                  kind: .headerLength(declared: 3, available: 2)),
    HostileHeader("Header length near 2^64", rawFile(headerBytes: Array("{}".utf8), declaredLength: .max),
                  "headerTooLarge"),
    // JSON.
    HostileHeader("Header that is not JSON", rawFile(header: "not json"), "invalidJSON"),
    HostileHeader("Header that is a JSON array", rawFile(header: "[1, 2]"), "notAnObject",
                  kind: .notAnObject(found: "an array")),
    HostileHeader("Header that is a JSON string", rawFile(header: #""{}""#), "notAnObject"),
    HostileHeader("Empty header", rawFile(header: ""), "invalidJSON"),
    HostileHeader("Leading whitespace before the object", rawFile(header: " {}"), "invalidJSON"),
    HostileHeader("Bytes after the object other than spaces", rawFile(headerBytes: Array("{}".utf8) + [0, 0]), "invalidJSON"),
    HostileHeader("Two top-level values", rawFile(header: "{} {}"), "invalidJSON"),
    HostileHeader("Unterminated object", rawFile(header: #"{"a":{"dtype":"F32""#), "invalidJSON"),
    HostileHeader("Trailing comma", rawFile(header: #"{"a":1,}"#), "invalidJSON"),
    HostileHeader("Single-quoted string", rawFile(header: "{'a':1}"), "invalidJSON"),
    HostileHeader("Raw control character in a string", rawFile(header: "{\"a\u{1}\":1}"), "invalidJSON"),
    HostileHeader("Invalid escape", rawFile(header: #"{"\x41":1}"#), "invalidJSON"),
    HostileHeader("Lone high surrogate escape", rawFile(header: #"{"\ud800":1}"#), "invalidJSON"),
    HostileHeader("Lone low surrogate escape", rawFile(header: #"{"\udc00":1}"#), "invalidJSON"),
    HostileHeader("Leading zero in a number", file(entry("a", "F32", "[01]")), "invalidJSON"),
    HostileHeader("Deeply nested arrays", rawFile(header: "{\"a\":" + String(repeating: "[", count: 100_000)),
                  "jsonTooDeep", kind: .jsonTooDeep(limit: SafeTensorsFormat.maxJSONDepth)),
    HostileHeader("Deeply nested objects", rawFile(header: String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000)),
                  "jsonTooDeep"),
    HostileHeader("Invalid UTF-8 in a key", rawFile(headerBytes: Array("{\"".utf8) + [0xC3, 0x28] + Array("\":1}".utf8)),
                  "invalidUTF8"),
    HostileHeader("Overlong UTF-8 encoding", rawFile(headerBytes: Array("{\"".utf8) + [0xC0, 0xAF] + Array("\":1}".utf8)),
                  "invalidUTF8"),
    HostileHeader("UTF-8 encoded surrogate", rawFile(headerBytes: Array("{\"".utf8) + [0xED, 0xA0, 0x80] + Array("\":1}".utf8)),
                  "invalidUTF8"),
    // Duplicates.
    HostileHeader("Duplicate tensor name", file(entry("w"), entry("w", "F32", "[1]", "[4,8]"), data: 8),
                  "duplicateKey", key: "w", kind: .duplicateKey("w")),
    HostileHeader("Duplicate field inside an entry", rawFile(header: #"{"w":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                  "duplicateKey", key: "dtype"),
    HostileHeader("Duplicate __metadata__", rawFile(header: #"{"__metadata__":{},"__metadata__":{}}"#), "duplicateKey"),
    HostileHeader("Duplicate metadata key", rawFile(header: #"{"__metadata__":{"a":"1","a":"2"}}"#), "duplicateKey", key: "a"),
    HostileHeader("Duplicate via an escape", file(entry("w"), entry(#"\u0077"#, "F32", "[1]", "[4,8]"), data: 8),
                  "duplicateKey", key: "w"),
    HostileHeader("Canonically equivalent names", file(entry("é"), entry("e\u{301}", "F32", "[1]", "[4,8]"), data: 8),
                  "duplicateKey"),
    // Entries.
    HostileHeader("Unknown dtype", file(entry("w", "F31")), "unknownDType", key: "w", kind: .unknownDType(key: "w", dtype: "F31")),
    HostileHeader("Lower-case dtype", file(entry("w", "f32")), "unknownDType", key: "w"),
    HostileHeader("Unsupported unsigned dtype", file(entry("w", "U32")), "unsupportedDType", key: "w",
                  kind: .unsupportedDType(key: "w", dtype: "U32")),
    HostileHeader("Unsupported float8 dtype", file(entry("w", "F8_E5M2", "[4]")), "unsupportedDType", key: "w"),
    HostileHeader("Shape x dtype larger than the byte count", file(entry("w", "F32", "[2]")), "sizeMismatch", key: "w",
                  kind: .sizeMismatch(key: "w", expected: 8, actual: 4)),
    HostileHeader("Shape x dtype smaller than the byte count", file(entry("w", "F16", "[1]")), "sizeMismatch", key: "w"),
    HostileHeader("Shape product overflow", file(entry("w", "F32", "[4294967296,4294967296]")), "shapeOverflow", key: "w",
                  kind: .shapeOverflow(key: "w")),
    HostileHeader("Dimension beyond 64 bits", file(entry("w", "F32", "[99999999999999999999999]")), "shapeOverflow", key: "w"),
    HostileHeader("Negative dimension", file(entry("w", "F32", "[-1]")), "invalidEntry", key: "w"),
    HostileHeader("Float dimension", file(entry("w", "F32", "[1.0]")), "invalidEntry", key: "w",
                  kind: .invalidEntry(key: "w", reason: "shape[0] is not an integer")),
    HostileHeader("Exponent dimension", file(entry("w", "F32", "[1e0]")), "invalidEntry", key: "w"),
    HostileHeader("String dimension", file(entry("w", "F32", #"["1"]"#)), "invalidEntry", key: "w"),
    HostileHeader("Shape that is not an array", file(entry("w", "F32", "1")), "invalidEntry", key: "w"),
    HostileHeader("Negative offset", file(entry("w", "F32", "[1]", "[-4,0]")), "invalidEntry", key: "w",
                  kind: .invalidEntry(key: "w", reason: "data_offsets begin is negative")),
    HostileHeader("Float offset", file(entry("w", "F32", "[1]", "[0,4.0]")), "invalidEntry", key: "w"),
    HostileHeader("Offset beyond 64 bits", file(entry("w", "F32", "[1]", "[0,18446744073709551620]")), "invalidEntry", key: "w"),
    HostileHeader("Three offsets", file(entry("w", "F32", "[1]", "[0,4,8]")), "invalidEntry", key: "w"),
    HostileHeader("End before begin", file(entry("w", "F32", "[0]", "[4,0]")), "invalidEntry", key: "w"),
    HostileHeader("Missing data_offsets", rawFile(header: #"{"w":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0]),
                  "invalidEntry", key: "w"),
    HostileHeader("Extra field in an entry", rawFile(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}"#, data: [0, 0, 0, 0]),
                  "invalidEntry", key: "w", kind: .invalidEntry(key: "w", reason: #"unexpected field "x""#)),
    HostileHeader("Entry that is not an object", rawFile(header: #"{"w":[1]}"#), "invalidEntry", key: "w"),
    HostileHeader("Metadata that is not an object", rawFile(header: #"{"__metadata__":"x"}"#), "invalidMetadata"),
    HostileHeader("Metadata value that is not a string", rawFile(header: #"{"__metadata__":{"a":1}}"#), "invalidMetadata"),
    HostileHeader("Metadata value that is null", rawFile(header: #"{"__metadata__":{"a":null}}"#), "invalidMetadata"),
    // The data buffer.
    HostileHeader("Offsets with a hole", file(entry("a"), entry("b", "F32", "[1]", "[8,12]"), data: 12), "offsetsHole", key: "b",
                  kind: .offsetsHole(key: "b", expected: 4, found: 8)),
    HostileHeader("Offsets not starting at 0", file(entry("a", "F32", "[1]", "[4,8]"), data: 8), "offsetsHole", key: "a",
                  kind: .offsetsHole(key: "a", expected: 0, found: 4)),
    HostileHeader("Overlapping offsets", file(entry("a", "F32", "[2]", "[0,8]"), entry("b", "F32", "[1]", "[4,8]"), data: 8),
                  "offsetsOverlap", key: "b", kind: .offsetsOverlap(key: "b", expected: 8, found: 4)),
    HostileHeader("Two tensors on the same bytes", file(entry("a"), entry("b"), data: 4), "offsetsOverlap"),
    HostileHeader("Offsets past the end of the file", file(entry("a"), entry("b", "F32", "[1]", "[4,8]"), data: 6),
                  "offsetsOutOfBounds", key: "b", kind: .offsetsOutOfBounds(key: "b", end: 8, bufferSize: 6)),
    HostileHeader("Offsets far past the end", file(entry("a", "F32", "[1048576]", "[0,4194304]"), data: 4), "offsetsOutOfBounds"),
    HostileHeader("Unclaimed bytes after the last tensor", file(entry("a"), data: 12), "bufferSizeMismatch",
                  kind: .bufferSizeMismatch(covered: 4, bufferSize: 12)),
    HostileHeader("Data but no tensors", rawFile(header: "{}", data: [1]), "bufferSizeMismatch"),
]

@Suite("Hostile headers")
struct HostileHeaderTests {
    @Test("Each hostile header is refused with its specific error", arguments: hostileHeaders)
    func refused(_ c: HostileHeader) throws {
        let error = try #require(refusal(c.bytes), "\(c.name) loaded")
        #expect(error.code == c.code, "\(error)")
        if let key = c.key { #expect(error.key == key, "\(error)") }
        if let kind = c.kind { #expect(error.kind == kind, "\(error)") }
        #expect(error.file == "test.safetensors")
        #expect(error.offset != nil || error.key != nil, "the error locates the problem: \(error)")
        #expect(!error.description.isEmpty)
    }

    @Test("A header just under the cap loads and one just over it is refused")
    func headerCap() throws {
        let bytes = try SafeTensorsWriter.serialize([(name: "w", dtype: .float32, shape: [1], bytes: [0, 0, 0, 0])])
        let n = try SafeTensorsFile(bytes: bytes).headerSize
        #expect(refusal(bytes, maxHeaderBytes: n) == nil)
        #expect(refusal(bytes, maxHeaderBytes: n + 1) == nil)
        let error = try #require(refusal(bytes, maxHeaderBytes: n - 1))
        #expect(error.kind == .headerTooLarge(declared: UInt64(n), limit: n - 1))
        #expect(error.code == "headerTooLarge")
        #expect(error.offset == 0)
    }

    @Test("Errors point at the offending byte of the file")
    func offsets() throws {
        let utf8 = try #require(refusal(rawFile(headerBytes: Array("{\"ab".utf8) + [0xFF] + Array("\":1}".utf8))))
        #expect(utf8.offset == 8 + 4)
        let entryError = try #require(refusal(file(entry("a"), entry("b", "F31"), data: 4)))
        let header = "{" + entry("a") + ","
        #expect(entryError.offset == 8 + header.utf8.count)
        #expect(entryError.description.contains("F31"))
    }

    @Test("Escapes, surrogate pairs and whitespace in a valid header are decoded")
    func escapesDecoded() throws {
        let header = "{ \"\\ud83d\\ude80\\u00e9\\n\\/\" : { \"shape\" : [ 2 ] , \"data_offsets\" : [ 0 , 2 ] , \"dtype\" : \"U8\" } ,\n"
            + " \"__metadata__\" : { \"k\\u0000\" : \"\\\"v\\\\\" } }\t\r\n"
        let bytes = rawFile(header: header, data: [7, 9])
        let f = try SafeTensorsFile(bytes: bytes)
        #expect(f.names == ["🚀é\n/"])
        #expect(f.tensor(named: "🚀é\n/")?.contiguousBytes() == [7, 9])
        #expect(f.metadata == ["k\u{0}": "\"v\\"])
    }

    @Test("Zero-size tensors may share an offset with their neighbours")
    func zeroSizeTensors() throws {
        let bytes = file(entry("e1", "F32", "[0,3]", "[0,0]"), entry("a"), entry("e2", "I64", "[0]", "[4,4]"),
                         entry("e3", "F64", "[2,0]", "[4,4]"), data: 4)
        let f = try SafeTensorsFile(bytes: bytes)
        #expect(f.names == ["e1", "a", "e2", "e3"])
        #expect(f.tensor(named: "e1")?.shape == [0, 3])
        #expect(f.tensor(named: "e1")?.nbytes == 0)
    }

    @Test("Entries are listed in data order, whatever the header order")
    func fileOrder() throws {
        let bytes = file(entry("second", "F32", "[1]", "[4,8]"), entry("first"), data: 8)
        #expect(try SafeTensorsFile(bytes: bytes).names == ["first", "second"])
    }

    @Test("Mutated and truncated files never trap: they load consistently or throw a SafeTensorsError")
    func mutations() throws {
        let base = try SafeTensorsWriter.serialize(
            [(name: "w", dtype: .float32, shape: [2], bytes: [1, 2, 3, 4, 5, 6, 7, 8]),
             (name: "b", dtype: .int8, shape: [1, 1], bytes: [9])],
            metadata: ["k": "v"])
        var outcomes = (loaded: 0, refused: 0)
        func check(_ bytes: [UInt8]) {
            if let file = try? SafeTensorsFile(bytes: bytes) {
                outcomes.loaded += 1
                #expect(file.totalBytes == bytes.count - file.dataOffset)
            } else {
                outcomes.refused += 1
            }
        }
        for i in base.indices {
            for value: UInt8 in [0x00, 0x01, 0x22, 0x2C, 0x30, 0x39, 0x5B, 0x7B, 0x7D, 0x80, 0xFF, base[i] ^ 0x20] {
                var m = base
                m[i] = value
                check(m)
            }
            check(Array(base[..<i]))
        }
        #expect(outcomes.refused > 0 && outcomes.loaded > 0)
    }
}
