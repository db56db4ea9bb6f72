import Foundation
import Testing
@testable import TorchCheckpoint
import TorchportCore

/// Hand-assembled pickles and stored zip archives for limit tests.
enum Craft {
    static let proto2: [UInt8] = [0x80, 0x02]
    static let stop: [UInt8] = [0x2E]

    static func str(_ s: String) -> [UInt8] {
        let u = Array(s.utf8)
        precondition(u.count < 256)
        return [0x8C, UInt8(u.count)] + u
    }

    static func int(_ i: Int) -> [UInt8] {
        [0x4A] + withUnsafeBytes(of: Int32(i).littleEndian, Array.init)
    }

    static func global(_ module: String, _ name: String) -> [UInt8] {
        [0x63] + Array("\(module)\n\(name)\n".utf8)
    }

    /// `torch._utils._rebuild_tensor_v2(storage(key, numel floats), offset, size, stride, False, OrderedDict())`.
    static func tensor(key: String, numel: Int, size: [Int], stride: [Int], offset: Int = 0) -> [UInt8] {
        var p = global("torch._utils", "_rebuild_tensor_v2")
        p += [0x28]  // MARK (arguments)
        p += [0x28] + str("storage") + global("torch", "FloatStorage") + str(key) + str("cpu") + int(numel) + [0x74, 0x51]
        p += int(offset)
        p += [0x28] + size.flatMap(int) + [0x74]
        p += [0x28] + stride.flatMap(int) + [0x74]
        p += [0x89]  // NEWFALSE
        p += global("collections", "OrderedDict") + [0x29, 0x52]
        p += [0x74, 0x52]  // TUPLE, REDUCE
        return p
    }

    /// A state dict `{name: tensor}` pickle; each tensor is a float32[numel] over its own storage.
    static func stateDict(_ tensors: [(name: String, key: String, numel: Int)]) -> [UInt8] {
        var p = proto2 + [0x7D]
        for t in tensors {
            p += str(t.name) + tensor(key: t.key, numel: t.numel, size: [t.numel], stride: [1]) + [0x73]
        }
        return p + stop
    }

    static func crc32(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        }
        return ~c
    }

    /// A stored (uncompressed) zip of `entries`, as torch.save lays them out (no alignment padding).
    static func zip(_ entries: [(String, [UInt8])]) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
        var out: [UInt8] = []
        var central: [UInt8] = []
        for (name, data) in entries {
            let n = Array(name.utf8)
            let crc = crc32(data)
            let offset = UInt32(out.count)
            out += u32(0x0403_4B50) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0x21) + u32(crc)
                + u32(UInt32(data.count)) + u32(UInt32(data.count)) + u16(n.count) + u16(0) + n + data
            central += u32(0x0201_4B50) + u16(20) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0x21) + u32(crc)
                + u32(UInt32(data.count)) + u32(UInt32(data.count)) + u16(n.count) + u16(0) + u16(0) + u16(0) + u16(0)
                + u32(0) + u32(offset) + n
        }
        let cdOffset = UInt32(out.count)
        out += central
        out += u32(0x0605_4B50) + u16(0) + u16(0) + u16(entries.count) + u16(entries.count)
            + u32(UInt32(central.count)) + u32(cdOffset) + u16(0)
        return out
    }

    /// A zip checkpoint: `archive/data.pkl`, `archive/byteorder`, and a zero-filled float32 storage
    /// `archive/data/<key>` for each `(key, numel)`.
    static func checkpoint(pickle: [UInt8], storages: [(String, Int)]) -> [UInt8] {
        zip([("archive/data.pkl", pickle), ("archive/byteorder", Array("little".utf8))]
            + storages.map { ("archive/data/\($0.0)", [UInt8](repeating: 0, count: $0.1 * 4)) })
    }
}

/// Each limit of ``ReaderLimits``, set small: an input exactly at the limit loads, one unit over is
/// refused with `limitExceeded` naming that limit.
@Suite("Reader limits at their edges")
struct LimitEdgeTests {
    static func limits(_ edit: (inout ReaderLimits) -> Void) -> ReaderOptions {
        var l = ReaderLimits()
        edit(&l)
        return ReaderOptions(limits: l)
    }

    static func unpickle(_ bytes: [UInt8], _ options: ReaderOptions) throws {
        try bytes.withUnsafeBytes { _ = try Unpickler(data: $0, options: options).load() }
    }

    static func refusal(_ body: () throws -> Void) -> CheckpointError? {
        do {
            try body()
            return nil
        } catch let e as CheckpointError {
            return e
        } catch {
            Issue.record("untyped error \(error)")
            return nil
        }
    }

    static func expectEdge(_ limit: CheckpointError.Limit, value: Int, under: () throws -> Void, over: () throws -> Void,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: Never.self, "at the \(limit.rawValue) limit", sourceLocation: sourceLocation) { try under() }
        let e = refusal(over)
        #expect(e?.kind == .limitExceeded(limit, limit: value), "one over the \(limit.rawValue) limit: \(String(describing: e))",
                sourceLocation: sourceLocation)
    }

    @Test("maxDepth: nested MARKs")
    func markDepth() {
        func nested(_ n: Int) -> [UInt8] { Craft.proto2 + [UInt8](repeating: 0x28, count: n) + [UInt8](repeating: 0x74, count: n) + Craft.stop }
        let o = Self.limits { $0.maxDepth = 7 }
        Self.expectEdge(.depth, value: 7, under: { try Self.unpickle(nested(7), o) }, over: { try Self.unpickle(nested(8), o) })
    }

    @Test("maxDepth: the nesting depth of a tensor's path")
    func tensorPathDepth() {
        // {'a': {'a': ... {'w': tensor}}}: with k levels of 'a' the tensor sits at depth k + 1.
        func file(_ k: Int) -> [UInt8] {
            var p = Craft.proto2
            for _ in 0..<k { p += [0x7D] + Craft.str("a") }
            p += [0x7D] + Craft.str("w") + Craft.tensor(key: "0", numel: 4, size: [4], stride: [1])
            p += [UInt8](repeating: 0x73, count: k + 1) + Craft.stop
            return Craft.checkpoint(pickle: p, storages: [("0", 4)])
        }
        let o = Self.limits { $0.maxDepth = 6 }
        Self.expectEdge(.depth, value: 6,
                        under: { let names = try Checkpoint(bytes: file(5), options: o).tensors.map(\.name); #expect(names == ["a.a.a.a.a.w"]) },
                        over: { _ = try Checkpoint(bytes: file(6), options: o) })
    }

    @Test("maxMemoEntries: distinct memo indices")
    func memoEntries() {
        func puts(_ n: Int) -> [UInt8] { Craft.proto2 + [0x4E] + (0..<n).flatMap { [0x71, UInt8($0)] } + Craft.stop }
        let o = Self.limits { $0.maxMemoEntries = 20 }
        Self.expectEdge(.memo, value: 20, under: { try Self.unpickle(puts(20), o) }, over: { try Self.unpickle(puts(21), o) })
        // Re-putting an index already set is not a new entry.
        #expect(throws: Never.self) { try Self.unpickle(Craft.proto2 + [0x4E] + (0..<100).flatMap { _ in [0x71, 3] } + Craft.stop, o) }
    }

    @Test("maxOps: opcodes executed, STOP included")
    func ops() {
        // PROTO, m x (NONE, POP), NONE, STOP: 2m + 3 opcodes.
        func file(_ m: Int) -> [UInt8] { Craft.proto2 + (0..<m).flatMap { _ in [0x4E, 0x30] } + [0x4E] + Craft.stop }
        let o = Self.limits { $0.maxOps = 2 * 10 + 3 }
        Self.expectEdge(.ops, value: 23, under: { try Self.unpickle(file(10), o) }, over: { try Self.unpickle(file(11), o) })
    }

    @Test("maxOps: BUILD charges one unit per attribute it copies")
    func opsChargedByBuild() {
        // PROTO, EMPTY_DICT, EMPTY_DICT, MARK, k x (key, NONE), SETITEMS, BUILD, STOP: 2k + 7 opcodes, k units.
        func file(_ k: Int) -> [UInt8] {
            Craft.proto2 + [0x7D, 0x7D, 0x28] + (0..<k).flatMap { Craft.str("a\($0)") + [0x4E] } + [0x75, 0x62] + Craft.stop
        }
        let o = Self.limits { $0.maxOps = 3 * 10 + 7 }
        Self.expectEdge(.ops, value: 37, under: { try Self.unpickle(file(10), o) }, over: { try Self.unpickle(file(11), o) })
    }

    @Test("The ops budget scales with the pickle: a memo-replay BUILD bomb is refused early")
    func buildBombRefused() {
        // A dict of 3,000 attributes BUILT onto the same target 3,000 times (3 bytes each): 9M
        // copies from a 33 KB pickle. The budget is 1M + 16 units a byte.
        var p = Craft.proto2 + [0x7D, 0x71, 0, 0x7D, 0x71, 1, 0x28]
        p += (0..<3000).flatMap { Craft.str("k\($0)") + [0x4E] } + [0x75, 0x30]
        p += (0..<3000).flatMap { _ in [0x68, 1, 0x62] } + Craft.stop
        let budget = 1_000_000 + 16 * p.count
        let e = Self.refusal { try Self.unpickle(p, ReaderOptions()) }
        #expect(e?.kind == .limitExceeded(.ops, limit: budget), "\(String(describing: e))")
    }

    @Test("maxStackSize: values on the stack at once")
    func stack() {
        func file(_ n: Int) -> [UInt8] {
            Craft.proto2 + [UInt8](repeating: 0x4E, count: n) + [UInt8](repeating: 0x30, count: n - 1) + Craft.stop
        }
        let o = Self.limits { $0.maxStackSize = 50 }
        Self.expectEdge(.stack, value: 50, under: { try Self.unpickle(file(50), o) }, over: { try Self.unpickle(file(51), o) })
    }

    @Test("maxElements: logical elements of one tensor (a zero-stride view)")
    func elements() {
        func file(_ n: Int) -> [UInt8] {
            let p = Craft.proto2 + [0x7D] + Craft.str("w") + Craft.tensor(key: "0", numel: 1, size: [n], stride: [0]) + [0x73] + Craft.stop
            return Craft.checkpoint(pickle: p, storages: [("0", 1)])
        }
        let o = Self.limits { $0.maxElements = 1000 }
        Self.expectEdge(.elements, value: 1000,
                        under: { let n = try Checkpoint(bytes: file(1000), options: o).tensors.first?.tensor.numel; #expect(n == 1000) },
                        over: { _ = try Checkpoint(bytes: file(1001), options: o) })
    }

    @Test("maxEntries: entries in the central directory")
    func entries() {
        let file = Craft.checkpoint(pickle: Craft.stateDict([("w", "0", 4)]), storages: [("0", 4)])  // 3 entries
        Self.expectEdge(.entries, value: 2,
                        under: { _ = try Checkpoint(bytes: file, options: Self.limits { $0.maxEntries = 3 }) },
                        over: { _ = try Checkpoint(bytes: file, options: Self.limits { $0.maxEntries = 2 }) })
    }

    @Test("maxNameBytes: total bytes of tensor names")
    func names() {
        let file = Craft.checkpoint(pickle: Craft.stateDict([("a", "0", 2), ("bb", "1", 2)]), storages: [("0", 2), ("1", 2)])
        Self.expectEdge(.names, value: 2,
                        under: { let n = try Checkpoint(bytes: file, options: Self.limits { $0.maxNameBytes = 3 }).tensors.count; #expect(n == 2) },
                        over: { _ = try Checkpoint(bytes: file, options: Self.limits { $0.maxNameBytes = 2 }) })
    }

    @Test("maxInflatedEntryBytes: the declared size of a deflated entry")
    func inflatedEntry() throws {
        let path = FixturePaths.checkpoint("deflated.pth")
        let bytes = try FileBytes.map(path: path)
        let zip = try ZipArchive(file: bytes, fileName: path, limits: ReaderLimits())
        // The largest entry the reader inflates: data.pkl, the byteorder record, the storages.
        let read = zip.entries.filter { $0.name.hasSuffix("/data.pkl") || $0.name.hasSuffix("/byteorder") || $0.name.contains("/data/") }
        let largest = try #require(read.max { $0.uncompressedSize < $1.uncompressedSize })
        #expect(largest.method == 8)
        let n = largest.uncompressedSize
        Self.expectEdge(.entrySize, value: n - 1,
                        under: { _ = try Checkpoint(contentsOf: path, options: Self.limits { $0.maxInflatedEntryBytes = n }) },
                        over: { _ = try Checkpoint(contentsOf: path, options: Self.limits { $0.maxInflatedEntryBytes = n - 1 }) })
    }

    @Test("maxInflatedTotalBytes: every deflated entry the reader inflates, added up")
    func inflatedTotal() throws {
        let path = FixturePaths.checkpoint("deflated.pth")
        let zip = try ZipArchive(file: try FileBytes.map(path: path), fileName: path, limits: ReaderLimits())
        let read = zip.entries.filter {
            $0.method == 8 && ($0.name.hasSuffix("/data.pkl") || $0.name.hasSuffix("/byteorder") || $0.name.contains("/data/"))
        }
        #expect(read.count >= 3)
        let total = read.reduce(0) { $0 + $1.uncompressedSize }
        let largest = try #require(read.map(\.uncompressedSize).max())
        // Each entry fits the per-entry bound; only the total decides.
        Self.expectEdge(.inflatedTotal, value: total - 1,
                        under: { _ = try Checkpoint(contentsOf: path, options: Self.limits { $0.maxInflatedTotalBytes = total }) },
                        over: {
                            _ = try Checkpoint(contentsOf: path, options: Self.limits {
                                $0.maxInflatedTotalBytes = total - 1
                                $0.maxInflatedEntryBytes = largest
                            })
                        })
    }

    @Test("A deflated entry declaring more than deflate's 1032:1 ratio is refused before allocating")
    func inflateRatio() throws {
        let path = HostileCorpus.directory.appendingPathComponent("cases/zip-inflate-declared-4gib.pth").path
        let e = Self.refusal { _ = try Checkpoint(contentsOf: path) }
        guard case .zipInflate? = e?.kind else { Issue.record("\(String(describing: e))"); return }
        #expect(e?.description.contains("maximum ratio") == true, "\(String(describing: e))")
    }
}
