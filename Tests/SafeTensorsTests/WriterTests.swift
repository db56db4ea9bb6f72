import Foundation
import SafeTensors
import Testing
import TorchportCore

@Suite("The writer")
struct WriterTests {
    @Test("The default order is Python's: dtype size descending, then name by UTF-8 bytes")
    func safetensorsOrder() throws {
        let given: [(String, DType)] = [
            ("b", .bool), ("a", .float32), ("z", .int64), ("é", .float32), ("B", .float32),
            ("m", .bfloat16), ("k", .float16), ("c", .complex64), ("d", .float64), ("i", .int32),
            ("h", .int16), ("g", .int8), ("f", .uint8),
        ]
        let entries = given.map { SafeTensorsWriter.Entry(name: $0.0, dtype: $0.1, shape: [1], bytes: [UInt8](repeating: 0, count: $0.1.size)) }
        let file = try SafeTensorsFile(bytes: SafeTensorsWriter.serialize(entries))
        #expect(file.names == ["z", "d", "c", "B", "a", "é", "i", "m", "k", "h", "g", "f", "b"])
        // Every tensor starts at a multiple of its element size.
        for t in file.tensors {
            let begin = try #require(t.tensor.contiguousView).range.lowerBound - file.dataOffset
            #expect(begin % t.tensor.dtype.size == 0)
        }
        let asGiven = try SafeTensorsFile(bytes: SafeTensorsWriter.serialize(entries, order: .asGiven))
        #expect(asGiven.names == given.map(\.0))
    }

    @Test("Header bytes match Python's for names and metadata that need escaping")
    func escapingMatchesPython() throws {
        // safetensors.torch.save({"xé\"\\\x1f\x7f/": torch.zeros(1)}, metadata={"k": "\b\f\t\r\n\0"})
        let python: [UInt8] = [0x70, 0, 0, 0, 0, 0, 0, 0]
            + Array(#"{"__metadata__":{"k":"\b\f\t\r\n\u0000"},"x"#.utf8) + [0xC3, 0xA9]
            + Array(#"\"\\\u001f"#.utf8) + [0x7F]
            + Array(#"/":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}    "#.utf8) + [0, 0, 0, 0]
        let swift = try SafeTensorsWriter.serialize(
            [(name: "x\u{e9}\"\\\u{1f}\u{7f}/", dtype: .float32, shape: [1], bytes: [0, 0, 0, 0])],
            metadata: ["k": "\u{8}\u{c}\t\r\n\u{0}"])
        #expect(swift == python)
    }

    @Test("Empty metadata is written as Python writes metadata={}")
    func emptyMetadataMatchesPython() throws {
        // safetensors.torch.save({"x": torch.zeros(1)}, metadata={})
        let python = [0x48, 0, 0, 0, 0, 0, 0, 0]
            + Array(#"{"__metadata__":{},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.utf8) + [0, 0, 0, 0]
        let swift = try SafeTensorsWriter.serialize([(name: "x", dtype: .float32, shape: [1], bytes: [0, 0, 0, 0])], metadata: [:])
        #expect(swift == python)
    }

    @Test("Several metadata keys are written sorted by UTF-8 bytes")
    func metadataSorted() throws {
        let bytes = try SafeTensorsWriter.serialize([SafeTensorsWriter.Entry](), metadata: ["b": "2", "a": "1", "é": "3", "Z": "0"])
        let text = String(decoding: bytes.dropFirst(8), as: UTF8.self)
        #expect(text.hasPrefix(#"{"__metadata__":{"Z":"0","a":"1","b":"2","é":"3"}}"#))
    }

    @Test("The writer refuses what no reader would accept", arguments: [
        ("complex128", "unsupportedDType"), ("duplicate", "duplicateKey"), ("canonical duplicate", "duplicateKey"),
        ("metadata name", "invalidEntry"), ("byte count", "sizeMismatch"), ("negative dimension", "invalidEntry"),
        ("overflow", "shapeOverflow"),
    ])
    func refusals(what: String, code: String) throws {
        let e: [SafeTensorsWriter.Entry]
        switch what {
        case "complex128": e = [.init(name: "c", dtype: .complex128, shape: [1], bytes: [UInt8](repeating: 0, count: 16))]
        case "duplicate": e = [.init(name: "a", dtype: .uint8, shape: [1], bytes: [0]), .init(name: "a", dtype: .uint8, shape: [1], bytes: [0])]
        case "canonical duplicate": e = [.init(name: "é", dtype: .uint8, shape: [1], bytes: [0]), .init(name: "e\u{301}", dtype: .uint8, shape: [1], bytes: [0])]
        case "metadata name": e = [.init(name: "__metadata__", dtype: .uint8, shape: [1], bytes: [0])]
        case "byte count": e = [.init(name: "a", dtype: .float32, shape: [2], bytes: [0, 0, 0, 0])]
        case "negative dimension": e = [.init(name: "a", dtype: .uint8, shape: [-1], bytes: [])]
        default: e = [.init(name: "a", dtype: .float64, shape: [1 << 31, 1 << 31], bytes: [])]
        }
        do {
            _ = try SafeTensorsWriter.serialize(e)
            Issue.record("\(what): expected \(code)")
        } catch {
            #expect(error.code == code)
            #expect(error.key != nil)
        }
    }

    @Test("writeAtomically replaces the file and leaves no temporary file")
    func atomicWrite() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("model.safetensors").path
        try Data("old contents".utf8).write(to: URL(fileURLWithPath: path))
        let entries = [SafeTensorsWriter.Entry(name: "w", dtype: .float16, shape: [2], bytes: [0, 0x3C, 0, 0x40])]
        try SafeTensorsWriter.writeAtomically(entries, metadata: ["format": "torchport"], to: path)
        let file = try SafeTensorsFile(contentsOf: path)
        #expect(file.tensor(named: "w")?.floats() == [1, 2])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.safetensors"])
        let direct = try SafeTensorsWriter.serialize(entries, metadata: ["format": "torchport"])
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) == direct)
    }

    @Test("A failed write reports an I/O error with the path and leaves nothing behind")
    func failedWrite() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("missing/model.safetensors").path
        let entries = [SafeTensorsWriter.Entry(name: "w", dtype: .uint8, shape: [1], bytes: [1])]
        for atomic in [false, true] {
            do {
                if atomic { try SafeTensorsWriter.writeAtomically(entries, to: path) } else { try SafeTensorsWriter.write(entries, to: path) }
                Issue.record("expected an I/O error")
            } catch {
                guard case .io = error.kind else { Issue.record("\(error.kind)"); continue }
                #expect(error.file?.hasPrefix(path) == true)
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
        // A refused entry fails before any file is created.
        let bad = [SafeTensorsWriter.Entry(name: "w", dtype: .uint8, shape: [2], bytes: [1])]
        let target = folder.appendingPathComponent("bad.safetensors").path
        #expect(throws: SafeTensorsError.self) { try SafeTensorsWriter.writeAtomically(bad, to: target) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test("Reading a missing file, a folder or an empty file fails with an error naming the file")
    func unreadableFiles() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let empty = folder.appendingPathComponent("empty.safetensors").path
        try Data().write(to: URL(fileURLWithPath: empty))
        for (path, code) in [("/nonexistent/x.safetensors", "io"), (folder.path, "io"), (empty, "truncated")] {
            do {
                _ = try SafeTensorsFile(contentsOf: path)
                Issue.record("\(path): expected \(code)")
            } catch {
                #expect(error.code == code)
                #expect(error.file == path)
            }
        }
    }
}
