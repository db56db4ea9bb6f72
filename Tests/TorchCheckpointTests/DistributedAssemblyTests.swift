import Foundation
import Testing
@testable import TorchCheckpoint
import TorchportCore

/// `DistributedCheckpoint.assemble`: chunks of a sharded tensor put back together, and chunks that
/// do not tile their tensor refused.
@Suite("Distributed checkpoint chunks")
struct DistributedAssemblyTests {
    /// A float32 chunk of `shape` holding `values`.
    static func chunk(_ offsets: [Int], _ shape: [Int], _ values: [Float]) throws -> (offsets: [Int], sizes: [Int], tensor: TensorRecord) {
        let bytes = values.withUnsafeBytes { Array($0) }
        let t = try #require(TensorRecord(dtype: .float32, shape: shape, bytes: ByteSlice(owner: FileBytes.owned(bytes))))
        return (offsets, shape, t)
    }

    static func floats(_ t: TensorRecord) -> [Float] {
        t.withContiguousBytes { Array($0.bindMemory(to: Float.self)) }
    }

    @Test("Column blocks (Shard(1)) and row blocks (Shard(0)) go back in place")
    func tiles() throws {
        // [[0 1 2 3], [4 5 6 7]] as two column blocks, the right one listed first.
        let columns = try DistributedCheckpoint.assemble(fqn: "w", size: [2, 4], numel: 8, dtype: .float32, chunks: [
            Self.chunk([0, 2], [2, 2], [2, 3, 6, 7]), Self.chunk([0, 0], [2, 2], [0, 1, 4, 5]),
        ], file: "m")
        #expect(Self.floats(columns) == (0..<8).map(Float.init))
        let rows = try DistributedCheckpoint.assemble(fqn: "w", size: [3, 2], numel: 6, dtype: .float32, chunks: [
            Self.chunk([0, 0], [1, 2], [0, 1]), Self.chunk([1, 0], [2, 2], [2, 3, 4, 5]),
        ], file: "m")
        #expect(Self.floats(rows) == (0..<6).map(Float.init))
    }

    @Test("Overlapping chunks, a gap, and a whole chunk beside another are refused with the tensor's name")
    func refusesBadTilings() throws {
        func reason(_ chunks: [(offsets: [Int], sizes: [Int], tensor: TensorRecord)], size: [Int] = [2, 4]) -> String? {
            do {
                _ = try DistributedCheckpoint.assemble(fqn: "w", size: size, numel: size.reduce(1, *), dtype: .float32, chunks: chunks, file: "m")
                return nil
            } catch let e as CheckpointError {
                guard case .layout(let r) = e.kind, e.location.key == "w" else { return "other: \(e)" }
                return r
            } catch { return "other: \(error)" }
        }
        // Two [2, 2] chunks overlapping in column 1: 8 elements in all, as many as the tensor has.
        let overlap = try [Self.chunk([0, 0], [2, 2], [0, 1, 4, 5]), Self.chunk([0, 1], [2, 2], [1, 2, 5, 6])]
        #expect(reason(overlap)?.contains("cover 8 of 8") == false)
        #expect(reason(overlap)?.contains("overlaps") == true)
        let gap = try [Self.chunk([0, 0], [2, 2], [0, 1, 4, 5])]
        #expect(reason(gap)?.contains("cover 4 of 8") == true)
        let whole = try [Self.chunk([0, 0], [2, 4], (0..<8).map(Float.init)), Self.chunk([0, 0], [1, 1], [0])]
        #expect(reason(whole)?.contains("covers the whole tensor") == true)
    }
}
