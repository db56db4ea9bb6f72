import Foundation
import TorchportCore

/// A restricted unpickler for protocols 0 to 5. It builds values into a ``PickleGraph`` and gives
/// meaning only to allowlisted globals (see `Unpickler+Globals`); nothing is ever imported or
/// called. Every operand is bounds checked, every resource bounded by ``ReaderLimits``, and every
/// failure is a ``CheckpointError`` carrying the entry, byte offset and opcode.
public final class Unpickler {
    let data: UnsafeRawBufferPointer
    let options: ReaderOptions
    let file: String?
    let entry: String?
    /// Added to error offsets: where `data` starts inside the file, for pickles inside a stream.
    let baseOffset: Int
    var graph: PickleGraph

    var pos = 0
    var frameEnd: Int?
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]
    var opStart = 0
    var opcode: UInt8 = 0
    var ops = 0
    /// The protocol declared by the pickle's PROTO opcode (0 when it has none, as in protocols 0 and 1).
    public internal(set) var protocolVersion = 0
    /// True while reading a legacy-format main pickle: persistent ids carry a sixth element.
    var legacyPersistentIDs = false

    /// An unpickler over `data`, adding to `graph`. `file`, `entry` and `baseOffset` (where `data`
    /// starts in the file) are used in errors.
    public init(data: UnsafeRawBufferPointer, graph: PickleGraph = PickleGraph(), options: ReaderOptions = .init(),
                file: String? = nil, entry: String? = nil, baseOffset: Int = 0) {
        self.data = data
        self.baseOffset = baseOffset
        self.graph = graph
        self.options = options
        self.file = file
        self.entry = entry
    }

    /// The graph after `load()`: the arena the returned value's containers live in.
    public var result: PickleGraph { graph }

    /// Runs the pickle up to STOP and returns the top value. `requireEnd` rejects bytes after STOP.
    public func load(requireEnd: Bool = true) throws -> PickleValue {
        while true {
            guard pos < data.count else {
                opStart = pos
                throw error(.missingStop)
            }
            // A frame ends where its bytes end; an opcode and its operands must lie in one frame.
            if let end = frameEnd, pos >= end { frameEnd = nil }
            opStart = pos
            opcode = data[pos]
            pos += 1
            ops += 1
            if ops > options.limits.maxOps { throw error(.limitExceeded(.ops, limit: options.limits.maxOps)) }
            if opcode == Op.stop {
                let value = try pop()
                if requireEnd && pos != data.count {
                    opStart = pos
                    throw error(.trailingData(count: data.count - pos))
                }
                return value
            }
            try execute(opcode)
        }
    }

    /// Bytes consumed so far (for streams that hold several pickles back to back).
    public var offset: Int { pos }

    // MARK: - Errors

    func error(_ kind: CheckpointError.Kind, key: String? = nil) -> CheckpointError {
        CheckpointError(kind, file: file, entry: entry, offset: baseOffset + opStart, opcode: opcode, key: key)
    }

    // MARK: - Operands

    /// Takes `n` operand bytes. `declared` says whether `n` came from the file (a length field):
    /// such overruns are `badLength`; fixed-size operands cut by the end are `truncated`.
    @inline(__always)
    func take(_ n: Int, declared: Bool = false) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= data.count - pos else {
            throw declared ? error(.badLength(Int64(n))) : error(.truncated(needed: n, available: data.count - pos))
        }
        if let end = frameEnd {
            guard n <= end - pos else { throw error(.frameBoundary("operand of \(n) bytes crosses the frame end at \(end)")) }
        }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: data[pos..<(pos + n)])
    }

    func u8() throws -> UInt8 { try take(1)[0] }
    func u16() throws -> Int { Int(UInt16(littleEndian: try take(2).loadUnaligned(as: UInt16.self))) }
    func u32() throws -> UInt32 { UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self)) }
    func i32() throws -> Int32 { Int32(littleEndian: try take(4).loadUnaligned(as: Int32.self)) }
    func u64() throws -> UInt64 { UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self)) }

    /// A length field: negative or non-representable values are `badLength`.
    func length(_ raw: Int64) throws -> Int {
        guard raw >= 0, raw <= Int64(data.count - pos) else { throw error(.badLength(raw)) }
        return Int(raw)
    }

    func length64() throws -> Int {
        let raw = try u64()
        return try length(raw > UInt64(Int64.max) ? Int64.min : Int64(raw))
    }

    /// A protocol-0 text operand up to (not including) the next newline.
    func line() throws -> UnsafeRawBufferPointer {
        let limit = frameEnd ?? data.count
        var end = pos
        while end < limit && data[end] != 0x0A { end += 1 }
        guard end < limit else {
            if frameEnd != nil && end < data.count { throw error(.frameBoundary("text operand crosses the frame end")) }
            throw error(.truncated(needed: end - pos + 1, available: data.count - pos))
        }
        let text = try take(end - pos)
        _ = try take(1)
        return text
    }

    func utf8(_ bytes: UnsafeRawBufferPointer) throws -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else { throw error(.invalidUTF8) }
        return s
    }

    func ascii(_ bytes: UnsafeRawBufferPointer) throws -> String {
        guard bytes.allSatisfy({ $0 < 0x80 }) else { throw error(.malformedOperand("non-ASCII text operand")) }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Stack

    @inline(__always)
    func push(_ v: PickleValue) throws {
        guard stack.count < options.limits.maxStackSize else {
            throw error(.limitExceeded(.stack, limit: options.limits.maxStackSize))
        }
        stack.append(v)
    }

    /// Pops one value above the innermost MARK.
    @inline(__always)
    func pop() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0) else { throw error(.stackUnderflow) }
        return stack.removeLast()
    }

    func top() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0), let v = stack.last else { throw error(.stackUnderflow) }
        return v
    }

    /// Pops everything above the innermost MARK, and the MARK.
    func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw error(.missingMark) }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    func memoPut(_ index: Int, _ value: PickleValue) throws {
        guard index >= 0 else { throw error(.malformedOperand("negative memo index \(index)")) }
        if memo[index] == nil, memo.count >= options.limits.maxMemoEntries {
            throw error(.limitExceeded(.memo, limit: options.limits.maxMemoEntries))
        }
        memo[index] = value
    }

    /// Charges `n` units of work to the ops budget. Opcodes that copy or alias a container already
    /// built (BUILD with a dict of attributes, `OrderedDict(pairs)`, `set(list)`, `torch.Size(list)`)
    /// cost as many units as elements, so replaying one large memoized container many times (a
    /// few bytes per replay) cannot grow memory or time faster than the budget allows. The budget
    /// is `maxOps`, and at most 1M + 16 units per byte of pickle: a real pickle spends about one
    /// unit per byte, while a memo-replay bomb would spend thousands.
    func charge(_ n: Int) throws {
        ops += n
        if ops > workBudget { throw error(.limitExceeded(.ops, limit: workBudget)) }
    }

    /// `min(maxOps, 1_000_000 + 16 * data.count)`: see `charge`.
    var workBudget: Int {
        let (perByte, o1) = data.count.multipliedReportingOverflow(by: 16)
        let (scaled, o2) = perByte.addingReportingOverflow(1_000_000)
        return o1 || o2 ? options.limits.maxOps : min(options.limits.maxOps, scaled)
    }

    func memoGet(_ index: Int) throws -> PickleValue {
        guard let v = memo[index] else { throw error(.memoMissing(index: index)) }
        return v
    }
}
