import Foundation
import SafeTensors
import Testing
import TorchCheckpoint
import TorchportCore

@Suite("Round trips through the writer and the reader")
struct RoundTripTests {
    @Test("Round trip of every dtype keeps dtype, shape and bytes", arguments: everyWritableDType)
    func everyDType(dtype: DType) throws {
        let shapes: [[Int]] = [[], [5], [2, 3], [0, 3], [1, 2, 1, 2]]
        let entries = shapes.enumerated().map { i, shape in
            let count = shape.reduce(1, *) * dtype.size
            return SafeTensorsWriter.Entry(name: "t\(i)", dtype: dtype, shape: shape,
                                           bytes: SwiftCase.pattern(index: i, dtype: dtype, count: count))
        }
        let bytes = try SafeTensorsWriter.serialize(entries)
        let file = try SafeTensorsFile(bytes: bytes)
        #expect(file.tensors.count == shapes.count)
        for (i, shape) in shapes.enumerated() {
            let t = try #require(file.tensor(named: "t\(i)"))
            #expect(t.dtype == dtype)
            #expect(t.shape == shape)
            #expect(t.contiguousBytes() == entries[i].bytesForTest)
        }
    }

    @Test("Read 1-dimensional tensor from a safetensors file")
    func oneDimensional() throws {
        let values: [Float] = [1.5, -2, 0.25, 1e-3]
        let bytes = values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("tensor-1d-float32.safetensors").path
        try SafeTensorsWriter.write([(name: "x", dtype: .float32, shape: [4], bytes: bytes)], to: path)
        let file = try SafeTensorsFile(contentsOf: path)
        let x = try #require(file.tensor(named: "x"))
        #expect(x.shape == [4])
        #expect(x.floats() == values)
        #expect(file.file == path)
    }

    @Test("Metadata round trip: unicode, escapes, empty strings, and none versus empty")
    func metadataRoundTrip() throws {
        let metadata = [
            "format": "torchport", "arch": "resnet18", "num_classes": "1000",
            "note": "héllo — 日本語 🚀", "escapes": "tab\tnl\n\"q\" \\ \u{01} \u{7f} /", "": "",
        ]
        let entries = [SafeTensorsWriter.Entry(name: "w", dtype: .uint8, shape: [2], bytes: [1, 2])]
        let file = try SafeTensorsFile(bytes: SafeTensorsWriter.serialize(entries, metadata: metadata))
        #expect(file.metadata == metadata)
        #expect(file.hasMetadata)

        let none = try SafeTensorsFile(bytes: SafeTensorsWriter.serialize(entries, metadata: nil))
        #expect(none.metadata.isEmpty && !none.hasMetadata)
        let empty = try SafeTensorsFile(bytes: SafeTensorsWriter.serialize(entries, metadata: [:]))
        #expect(empty.metadata.isEmpty && empty.hasMetadata)
    }

    @Test("Tensors of a mapped file are zero-copy views inside the mapping")
    func zeroCopy() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("zero-copy.safetensors").path
        let entries = (0..<4).map { i in
            SafeTensorsWriter.Entry(name: "p\(i)", dtype: .float32, shape: [64],
                                    bytes: SwiftCase.pattern(index: i, dtype: .float32, count: 256))
        }
        try SafeTensorsWriter.write(entries, to: path)
        let file = try SafeTensorsFile(contentsOf: path)
        let map = file.bytes.bytes
        let base = try #require(map.baseAddress)
        let onDisk = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(Array(map) == onDisk)
        var expectedOffset = file.dataOffset
        for named in file.tensors {
            let t = named.tensor
            #expect(t.storage.owner === file.bytes)
            let view = try #require(t.contiguousView)
            view.withUnsafeBytes { b in
                #expect(b.baseAddress == base + expectedOffset)
                #expect(b.baseAddress! + b.count <= base + map.count)
            }
            expectedOffset += t.nbytes
        }
        #expect(expectedOffset == map.count)
    }

    @Test("headerSize and dataOffset describe the layout; the header is space-padded to 8 bytes")
    func layout() throws {
        let bytes = try SafeTensorsWriter.serialize([(name: "a", dtype: .int8, shape: [3], bytes: [1, 2, 3])])
        let file = try SafeTensorsFile(bytes: bytes)
        #expect(file.headerSize % 8 == 0)
        #expect(file.dataOffset == 8 + file.headerSize)
        #expect(bytes.count == file.dataOffset + 3)
        let header = bytes[8..<file.dataOffset]
        let json = #"{"a":{"dtype":"I8","shape":[3],"data_offsets":[0,3]}}"#
        #expect(Array(header.prefix(json.utf8.count)) == Array(json.utf8))
        #expect(header.dropFirst(json.utf8.count).allSatisfy { $0 == UInt8(ascii: " ") })
        #expect(file.dataBuffer.count == 3)
    }

    @Test("A file with no tensors round-trips")
    func noTensors() throws {
        let bytes = try SafeTensorsWriter.serialize([SafeTensorsWriter.Entry](), metadata: ["format": "pt"])
        let file = try SafeTensorsFile(bytes: bytes)
        #expect(file.tensors.isEmpty)
        #expect(file.metadata == ["format": "pt"])
        let bare = try SafeTensorsWriter.serialize([SafeTensorsWriter.Entry]())
        #expect(bare == rawFile(header: "{}      "))
    }

    @Test("Non-contiguous tensor records are gathered when written")
    func nonContiguousRecord() throws {
        // `d` in shared-storage.pth is a [5, 10] view with strides [1, 5] of a shared storage.
        let checkpointPath = SafeTensorsFixtures.repoRoot
            .appendingPathComponent("Fixtures/checkpoints/shared-storage.pth").path
        let checkpoint = try Checkpoint(contentsOf: checkpointPath)
        let d = try #require(checkpoint.tensor(named: "d"))
        #expect(!d.isContiguous)
        let expectationURL = SafeTensorsFixtures.repoRoot
            .appendingPathComponent("Fixtures/checkpoints/shared-storage.expected.json")
        let json = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: expectationURL)) as? [String: Any])
        let listed = try #require(json["tensors"] as? [[String: Any]])
        let expectedSHA = try #require(listed.first { $0["name"] as? String == "d" }?["sha256"] as? String)

        let bytes = try SafeTensorsWriter.serialize(checkpoint.tensors)
        let file = try SafeTensorsFile(bytes: bytes)
        let back = try #require(file.tensor(named: "d"))
        #expect(back.shape == [5, 10])
        #expect(back.isContiguous)
        #expect(sha256Hex(back) == expectedSHA)
        #expect(file.tensors.count == checkpoint.tensors.count)
        for t in checkpoint.tensors {
            #expect(try sha256Hex(#require(file.tensor(named: t.name))) == sha256Hex(t.tensor))
        }
    }

    @Test("Caller-owned buffers are written without copying into an entry")
    func unsafeBuffer() throws {
        let values: [Int32] = [7, -8, 9]
        let bytes = try values.withUnsafeBytes { buffer in
            try SafeTensorsWriter.serialize([SafeTensorsWriter.Entry(name: "v", dtype: .int32, shape: [3], unsafeBuffer: buffer)])
        }
        let v = try #require(try SafeTensorsFile(bytes: bytes).tensor(named: "v"))
        #expect(v.floats() == [7, -8, 9])
    }
}

extension SafeTensorsWriter.Entry {
    var bytesForTest: [UInt8] {
        switch source {
        case .bytes(let b): b
        case .record(let r): r.contiguousBytes()
        case .unsafeBuffer(let b): Array(b)
        }
    }
}
