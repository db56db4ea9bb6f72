#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TorchCheckpoint

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

extension SafeTensorsWriter {
    // MARK: - Writing files

    /// Writes the file at `path` directly (created or truncated), streaming each tensor's bytes.
    /// The caller handles temporary names; see `writeAtomically(_:metadata:order:to:)`.
    public static func write(_ entries: [Entry], metadata: [String: String]? = nil,
                             order: Order = .safetensors, to path: String) throws(SafeTensorsError) {
        let plan = try layout(entries, metadata: metadata, order: order)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw ioError("cannot create", path) }
        do {
            try writeAll(plan, fd: fd, path: path)
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw ioError("cannot close", path) }
    }

    /// Writes named tensor records to `path` directly; see the `[Entry]` overload.
    public static func write(_ tensors: [NamedTensor], metadata: [String: String]? = nil,
                             order: Order = .safetensors, to path: String) throws(SafeTensorsError) {
        try write(entries(tensors), metadata: metadata, order: order, to: path)
    }

    /// Writes `(name, dtype, shape, bytes)` tuples to `path` directly; see the `[Entry]` overload.
    public static func write(_ tensors: [(name: String, dtype: DType, shape: [Int], bytes: [UInt8])],
                             metadata: [String: String]? = nil,
                             order: Order = .safetensors, to path: String) throws(SafeTensorsError) {
        try write(entries(tensors), metadata: metadata, order: order, to: path)
    }

    /// Writes `path.tmp-XXXXXX` in the same folder, fsyncs it, renames it over `path` and fsyncs
    /// the folder: readers see the old file or the complete new one, never a partial one. The
    /// temporary file is removed on any error.
    public static func writeAtomically(_ entries: [Entry], metadata: [String: String]? = nil,
                                       order: Order = .safetensors, to path: String) throws(SafeTensorsError) {
        let plan = try layout(entries, metadata: metadata, order: order)
        var generator = SystemRandomNumberGenerator()
        var attempt = 0
        var temp = ""
        var fd: Int32 = -1
        while fd < 0 {
            let suffix = String(generator.next() & 0xFFFF_FFFF, radix: 16)
            temp = "\(path).tmp-\(suffix)"
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd < 0 {
                attempt += 1
                guard errno == EEXIST, attempt < 100 else { throw ioError("cannot create temporary file", temp) }
            }
        }
        do throws(SafeTensorsError) {
            try writeAll(plan, fd: fd, path: temp)
            guard fsync(fd) == 0 else { throw ioError("cannot sync", temp) }
            let closed = close(fd)
            fd = -1
            guard closed == 0 else { throw ioError("cannot close", temp) }
            guard rename(temp, path) == 0 else { throw ioError("cannot rename to \(path)", temp) }
        } catch {
            if fd >= 0 { close(fd) }
            unlink(temp)
            throw error
        }
        syncDirectory(of: path)
    }

    /// Writes named tensor records atomically; see the `[Entry]` overload.
    public static func writeAtomically(_ tensors: [NamedTensor], metadata: [String: String]? = nil,
                                       order: Order = .safetensors, to path: String) throws(SafeTensorsError) {
        try writeAtomically(entries(tensors), metadata: metadata, order: order, to: path)
    }

    // MARK: - Helpers

    private static func writeAll(_ plan: Layout, fd: Int32, path: String) throws(SafeTensorsError) {
        if let failure = plan.prefix.withUnsafeBytes({ writeFully(fd, $0, path) }) { throw failure }
        for e in plan.entries {
            if let failure = e.withBytes({ writeFully(fd, $0, path) }) { throw failure }
        }
    }

    /// Writes all of `buffer`; returns the error instead of throwing (the callers' closures are
    /// `rethrows`, which would erase the error's type).
    private static func writeFully(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, _ path: String) -> SafeTensorsError? {
        guard var p = buffer.baseAddress else { return nil }
        var left = buffer.count
        while left > 0 {
            let n = systemWrite(fd, p, min(left, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                return ioError("cannot write", path)
            }
            if n == 0 { return SafeTensorsError(.io("write made no progress"), file: path) }
            p += n
            left -= n
        }
        return nil
    }

    /// Best effort: makes the rename durable. Failure here does not undo a completed write.
    private static func syncDirectory(of path: String) {
        let folder: String
        if let slash = path.lastIndex(of: "/") {
            folder = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            folder = "."
        }
        let dfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { return }
        _ = fsync(dfd)
        close(dfd)
    }

    private static func ioError(_ what: String, _ path: String) -> SafeTensorsError {
        SafeTensorsError(.io("\(what): \(String(cString: strerror(errno)))"), file: path)
    }
}
