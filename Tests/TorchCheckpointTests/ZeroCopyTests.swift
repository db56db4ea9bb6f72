import Foundation
import Testing
@testable import TorchCheckpoint
import TorchportCore

@Suite("Zero-copy views and storage sharing")
struct ZeroCopyTests {
    @Test("Contiguous tensors of a stored zip are views into the mapped file, 64-byte aligned")
    func viewsIntoTheMap() throws {
        let c = try Checkpoint(contentsOf: FixturePaths.checkpoint("tiny-resnet-basic.pth"))
        let file = try #require(c.tensors.first?.tensor.storage.owner)
        let mapped = file.bytes
        #expect(c.tensors.count > 10)
        for t in c.tensors {
            let view = try #require(t.tensor.contiguousView, "\(t.name) is not a view")
            #expect(view.owner === file, "\(t.name) was copied")
            let start = try #require(view.buffer.baseAddress)
            #expect(start >= mapped.baseAddress! && start + view.count <= mapped.baseAddress! + mapped.count)
            #expect(Int(bitPattern: start) % 64 == 0, "\(t.name) data is not 64-byte aligned")
        }
    }

    @Test("A file map's pages handed back to the kernel read the same again; owned memory is untouched")
    func releasedPagesReadAgain() throws {
        let c = try Checkpoint(contentsOf: FixturePaths.checkpoint("tiny-resnet-basic.pth"))
        let file = try #require(c.tensors.first?.tensor.storage.owner)
        #expect(file.isFileMap)
        let before = c.tensors.map { $0.tensor.floats() }
        file.releaseResidentPages()
        #expect(c.tensors.map { $0.tensor.floats() } == before)
        let owned = FileBytes.owned([1, 2, 3, 4] as [UInt8])
        #expect(!owned.isFileMap)
        owned.releaseResidentPages()
        #expect(Array(owned.bytes) == [1, 2, 3, 4])
    }

    @Test("Tensors sharing one storage see the same bytes at their own offsets")
    func sharedStorage() throws {
        let c = try Checkpoint(contentsOf: FixturePaths.checkpoint("shared-storage.pth"))
        let whole = try #require(c.tensor(named: "c"))
        let a = try #require(c.tensor(named: "a"))
        #expect(a.storageKey == whole.storageKey)
        #expect(a.floats() == Array(whole.floats()[0..<10]))
        let b = try #require(c.tensor(named: "b"))
        #expect(b.floats() == Array(whole.floats()[10..<40]))
    }
}
