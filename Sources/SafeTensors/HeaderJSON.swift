import TorchportCore
/// A JSON value of the header, with the file offset of each object member for error context.
/// Numbers keep their form, so a shape of `1.0` or `-1` can be refused rather than coerced.
package indirect enum JSONValue {
    case object([JSONMember])
    case array([JSONValue])
    case string(String)
    case number(JSONNumber)
    case bool(Bool)
    case null

    /// What the value is, for error messages ("an array", "a string").
    var kindName: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }
}

package struct JSONMember {
    package let key: String
    package let value: JSONValue
    /// Offset of the key's opening quote, in the file.
    package let offset: Int
}

package struct JSONNumber {
    let negative: Bool
    /// No fraction and no exponent.
    let isInteger: Bool
    /// The magnitude when `isInteger` and it fits in `Int`.
    let magnitude: Int?

    /// The value as a non-negative `Int`, or why not.
    package var nonNegativeInteger: Result<Int, NumberProblem> {
        if !isInteger { return .failure(.notInteger) }
        if negative { return .failure(.negative) }
        guard let magnitude else { return .failure(.tooLarge) }
        return .success(magnitude)
    }

    package enum NumberProblem: Error { case notInteger, negative, tooLarge }
}

/// A strict parser for the header: RFC 8259 JSON, plus what JSONSerialization does not do —
/// it refuses duplicate keys, lone surrogates and deep nesting, and never converts numbers.
/// The bytes must already be valid UTF-8 (see ``firstInvalidUTF8(_:)``).
package struct HeaderJSONParser {
    private let bytes: UnsafeRawBufferPointer
    private let base: Int
    private let maxDepth: Int
    private var i = 0

    /// `base` is the file offset of `bytes[0]`, used in errors.
    package init(bytes: UnsafeRawBufferPointer, base: Int, maxDepth: Int = SafeTensorsFormat.maxJSONDepth) {
        self.bytes = bytes
        self.base = base
        self.maxDepth = maxDepth
    }

    /// Parses one value followed only by JSON whitespace.
    package mutating func parseDocument() throws(SafeTensorsError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if i < bytes.count {
            throw fail("unexpected byte 0x\(Hex.byte(bytes[i])) after the top-level value (only spaces may pad the header)")
        }
        return value
    }

    // MARK: - Values

    private mutating func parseValue(depth: Int) throws(SafeTensorsError) -> JSONValue {
        guard i < bytes.count else { throw fail("unexpected end of header, expected a value") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case let b: throw fail("unexpected byte 0x\(Hex.byte(b)), expected a value")
        }
    }

    private mutating func parseObject(depth: Int) throws(SafeTensorsError) -> JSONValue {
        guard depth <= maxDepth else {
            throw SafeTensorsError(.jsonTooDeep(limit: maxDepth), offset: base + i)
        }
        i += 1  // {
        var members: [JSONMember] = []
        var seen: Set<String> = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyOffset = base + i
            let key = try parseString()
            // Set<String> compares canonically equivalent strings as equal: "é" precomposed and
            // decomposed would otherwise be two keys that every Swift dictionary conflates.
            guard seen.insert(key).inserted else {
                throw SafeTensorsError(.duplicateKey(key), key: key, offset: keyOffset)
            }
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after an object key")
            skipWhitespace()
            let value = try parseValue(depth: depth)
            members.append(JSONMember(key: key, value: value, offset: keyOffset))
            skipWhitespace()
            guard i < bytes.count else { throw fail("unexpected end of header inside an object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("expected ',' or '}' in an object")
        }
    }

    private mutating func parseArray(depth: Int) throws(SafeTensorsError) -> JSONValue {
        guard depth <= maxDepth else {
            throw SafeTensorsError(.jsonTooDeep(limit: maxDepth), offset: base + i)
        }
        i += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard i < bytes.count else { throw fail("unexpected end of header inside an array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(elements) }
            throw fail("expected ',' or ']' in an array")
        }
    }

    // MARK: - Strings

    private mutating func parseString() throws(SafeTensorsError) -> String {
        let start = i
        i += 1  // "
        var runStart = i
        var decoded: [UInt8] = []
        var hadEscape = false
        while true {
            guard i < bytes.count else {
                i = start
                throw fail("unterminated string")
            }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                let run = UnsafeRawBufferPointer(rebasing: bytes[runStart..<i])
                i += 1
                if !hadEscape { return String(decoding: run, as: UTF8.self) }
                decoded.append(contentsOf: run)
                return String(decoding: decoded, as: UTF8.self)
            }
            if b < 0x20 { throw fail("control character 0x\(Hex.byte(b)) inside a string (must be escaped)") }
            if b != UInt8(ascii: "\\") { i += 1; continue }
            hadEscape = true
            decoded.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<i]))
            i += 1
            guard i < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): decoded.append(0x22)
            case UInt8(ascii: "\\"): decoded.append(0x5C)
            case UInt8(ascii: "/"): decoded.append(0x2F)
            case UInt8(ascii: "b"): decoded.append(0x08)
            case UInt8(ascii: "f"): decoded.append(0x0C)
            case UInt8(ascii: "n"): decoded.append(0x0A)
            case UInt8(ascii: "r"): decoded.append(0x0D)
            case UInt8(ascii: "t"): decoded.append(0x09)
            case UInt8(ascii: "u"):
                let scalar = try parseUnicodeEscape()
                decoded.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                i -= 2
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
            runStart = i
        }
    }

    /// After `\u`: four hex digits, and for a high surrogate the `\uXXXX` low surrogate that must follow.
    private mutating func parseUnicodeEscape() throws(SafeTensorsError) -> Unicode.Scalar {
        let escapeStart = i - 2
        let first = try hex4()
        switch first {
        case 0xD800...0xDBFF:
            guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                i = escapeStart
                throw fail("lone high surrogate \\u\(String(first, radix: 16)) (no low surrogate follows)")
            }
            i += 2
            let second = try hex4()
            guard (0xDC00...0xDFFF).contains(second) else {
                i = escapeStart
                throw fail("high surrogate \\u\(String(first, radix: 16)) followed by \\u\(String(second, radix: 16)), not a low surrogate")
            }
            let value = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            guard let scalar = Unicode.Scalar(value) else { throw fail("invalid surrogate pair") }
            return scalar
        case 0xDC00...0xDFFF:
            i = escapeStart
            throw fail("lone low surrogate \\u\(String(first, radix: 16))")
        default:
            guard let scalar = Unicode.Scalar(first) else { throw fail("invalid \\u escape") }
            return scalar
        }
    }

    private mutating func hex4() throws(SafeTensorsError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[i]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    // MARK: - Numbers and literals

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; integers keep their exact value.
    private mutating func parseNumber() throws(SafeTensorsError) -> JSONNumber {
        var negative = false
        if bytes[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard i < bytes.count, isDigit(bytes[i]) else { throw fail("expected a digit") }
        var magnitude: Int? = 0
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < bytes.count, isDigit(bytes[i]) { throw fail("leading zero in a number") }
        } else {
            while i < bytes.count, isDigit(bytes[i]) {
                if let m = magnitude {
                    let (p, o1) = m.multipliedReportingOverflow(by: 10)
                    let (s, o2) = p.addingReportingOverflow(Int(bytes[i] - UInt8(ascii: "0")))
                    magnitude = (o1 || o2) ? nil : s
                }
                i += 1
            }
        }
        var isInteger = true
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            guard i < bytes.count, isDigit(bytes[i]) else { throw fail("expected a digit after '.'") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, isDigit(bytes[i]) else { throw fail("expected a digit in the exponent") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        return JSONNumber(negative: negative, isInteger: isInteger, magnitude: isInteger ? magnitude : nil)
    }

    private mutating func literal(_ word: StaticString) throws(SafeTensorsError) {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw fail("unexpected end of header, expected '\(word)'") }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] {
            throw fail("invalid literal, expected '\(word)'")
        }
        i += n
    }

    // MARK: - Helpers

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(SafeTensorsError) {
        guard i < bytes.count, bytes[i] == byte else { throw fail("expected \(what)") }
        i += 1
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    private func fail(_ reason: String) -> SafeTensorsError {
        SafeTensorsError(.invalidJSON(reason), offset: base + i)
    }
}

/// Index of the first byte that breaks UTF-8 (overlong forms, surrogates and values past
/// U+10FFFF included), or nil when `bytes` is valid.
package func firstInvalidUTF8(_ bytes: UnsafeRawBufferPointer) -> Int? {
    var i = 0
    let n = bytes.count
    while i < n {
        let b0 = bytes[i]
        if b0 < 0x80 { i += 1; continue }
        let length: Int
        var lower: UInt8 = 0x80
        var upper: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upper = 0x9F
        case 0xF0: length = 4; lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upper = 0x8F
        default: return i
        }
        guard i + length <= n else { return i }
        let b1 = bytes[i + 1]
        guard b1 >= lower, b1 <= upper else { return i }
        for k in 2..<length where bytes[i + k] & 0xC0 != 0x80 { return i }
        i += length
    }
    return nil
}
