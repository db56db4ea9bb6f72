import TorchportCore
/// Little-endian reads at absolute offsets of a buffer; every read is bounds checked and throws
/// ``CheckpointError/Kind/truncated(needed:available:)`` instead of reading out of bounds.
struct ByteReader {
    let buffer: UnsafeRawBufferPointer

    init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    var count: Int { buffer.count }

    @inline(__always)
    func check(_ offset: Int, _ length: Int) throws {
        guard offset >= 0, length >= 0, offset <= buffer.count, length <= buffer.count - offset else {
            let (needed, overflow) = offset.addingReportingOverflow(length)
            throw CheckpointError(.truncated(needed: overflow ? Int.max : needed, available: buffer.count),
                                  offset: offset)
        }
    }

    func u8(_ offset: Int) throws -> UInt8 {
        try check(offset, 1)
        return buffer[offset]
    }

    func u16(_ offset: Int) throws -> UInt16 {
        try check(offset, 2)
        return UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    func u32(_ offset: Int) throws -> UInt32 {
        try check(offset, 4)
        return UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func u64(_ offset: Int) throws -> UInt64 {
        try check(offset, 8)
        return UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    func bytes(_ offset: Int, _ length: Int) throws -> UnsafeRawBufferPointer {
        try check(offset, length)
        return UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + length)])
    }
}

extension Int {
    /// Converts a file-supplied unsigned value, failing when it does not fit in `Int`.
    init?(exactlyFile value: UInt64) {
        guard value <= UInt64(Int.max) else { return nil }
        self = Int(value)
    }
}
