#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Read-only bytes of a checkpoint: a memory map of a file, or an owned buffer (in-memory input,
/// inflated zip entries, byte-swapped data). Tensor views keep their `FileBytes` alive, so the
/// memory stays valid for as long as any tensor refers to it.
public final class FileBytes: @unchecked Sendable {
    /// The bytes, valid for as long as this object is alive.
    public let bytes: UnsafeRawBufferPointer
    /// Whether the bytes are a read-only map of a file (rather than memory of the process).
    public let isFileMap: Bool
    private let release: (UnsafeRawBufferPointer) -> Void

    private init(bytes: UnsafeRawBufferPointer, isFileMap: Bool = false, release: @escaping (UnsafeRawBufferPointer) -> Void) {
        self.bytes = bytes
        self.isFileMap = isFileMap
        self.release = release
    }

    /// For a file map: hands its resident pages back to the kernel (`MADV_DONTNEED`), so they no
    /// longer count in the process's memory; the bytes stay valid and are read from the file
    /// again when touched. Owned memory is left alone.
    public func releaseResidentPages() {
        guard isFileMap else { return }
        MemoryPages.release(bytes)
    }

    deinit { release(bytes) }

    /// Size in bytes.
    public var count: Int { bytes.count }

    /// Opens `path` for reading and checks that it is a regular file, without blocking on what
    /// is not one: a FIFO or a device is opened non-blocking (so `open` returns at once instead of
    /// waiting for a writer) and refused. The caller closes the descriptor.
    public static func openRegularFile(_ path: String) throws(FileAccessError) -> (fd: Int32, stat: stat) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw FileAccessError(.cannotOpen(String(cString: strerror(errno))), file: path)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw FileAccessError(.cannotStat(message), file: path)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            let kind = switch st.st_mode & S_IFMT {
            case S_IFIFO: "a FIFO (named pipe)"
            case S_IFDIR: "a directory"
            case S_IFCHR, S_IFBLK: "a device"
            case S_IFSOCK: "a socket"
            default: "not a regular file"
            }
            throw FileAccessError(.notARegularFile(kind), file: path)
        }
        // Reads from here on block as usual (a regular file never waits anyway).
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, st)
    }

    /// Maps `path` read-only. Nothing is read until touched; the file is never opened for writing.
    public static func map(path: String) throws(FileAccessError) -> FileBytes {
        let (fd, st) = try openRegularFile(path)
        defer { close(fd) }
        let size = Int(st.st_size)
        if size == 0 { return FileBytes.owned([]) }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw FileAccessError(.cannotMap(String(cString: strerror(errno))), file: path)
        }
        return FileBytes(bytes: UnsafeRawBufferPointer(start: base, count: size), isFileMap: true) { b in
            munmap(UnsafeMutableRawPointer(mutating: b.baseAddress), b.count)
        }
    }

    /// Owned copy of `data` (64-byte aligned).
    public static func owned<C: Collection>(_ data: C) -> FileBytes where C.Element == UInt8 {
        let n = data.count
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(n, 1), alignment: 64)
        _ = p.initializeMemory(as: UInt8.self, from: data)
        return FileBytes(bytes: UnsafeRawBufferPointer(rebasing: p[0..<n])) { b in
            UnsafeMutableRawPointer(mutating: b.baseAddress)?.deallocate()
        }
    }

    /// The bytes `range` of `parent`, without a copy; `parent` stays alive while this does. Nil
    /// when `range` is not inside `parent`.
    public static func view(of parent: FileBytes, range: Range<Int>) -> FileBytes? {
        guard range.lowerBound >= 0, range.upperBound <= parent.count else { return nil }
        return FileBytes(bytes: UnsafeRawBufferPointer(rebasing: parent.bytes[range]), isFileMap: parent.isFileMap) { _ in
            withExtendedLifetime(parent) {}
        }
    }

    /// Owned uninitialised buffer filled by `fill`.
    public static func filled(count: Int, _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows -> FileBytes {
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 64)
        do { try fill(UnsafeMutableRawBufferPointer(rebasing: p[0..<count])) } catch {
            p.deallocate()
            throw error
        }
        return FileBytes(bytes: UnsafeRawBufferPointer(rebasing: p[0..<count])) { b in
            UnsafeMutableRawPointer(mutating: b.baseAddress)?.deallocate()
        }
    }
}

/// A range of bytes inside a `FileBytes`, bounds checked at creation.
public struct ByteSlice: @unchecked Sendable {
    /// The buffer the bytes live in, kept alive by the slice.
    public let owner: FileBytes
    /// Byte offsets of the slice within `owner`.
    public let range: Range<Int>

    init(owner: FileBytes, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= owner.count)
        self.owner = owner
        self.range = range
    }

    /// The whole of `owner`.
    public init(owner: FileBytes) { self.init(owner: owner, range: 0..<owner.count) }

    /// Size in bytes.
    public var count: Int { range.count }
    /// The bytes; valid only while `owner` is alive (prefer `withUnsafeBytes`).
    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: owner.bytes[range]) }

    /// Calls `body` with the bytes, keeping their owner alive for the duration.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(buffer) }
    }

    /// A sub-slice, relative to this slice; `nil` when outside it.
    public func slice(_ offset: Int, _ length: Int) -> ByteSlice? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
        let start = range.lowerBound + offset
        return ByteSlice(owner: owner, range: start..<(start + length))
    }
}
