import TorchportCore
// MARK: - Integers as CPython's unpickler reads them

/// An integer of any size, as sign and little-endian magnitude bytes (no trailing zero bytes).
/// The scanner needs only to compare such values (is this the legacy magic number?), so there
/// is no arithmetic beyond building one from digits.
struct PythonInt: Equatable, Sendable {
    var negative: Bool
    var magnitude: [UInt8]

    init(negative: Bool = false, magnitude: [UInt8]) {
        var m = magnitude
        while m.last == 0 { m.removeLast() }
        self.negative = negative && !m.isEmpty
        self.magnitude = m
    }

    init(_ value: Int) {
        var m: [UInt8] = []
        var v = value.magnitude
        while v > 0 { m.append(UInt8(v & 0xFF)); v >>= 8 }
        self.init(negative: value < 0, magnitude: m)
    }

    /// The value as an `Int`, when it fits.
    var intValue: Int? {
        guard magnitude.count <= 8 else { return nil }
        let m = magnitude.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard m <= UInt64(Int.max) else { return nil }
        return negative ? -Int(m) : Int(m)
    }

    /// torch's legacy magic number, 0x1950a86a20f9469cfc6c.
    static let legacyMagic = PythonInt(magnitude: Checkpoint.legacyMagic)

    /// Longest text operand parsed; longer ones are left undetermined (no real integer in a
    /// checkpoint's first pickle is this long, and the parse is quadratic in the digits).
    static let maxTextDigits = 512

    /// Two's-complement little-endian bytes (LONG1, LONG4).
    init(twosComplement bytes: UnsafeRawBufferPointer) {
        guard let top = bytes.last, top & 0x80 != 0 else {
            self.init(magnitude: Array(bytes))
            return
        }
        // Negate: invert and add one.
        var m = bytes.map { ~$0 }
        var carry = 1
        for i in m.indices where carry != 0 {
            let s = Int(m[i]) + carry
            m[i] = UInt8(s & 0xFF)
            carry = s >> 8
        }
        self.init(negative: true, magnitude: m)
    }

    /// The INT opcode's text, as CPython's `_pickle` reads it: `00` and `01` are booleans (nil
    /// here); C `strtol(s, 0)` when it takes the whole line and fits a long, else Python's
    /// `int(s, 0)`. Everything after a NUL byte is ignored (both read a C string).
    static func fromINT(_ line: UnsafeRawBufferPointer) -> PythonInt? {
        let text = Array(line.prefix { $0 != 0 })
        if text == Array("00".utf8) || text == Array("01".utf8) { return nil }
        if let v = strtolWhole(text) { return PythonInt(v) }
        return fromLiteral(text)
    }

    /// The LONG opcode's text: one trailing `L` dropped, then Python's `int(s, 0)`.
    static func fromLONG(_ line: UnsafeRawBufferPointer) -> PythonInt? {
        var text = Array(line.prefix { $0 != 0 })
        if text.last == UInt8(ascii: "L") { text.removeLast() }
        return fromLiteral(text)
    }

    /// Python's `bytes.isspace` for one byte.
    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }

    /// C `strtol(s, &end, 0)` when it consumes everything (but the line's end) and does not
    /// overflow: leading space, a sign, `0x` (hex), a leading `0` (octal), else decimal.
    private static func strtolWhole(_ s: [UInt8]) -> Int? {
        var i = 0
        while i < s.count, isSpace(s[i]) { i += 1 }
        var negative = false
        if i < s.count, s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") { negative = s[i] == UInt8(ascii: "-"); i += 1 }
        var base = 10
        if i + 1 < s.count, s[i] == UInt8(ascii: "0"), s[i + 1] | 0x20 == UInt8(ascii: "x"),
           i + 2 < s.count, digit(s[i + 2], base: 16) != nil {
            base = 16; i += 2
        } else if i < s.count, s[i] == UInt8(ascii: "0") {
            base = 8
        }
        let start = i
        var value = 0
        while i < s.count, let d = digit(s[i], base: base) {
            let (m, o1) = value.multipliedReportingOverflow(by: base)
            let (a, o2) = m.addingReportingOverflow(d)
            if o1 || o2 { return nil }  // ERANGE: CPython falls back to int(s, 0)
            value = a
            i += 1
        }
        guard i > start, i == s.count else { return nil }
        return negative ? -value : value
    }

    private static func digit(_ c: UInt8, base: Int) -> Int? {
        let d: Int
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): d = Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): d = Int(c - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): d = Int(c - UInt8(ascii: "A")) + 10
        default: return nil
        }
        return d < base ? d : nil
    }

    /// Python's `int(s, 0)`, or `int(s, base)` with a fixed `base`: surrounding whitespace, a
    /// sign, a `0x`/`0o`/`0b` prefix (any case; with a fixed base only its own), single
    /// underscores between digits (and right after a prefix); with base 0, decimal without
    /// leading zeros (but for zero itself). nil when Python would raise, or past `maxTextDigits`.
    static func fromLiteral(_ text: [UInt8], base fixed: Int? = nil) -> PythonInt? {
        var s = text[...]
        while let f = s.first, isSpace(f) { s = s.dropFirst() }
        while let l = s.last, isSpace(l) { s = s.dropLast() }
        guard s.count <= maxTextDigits else { return nil }
        var negative = false
        if let f = s.first, f == UInt8(ascii: "+") || f == UInt8(ascii: "-") { negative = f == UInt8(ascii: "-"); s = s.dropFirst() }
        var base = fixed ?? 10
        if s.count >= 2, s.first == UInt8(ascii: "0") {
            let prefixed: Int? = switch s[s.startIndex + 1] | 0x20 {
            case UInt8(ascii: "x"): 16
            case UInt8(ascii: "o"): 8
            case UInt8(ascii: "b"): 2
            default: nil
            }
            if let prefixed, fixed == nil || fixed == prefixed {
                base = prefixed
                s = s.dropFirst(2)
                if s.first == UInt8(ascii: "_") { s = s.dropFirst() }
            }
        }
        var digits: [Int] = []
        var previousUnderscore = false
        for c in s {
            if c == UInt8(ascii: "_") {
                guard !digits.isEmpty, !previousUnderscore else { return nil }
                previousUnderscore = true
                continue
            }
            guard let d = digit(c, base: base) else { return nil }
            digits.append(d)
            previousUnderscore = false
        }
        guard !digits.isEmpty, !previousUnderscore else { return nil }
        if fixed == nil, base == 10, digits.first == 0, digits.contains(where: { $0 != 0 }) { return nil }  // "0777"
        // magnitude = Σ digit · base^k, in base-256 limbs.
        var limbs: [UInt8] = []
        for d in digits {
            var carry = d
            for i in limbs.indices {
                let v = Int(limbs[i]) * base + carry
                limbs[i] = UInt8(v & 0xFF)
                carry = v >> 8
            }
            while carry > 0 { limbs.append(UInt8(carry & 0xFF)); carry >>= 8 }
        }
        return PythonInt(negative: negative, magnitude: limbs)
    }
}
