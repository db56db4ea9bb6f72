import Foundation
import SafeTensors
import Testing
import TorchportCore

/// Paths of the committed safetensors fixtures, found from this file's location (no bundle resources).
enum SafeTensorsFixtures {
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // SafeTensorsTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root
    static let directory = repoRoot.appendingPathComponent("Fixtures/safetensors")
    static let pythonWritten = directory.appendingPathComponent("python-written")
    static let swiftWritten = directory.appendingPathComponent("swift-written")
    static let swiftCasesURL = directory.appendingPathComponent("swift-cases.json")
    static let verdictURL = directory.appendingPathComponent("python-verdict.json")

    /// Set to 1 to (re)write `swift-written/` from the current writer instead of comparing with it.
    static var regenerate: Bool { ProcessInfo.processInfo.environment["TORCHPORT_REGENERATE_SAFETENSORS"] == "1" }

    /// Names (without extension) of every `python-written/*.expected.json`, sorted.
    static var pythonCases: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: pythonWritten.path)) ?? []
        return names.filter { $0.hasSuffix(".expected.json") }
            .map { String($0.dropLast(".expected.json".count)) }.sorted()
    }

    static func pythonFile(_ name: String) -> String { pythonWritten.appendingPathComponent(name + ".safetensors").path }

    static func expectation(_ name: String) throws -> PythonExpectation {
        let url = pythonWritten.appendingPathComponent(name + ".expected.json")
        return try JSONDecoder().decode(PythonExpectation.self, from: Data(contentsOf: url))
    }

    static func swiftCases() throws -> [SwiftCase] {
        try JSONDecoder().decode(SwiftCaseList.self, from: Data(contentsOf: swiftCasesURL)).cases
    }
}

/// `python-written/<name>.expected.json`, written by `Fixtures/safetensors/generate.py`.
struct PythonExpectation: Decodable {
    struct Tensor: Decodable {
        let name: String
        let dtype: String
        let shape: [Int]
        let dataOffsets: [Int]
        let nbytes: Int
        let sha256: String
        enum CodingKeys: String, CodingKey {
            case name, dtype, shape, nbytes, sha256, dataOffsets = "data_offsets"
        }
    }
    struct Refusal: Decodable {
        let code: String
        let key: String
        let dtype: String
    }
    let file: String
    let writer: String
    let headerSize: Int
    let fileSize: Int
    let metadata: [String: String]?
    let metadataOrderDeterministic: Bool
    let tensors: [Tensor]
    let error: Refusal?

    enum CodingKeys: String, CodingKey {
        case file, writer, metadata, tensors, error
        case headerSize = "header_size", fileSize = "file_size"
        case metadataOrderDeterministic = "metadata_order_deterministic"
    }
}

/// `swift-cases.json`: tensors the Swift writer builds from a byte pattern (see ``pattern``).
struct SwiftCaseList: Decodable { let cases: [SwiftCase] }

struct SwiftCase: Decodable {
    struct Tensor: Decodable {
        let name: String
        let dtype: String
        let shape: [Int]
    }
    let file: String
    let order: String
    let metadata: [String: String]?
    let tensors: [Tensor]

    /// Byte j of the i-th tensor is (31*j + 7*(i+1)) mod 256; for BOOL, (i+j) mod 2.
    static func pattern(index i: Int, dtype: DType, count: Int) -> [UInt8] {
        (0..<count).map { j in
            dtype == .bool ? UInt8((i + j) % 2) : UInt8(truncatingIfNeeded: 31 * j + 7 * (i + 1))
        }
    }

    func entries() throws -> [SafeTensorsWriter.Entry] {
        try tensors.enumerated().map { i, t in
            let dtype = try #require(DType(safetensorsName: t.dtype), "dtype \(t.dtype)")
            let count = t.shape.reduce(1, *) * dtype.size
            return SafeTensorsWriter.Entry(name: t.name, dtype: dtype, shape: t.shape,
                                           bytes: Self.pattern(index: i, dtype: dtype, count: count))
        }
    }

    var writerOrder: SafeTensorsWriter.Order { order == "asGiven" ? .asGiven : .safetensors }
}

// MARK: - Building raw files

/// A safetensors file from a header (written as given, no padding) and a data buffer.
func rawFile(header: String, data: [UInt8] = []) -> [UInt8] {
    rawFile(headerBytes: Array(header.utf8), data: data)
}

func rawFile(headerBytes: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let n = declaredLength ?? UInt64(headerBytes.count)
    var out: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: n >> UInt64($0 * 8)) }
    out += headerBytes
    out += data
    return out
}

/// The error reading `bytes` throws, or nil when they load.
func refusal(_ bytes: [UInt8], maxHeaderBytes: Int = SafeTensorsFormat.defaultMaxHeaderBytes) -> SafeTensorsError? {
    do {
        _ = try SafeTensorsFile(bytes: bytes, name: "test.safetensors", maxHeaderBytes: maxHeaderBytes)
        return nil
    } catch {
        return error
    }
}

func sha256Hex(_ tensor: TensorRecord) -> String {
    tensor.withContiguousBytes { SHA256.hex($0) }
}

/// A fresh empty folder under the system's temporary folder.
func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("torchport-safetensors-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Every dtype safetensors can hold, with a few bytes each.
let everyWritableDType: [DType] = DType.allCases.filter { $0.safetensorsName != nil }
