import Foundation
import TorchportCore

/// Pickle opcodes, protocols 0 to 5 (CPython's `Lib/pickle.py` names).
enum Op {
    static let mark: UInt8 = 0x28            // (
    static let stop: UInt8 = 0x2E            // .
    static let pop: UInt8 = 0x30             // 0
    static let popMark: UInt8 = 0x31         // 1
    static let dup: UInt8 = 0x32             // 2
    static let float: UInt8 = 0x46           // F
    static let int: UInt8 = 0x49             // I
    static let binInt: UInt8 = 0x4A          // J
    static let binInt1: UInt8 = 0x4B         // K
    static let long: UInt8 = 0x4C            // L
    static let binInt2: UInt8 = 0x4D         // M
    static let none: UInt8 = 0x4E            // N
    static let persID: UInt8 = 0x50          // P
    static let binPersID: UInt8 = 0x51       // Q
    static let reduce: UInt8 = 0x52          // R
    static let string: UInt8 = 0x53          // S
    static let binString: UInt8 = 0x54       // T
    static let shortBinString: UInt8 = 0x55  // U
    static let unicode: UInt8 = 0x56         // V
    static let binUnicode: UInt8 = 0x58      // X
    static let append: UInt8 = 0x61          // a
    static let build: UInt8 = 0x62           // b
    static let global: UInt8 = 0x63          // c
    static let dict: UInt8 = 0x64            // d
    static let emptyDict: UInt8 = 0x7D       // }
    static let appends: UInt8 = 0x65         // e
    static let get: UInt8 = 0x67             // g
    static let binGet: UInt8 = 0x68          // h
    static let inst: UInt8 = 0x69            // i
    static let longBinGet: UInt8 = 0x6A      // j
    static let list: UInt8 = 0x6C            // l
    static let emptyList: UInt8 = 0x5D       // ]
    static let obj: UInt8 = 0x6F             // o
    static let put: UInt8 = 0x70             // p
    static let binPut: UInt8 = 0x71          // q
    static let longBinPut: UInt8 = 0x72      // r
    static let setItem: UInt8 = 0x73         // s
    static let tuple: UInt8 = 0x74           // t
    static let emptyTuple: UInt8 = 0x29      // )
    static let setItems: UInt8 = 0x75        // u
    static let binFloat: UInt8 = 0x47        // G
    static let proto: UInt8 = 0x80
    static let newObj: UInt8 = 0x81
    static let ext1: UInt8 = 0x82
    static let ext2: UInt8 = 0x83
    static let ext4: UInt8 = 0x84
    static let tuple1: UInt8 = 0x85
    static let tuple2: UInt8 = 0x86
    static let tuple3: UInt8 = 0x87
    static let newTrue: UInt8 = 0x88
    static let newFalse: UInt8 = 0x89
    static let long1: UInt8 = 0x8A
    static let long4: UInt8 = 0x8B
    static let binBytes: UInt8 = 0x42        // B
    static let shortBinBytes: UInt8 = 0x43   // C
    static let shortBinUnicode: UInt8 = 0x8C
    static let binUnicode8: UInt8 = 0x8D
    static let binBytes8: UInt8 = 0x8E
    static let emptySet: UInt8 = 0x8F
    static let addItems: UInt8 = 0x90
    static let frozenSet: UInt8 = 0x91
    static let newObjEx: UInt8 = 0x92
    static let stackGlobal: UInt8 = 0x93
    static let memoize: UInt8 = 0x94
    static let frame: UInt8 = 0x95
    static let byteArray8: UInt8 = 0x96
    static let nextBuffer: UInt8 = 0x97
    static let readonlyBuffer: UInt8 = 0x98
}

extension Unpickler {
    func execute(_ op: UInt8) throws {
        switch op {
        // MARK: Structure
        case Op.proto:
            let v = Int(try u8())
            guard v <= 5 else { throw error(.unsupportedProtocol(v)) }
            protocolVersion = v
        case Op.frame:
            if let end = frameEnd, end > pos { throw error(.frameBoundary("new frame before the end of the current one")) }
            let n = try length64()
            frameEnd = n == 0 ? nil : pos + n
        case Op.mark:
            guard marks.count < options.limits.maxDepth else {
                throw error(.limitExceeded(.depth, limit: options.limits.maxDepth))
            }
            marks.append(stack.count)
        case Op.pop:
            // Python pops the innermost MARK when nothing is above it; with neither, it underflows.
            if stack.count > (marks.last ?? 0) { stack.removeLast() } else if marks.isEmpty {
                throw error(.stackUnderflow)
            } else { _ = try popMark() }
        case Op.popMark:
            _ = try popMark()
        case Op.dup:
            try push(try top())

        // MARK: Scalars
        case Op.none: try push(.none)
        case Op.newTrue: try push(.bool(true))
        case Op.newFalse: try push(.bool(false))
        case Op.binInt: try push(.int(Int(try i32())))
        case Op.binInt1: try push(.int(Int(try u8())))
        case Op.binInt2: try push(.int(try u16()))
        case Op.int:
            let text = try ascii(try line())
            if text == "01" { try push(.bool(true)) } else if text == "00" { try push(.bool(false)) } else {
                try push(try decimal(text))
            }
        case Op.long:
            var text = try ascii(try line())
            if text.hasSuffix("L") { text.removeLast() }
            try push(try decimal(text))
        case Op.long1:
            let n = try length(Int64(try u8()))
            try push(longValue(try take(n, declared: true)))
        case Op.long4:
            let n = try length(Int64(try i32()))
            try push(longValue(try take(n, declared: true)))
        case Op.float:
            let text = try ascii(try line())
            guard let d = Double(text.trimmingCharacters(in: .whitespaces)) else {
                throw error(.malformedOperand("FLOAT \(text.prefix(40).debugDescription)"))
            }
            try push(.float(d))
        case Op.binFloat:
            try push(.float(Double(bitPattern: UInt64(bigEndian: try take(8).loadUnaligned(as: UInt64.self)))))

        // MARK: Strings and bytes
        case Op.binUnicode:
            try push(.string(try utf8(try take(length(Int64(try u32())), declared: true))))
        case Op.shortBinUnicode:
            try push(.string(try utf8(try take(length(Int64(try u8())), declared: true))))
        case Op.binUnicode8:
            try push(.string(try utf8(try take(length64(), declared: true))))
        case Op.unicode:
            try push(.string(try rawUnicodeEscape(try line())))
        case Op.binBytes:
            try push(.bytes(Array(try take(length(Int64(try u32())), declared: true))))
        case Op.shortBinBytes:
            try push(.bytes(Array(try take(length(Int64(try u8())), declared: true))))
        case Op.binBytes8, Op.byteArray8:
            try push(.bytes(Array(try take(length64(), declared: true))))
        case Op.binString:
            try push(.string(try utf8(try take(length(Int64(try i32())), declared: true))))
        case Op.shortBinString:
            try push(.string(try utf8(try take(length(Int64(try u8())), declared: true))))
        case Op.string:
            try push(.string(try quotedString(try line()).withUnsafeBytes { try utf8($0) }))
        case Op.nextBuffer:
            throw error(.malformedOperand("NEXT_BUFFER: out-of-band buffers are not part of a checkpoint"))
        case Op.readonlyBuffer:
            _ = try top()

        // MARK: Containers
        case Op.emptyList: try push(graph.add(list: []))
        case Op.emptyTuple: try push(graph.add(tuple: []))
        case Op.emptyDict: try push(graph.add(dict: PickleDict(ordered: false)))
        case Op.emptySet: try push(graph.add(set: []))
        case Op.list: try push(graph.add(list: try popMark()))
        case Op.tuple: try push(graph.add(tuple: try popMark()))
        case Op.tuple1:
            let a = try pop()
            try push(graph.add(tuple: [a]))
        case Op.tuple2:
            let b = try pop(), a = try pop()
            try push(graph.add(tuple: [a, b]))
        case Op.tuple3:
            let c = try pop(), b = try pop(), a = try pop()
            try push(graph.add(tuple: [a, b, c]))
        case Op.frozenSet: try push(graph.add(set: try popMark()))
        case Op.dict:
            let items = try popMark()
            guard items.count % 2 == 0 else { throw error(.malformedOperand("DICT with an odd number of items")) }
            var d = PickleDict(ordered: false)
            for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }
            try push(graph.add(dict: d))
        case Op.append:
            let v = try pop()
            try appendItems([v], to: try top())
        case Op.appends:
            let items = try popMark()
            try appendItems(items, to: try top())
        case Op.addItems:
            let items = try popMark()
            guard case .set(let i) = try top() else { throw error(.wrongType(operation: "ADDITEMS", expected: "set", got: try top().kindName)) }
            graph.sets[i].append(contentsOf: items)
        case Op.setItem:
            let v = try pop(), k = try pop()
            try setItems([k, v], on: try top())
        case Op.setItems:
            let items = try popMark()
            guard items.count % 2 == 0 else { throw error(.malformedOperand("SETITEMS with an odd number of items")) }
            try setItems(items, on: try top())

        // MARK: Memo
        case Op.put: try memoPut(try decimalIndex(), try top())
        case Op.binPut: try memoPut(Int(try u8()), try top())
        case Op.longBinPut: try memoPut(Int(try u32()), try top())
        case Op.memoize: try memoPut(memo.count, try top())
        case Op.get: try push(try memoGet(try decimalIndex()))
        case Op.binGet: try push(try memoGet(Int(try u8())))
        case Op.longBinGet: try push(try memoGet(Int(try u32())))

        // MARK: Globals and objects
        case Op.global:
            let module = try utf8(try line())
            let name = try utf8(try line())
            try push(try makeGlobal(module: module, name: name))
        case Op.stackGlobal:
            let name = try pop(), module = try pop()
            guard case .string(let m) = module, case .string(let n) = name else {
                throw error(.invalidGlobal("STACK_GLOBAL operands are \(module.kindName) and \(name.kindName), not strings"))
            }
            try push(try makeGlobal(module: m, name: n))
        case Op.inst:
            let module = try utf8(try line())
            let name = try utf8(try line())
            let cls = try makeGlobal(module: module, name: name)
            let args = try popMark()
            try push(try construct(cls, args: args, operation: "INST"))
        case Op.obj:
            let items = try popMark()
            guard let cls = items.first else { throw error(.stackUnderflow) }
            try push(try construct(cls, args: Array(items.dropFirst()), operation: "OBJ"))
        case Op.newObj:
            let args = try pop(), cls = try pop()
            guard let a = graph.sequence(args), case .tuple = args else {
                throw error(.wrongType(operation: "NEWOBJ", expected: "tuple of arguments", got: args.kindName))
            }
            try push(try construct(cls, args: a, operation: "NEWOBJ"))
        case Op.newObjEx:
            let kwargs = try pop(), args = try pop(), cls = try pop()
            guard case .tuple = args, let a = graph.sequence(args), case .dict = kwargs else {
                throw error(.wrongType(operation: "NEWOBJ_EX", expected: "tuple and dict", got: "\(args.kindName) and \(kwargs.kindName)"))
            }
            try push(try construct(cls, args: a, operation: "NEWOBJ_EX"))
        case Op.reduce:
            let args = try pop(), callable = try pop()
            guard case .tuple = args, let a = graph.sequence(args) else {
                throw error(.wrongType(operation: "REDUCE", expected: "tuple of arguments", got: args.kindName))
            }
            try push(try reduce(callable, args: a))
        case Op.build:
            let state = try pop()
            try build(try top(), state: state)
        case Op.ext1, Op.ext2, Op.ext4:
            let code = op == Op.ext1 ? Int(try u8()) : op == Op.ext2 ? try u16() : Int(try i32())
            throw error(.extensionRegistry(code: code))
        case Op.persID:
            _ = try line()
            throw error(.badPersistentID("text persistent ids (PERSID) are not written by torch.save"))
        case Op.binPersID:
            try push(try persistentLoad(try pop()))
        default:
            throw error(.unknownOpcode(op))
        }
    }

    // MARK: - Operand decoding

    private func decimal(_ text: String) throws -> PickleValue {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let i = Int(t) { return .int(i) }
        guard !t.isEmpty, t.dropFirst(t.hasPrefix("-") || t.hasPrefix("+") ? 1 : 0).allSatisfy(\.isASCIIDigit) else {
            throw error(.malformedOperand("integer \(t.prefix(40).debugDescription)"))
        }
        // CPython refuses integer text of more than 4,300 digits (`sys.int_info.default_max_str_digits`),
        // so torch.load would too; the conversion is quadratic in the digits.
        guard t.utf8.count <= Self.maxDecimalDigits + 1 else {
            throw error(.malformedOperand("integer of \(t.utf8.count) digits, over CPython's \(Self.maxDecimalDigits)-digit limit"))
        }
        return .bigInt(PickleBigInt(bytes: Self.twosComplement(decimal: t)))
    }

    private func decimalIndex() throws -> Int {
        let text = try ascii(try line())
        guard let i = Int(text), i >= 0 else { throw error(.malformedOperand("memo index \(text.prefix(40).debugDescription)")) }
        return i
    }

    private func longValue(_ bytes: UnsafeRawBufferPointer) -> PickleValue {
        if bytes.isEmpty { return .int(0) }
        if bytes.count <= 8 {
            var v: UInt64 = 0
            for b in bytes.reversed() { v = v << 8 | UInt64(b) }
            let shift = UInt64(64 - 8 * bytes.count)
            return .int(Int(Int64(bitPattern: v << shift) >> Int64(shift)))  // sign-extend
        }
        // Trim redundant sign bytes; keep a big integer only when it does not fit 64 bits.
        var b = Array(bytes)
        while b.count > 8, let last = b.last, (last == 0 && b[b.count - 2] & 0x80 == 0) || (last == 0xFF && b[b.count - 2] & 0x80 != 0) {
            b.removeLast()
        }
        if b.count <= 8 { return b.withUnsafeBytes { longValue($0) } }
        return .bigInt(PickleBigInt(bytes: b))
    }

    /// The longest integer text CPython converts (`sys.int_info.default_max_str_digits`).
    static let maxDecimalDigits = 4_300

    /// Decimal text to little-endian two's complement.
    static func twosComplement(decimal text: String) -> [UInt8] {
        let negative = text.hasPrefix("-")
        var mag: [UInt8] = [0]
        for ch in text where ch.isASCIIDigit {
            var carry = Int(ch.asciiValue ?? 48) - 48
            for i in mag.indices {
                let v = Int(mag[i]) * 10 + carry
                mag[i] = UInt8(v & 0xFF)
                carry = v >> 8
            }
            while carry > 0 { mag.append(UInt8(carry & 0xFF)); carry >>= 8 }
        }
        mag.append(0)  // room for the sign bit
        if negative {
            var carry = 1
            for i in mag.indices {
                let v = Int(~mag[i]) + carry
                mag[i] = UInt8(v & 0xFF)
                carry = v >> 8
            }
        }
        return mag
    }

    /// Protocol 0 STRING: a Python repr in single or double quotes, with backslash escapes.
    private func quotedString(_ raw: UnsafeRawBufferPointer) throws -> [UInt8] {
        guard raw.count >= 2, let q = raw.first, q == raw.last, q == 0x27 || q == 0x22 else {
            throw error(.malformedOperand("STRING operand is not quoted"))
        }
        let body = Array(raw[1..<(raw.count - 1)])
        var out: [UInt8] = []
        var i = 0
        while i < body.count {
            let c = body[i]
            i += 1
            guard c == 0x5C, i < body.count else { out.append(c); continue }
            let e = body[i]
            i += 1
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "x"):
                guard i + 2 <= body.count, let v = UInt8(String(decoding: body[i..<(i + 2)], as: UTF8.self), radix: 16) else {
                    throw error(.malformedOperand("bad \\x escape in STRING"))
                }
                out.append(v)
                i += 2
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var v = Int(e - 48)
                var k = 0
                while k < 2, i < body.count, (48...55).contains(body[i]) { v = v * 8 + Int(body[i] - 48); i += 1; k += 1 }
                out.append(UInt8(v & 0xFF))
            default: out.append(e)  // \\ \' \" and unknown escapes keep the character
            }
        }
        return out
    }

    /// Protocol 0 UNICODE: raw-unicode-escape (`\uXXXX`, `\UXXXXXXXX`, other bytes are Latin-1).
    private func rawUnicodeEscape(_ raw: UnsafeRawBufferPointer) throws -> String {
        var scalars = String.UnicodeScalarView()
        var i = 0
        let b = Array(raw)
        while i < b.count {
            if b[i] == 0x5C, i + 1 < b.count, b[i + 1] == UInt8(ascii: "u") || b[i + 1] == UInt8(ascii: "U") {
                let n = b[i + 1] == UInt8(ascii: "u") ? 4 : 8
                guard i + 2 + n <= b.count, let v = UInt32(String(decoding: b[(i + 2)..<(i + 2 + n)], as: UTF8.self), radix: 16),
                      let s = Unicode.Scalar(v) else {
                    throw error(.invalidUTF8)
                }
                scalars.append(s)
                i += 2 + n
            } else {
                scalars.append(Unicode.Scalar(b[i]))
                i += 1
            }
        }
        return String(scalars)
    }
}

extension Character {
    var isASCIIDigit: Bool { asciiValue.map { $0 >= 48 && $0 <= 57 } ?? false }
}
