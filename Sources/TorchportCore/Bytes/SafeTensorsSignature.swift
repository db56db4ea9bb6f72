/// The one rule, shared by the reader's messages, the scanner and the loaders, for "these bytes
/// start a safetensors file": an 8-byte little-endian header length N with 2 <= N <= size - 8,
/// then `{` (the header's JSON object).
package enum SafeTensorsSignature {
    /// The declared header length when it fits a file of `fileSize` bytes (`head`: its first 8+ bytes).
    package static func headerLength(_ head: some Collection<UInt8>, fileSize: Int) -> Int? {
        guard head.count >= 8, fileSize >= 10 else { return nil }
        let n = head.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return n >= 2 && n <= UInt64(fileSize - 8) ? Int(n) : nil
    }

    /// Whether `head` (the file's first 9+ bytes) starts a safetensors file of `fileSize` bytes.
    package static func matches(_ head: some Collection<UInt8>, fileSize: Int) -> Bool {
        headerLength(head, fileSize: fileSize) != nil && head.dropFirst(8).first == UInt8(ascii: "{")
    }
}
