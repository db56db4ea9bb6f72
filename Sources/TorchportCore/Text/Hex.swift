/// Lower-case hexadecimal text of bytes: the one encoder for digests, byte dumps and messages.
package enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Two lower-case digits per byte, no separator (`"00ff"`).
    package static func string(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// One byte as two lower-case digits (`"0a"`).
    package static func byte(_ b: UInt8) -> String { string(CollectionOfOne(b)) }
}
