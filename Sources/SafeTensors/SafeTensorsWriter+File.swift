#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TorchportCore


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

    /// Writes `path.partial-XXXXXXXXXXXXXXXX` in the same folder, fsyncs it, renames it over
    /// `path` and fsyncs the folder (the one atomic-write implementation, shared with `convert`): readers
    /// see the old file or the complete new one, never a partial one. The staging file is removed
    /// on any error.
    public static func writeAtomically(_ entries: [Entry], metadata: [String: String]? = nil,
                                       order: Order = .safetensors, to path: String) throws(SafeTensorsError) {
        let plan = try layout(entries, metadata: metadata, order: order)
        let file: StagingFile
        do { file = try StagingFile.create(for: path) } catch { throw SafeTensorsError(.io(error.reason), file: path) }
        do throws(SafeTensorsError) {
            let fd: Int32
            do { fd = try file.openForWriting() } catch { throw SafeTensorsError(.io(error.reason), file: file.path) }
            defer { close(fd) }
            try writeAll(plan, fd: fd, path: file.path)
            do {
                try file.sync()
                try file.place(replace: true, durable: true)
            } catch {
                throw SafeTensorsError(.io(error.reason), file: error.location.file)
            }
        } catch {
            file.discard()
            throw error
        }
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
        do {
            try StagingFile.writeFully(fd, buffer, path: path)
            return nil
        } catch {
            return SafeTensorsError(.io(error.reason), file: path)
        }
    }

    private static func ioError(_ what: String, _ path: String) -> SafeTensorsError {
        SafeTensorsError(.io("\(what): \(String(cString: strerror(errno)))"), file: path)
    }
}
