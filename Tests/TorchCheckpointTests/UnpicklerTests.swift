import Foundation
import Testing
@testable import TorchCheckpoint
import TorchportCore

/// Python's own `pickle.dumps(PLAIN, protocol=N)` of one structure (see `Fixtures/generate.py`),
/// read back value by value for every protocol.
@Suite("The restricted unpickler")
struct UnpicklerTests {
    static func load(_ bytes: [UInt8], options: ReaderOptions = .init()) throws -> (PickleGraph, PickleValue) {
        try bytes.withUnsafeBytes { buf in
            let u = Unpickler(data: buf, options: options, entry: "test")
            let v = try u.load()
            return (u.result, v)
        }
    }

    @Test("Reads Python's plain pickles of protocols 0 to 5 to the same values", arguments: 0...5)
    func plainProtocols(proto: Int) throws {
        let path = FixturePaths.fixtures.appendingPathComponent("pickles/plain-protocol\(proto).pkl")
        let (g, root) = try Self.load(Array(try Data(contentsOf: path)))
        guard case .dict(let d) = root else { Issue.record("root is \(root.kindName)"); return }
        let dict = g.dicts[d]
        #expect(dict["int"] == .int(7))
        #expect(dict["neg"] == .int(-300))
        guard case .bigInt(let big)? = dict["big"] else { Issue.record("big is not a big int"); return }
        #expect(big.description == "1180591620717411303424")  // 2**70
        guard case .bigInt(let huge)? = dict["huge"] else { Issue.record("huge is not a big int"); return }
        #expect(huge.isNegative)
        // -(2**2100): 633 digits and a sign; its first and last digits as Python prints them.
        #expect(huge.description.count == 634)
        #expect(huge.description.hasPrefix("-1455428565004863093"))
        #expect(huge.description.hasSuffix("0385125376"))
        #expect(dict["float"] == .float(1.5e-3))
        #expect(dict["str"] == .string("h\u{e9}llo \u{2713}"))
        #expect(dict["bytes"] == .bytes([0x00, 0xFF, 0x61, 0x62]))
        #expect(dict["none"] == PickleValue.none)
        #expect(dict["t"] == .bool(true))
        #expect(dict["f"] == .bool(false))
        guard let list = dict["list"].flatMap({ g.sequence($0) }) else { Issue.record("no list"); return }
        #expect(list.count == 3)
        #expect(list[0] == .int(1))
        #expect(g.sequence(list[1]) == [.int(2), .int(3)])
        #expect(g.sequence(list[2]) == [.int(4), .int(5)])
        if case .tuple = list[2] {} else { Issue.record("(4, 5) is not a tuple") }
        // The memo keeps sharing: both elements are the same list object.
        guard let shared = dict["shared"].flatMap({ g.sequence($0) }) else { Issue.record("no shared"); return }
        #expect(shared.count == 2)
        #expect(shared[0] == shared[1])
        #expect(g.sequence(shared[0]) == [.int(9), .int(9)])
        guard case .dict(let ik)? = dict["intkey"] else { Issue.record("no intkey"); return }
        #expect(g.dicts[ik].keys == [.int(1), .int(2)])
        #expect(g.dicts[ik].values == [.string("one"), .string("two")])
    }

    @Test("BINFLOAT is big-endian; LONG1 sign-extends; protocol-0 text operands decode")
    func operandEncodings() throws {
        // PROTO 2, BINFLOAT 1.5 (3ff8000000000000 big-endian), STOP
        #expect(try Self.load([0x80, 2, 0x47, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0, 0x2E]).1 == .float(1.5))
        // LONG1 of 0xFF (one byte) is -1; LONG1 of 0x00 0x80 is 32768
        #expect(try Self.load([0x80, 2, 0x8A, 1, 0xFF, 0x2E]).1 == .int(-1))
        #expect(try Self.load([0x80, 2, 0x8A, 2, 0x00, 0x80, 0x2E]).1 == .int(-32768))
        #expect(try Self.load([0x80, 2, 0x8A, 3, 0x00, 0x80, 0x00, 0x2E]).1 == .int(32768))
        // Protocol 0: I01 is True, L123L is 123, S'a\x41\n' decodes escapes, V\u00e9 is é
        #expect(try Self.load(Array("I01\n.".utf8)).1 == .bool(true))
        #expect(try Self.load(Array("L123L\n.".utf8)).1 == .int(123))
        #expect(try Self.load(Array("S'a\\x41\\n'\n.".utf8)).1 == .string("aA\n"))
        #expect(try Self.load(Array("V\\u00e9x\n.".utf8)).1 == .string("\u{e9}x"))
        #expect(try Self.load(Array("F-2.5\n.".utf8)).1 == .float(-2.5))
    }

    @Test("A global outside the allowlist is refused at its GLOBAL opcode, with its name and offset")
    func refusesUnknownGlobal() throws {
        let bytes: [UInt8] = [0x80, 2] + Array("cos\nsystem\n".utf8) + [0x58, 2, 0, 0, 0] + Array("id".utf8) + [0x85, 0x52, 0x2E]
        do {
            _ = try Self.load(bytes)
            Issue.record("os.system was accepted")
        } catch let e as CheckpointError {
            #expect(e.kind == .disallowedGlobal(module: "os", name: "system"))
            #expect(e.offset == 2)
            #expect(e.opcode == 0x63)
            #expect(e.key == "os.system")
        }
        // With the explicit option the call becomes an inert record: nothing runs.
        let (g, v) = try Self.load(bytes, options: ReaderOptions(allowUnknownGlobals: true))
        guard case .object(let o) = v else { Issue.record("expected an inert object"); return }
        #expect(g.objects[o].qualifiedName == "os.system")
        #expect(g.objects[o].args == [.string("id")])
    }

    @Test("A list appended to itself loads as a cycle without recursion")
    func cycle() throws {
        // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP
        let (g, v) = try Self.load([0x80, 2, 0x5D, 0x71, 0, 0x68, 0, 0x61, 0x2E])
        guard case .list(let i) = v else { Issue.record("not a list"); return }
        #expect(g.lists[i] == [.list(i)])
    }

    @Test("Limits hold at their edges: MARK depth just under loads, just over is refused")
    func depthLimitEdges() throws {
        var limits = ReaderLimits()
        limits.maxDepth = 10
        let options = ReaderOptions(limits: limits)
        func nested(_ n: Int) -> [UInt8] {
            [0x80, 2] + [UInt8](repeating: 0x28, count: n) + [UInt8](repeating: 0x6C, count: n) + [0x2E]
        }
        #expect(throws: Never.self) { _ = try Self.load(nested(10), options: options) }
        #expect {
            _ = try Self.load(nested(11), options: options)
        } throws: { e in
            (e as? CheckpointError)?.kind == .limitExceeded(.depth, limit: 10)
        }
    }
}
