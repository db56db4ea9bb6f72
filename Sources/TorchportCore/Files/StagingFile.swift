#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A file that cannot be written, synced or put in place.
public struct FileWriteError: TorchportError, Equatable {
    /// What failed.
    public enum Kind: Sendable, Equatable {
        /// The file (or the staging file next to it) cannot be created (the system's message).
        case cannotCreate(String)
        /// Writing failed (the system's message).
        case cannotWrite(String)
        /// `fsync` failed (the system's message).
        case cannotSync(String)
        /// The finished file cannot be given its name (the system's message).
        case cannotRename(String)
        /// The destination exists and replacing it was not asked for.
        case destinationExists
    }

    /// What failed.
    public let kind: Kind
    /// The file concerned.
    public let location: ErrorLocation

    /// An error of `kind` about `file`.
    public init(_ kind: Kind, file: String) {
        self.kind = kind
        location = ErrorLocation(file: file)
    }

    /// What failed, in one sentence.
    public var reason: String {
        switch kind {
        case .cannotCreate(let m): "cannot create: \(m)"
        case .cannotWrite(let m): "cannot write: \(m)"
        case .cannotSync(let m): "cannot sync: \(m)"
        case .cannotRename(let m): "cannot rename: \(m)"
        case .destinationExists: "output exists (use --force to replace it)"
        }
    }
}

/// The one atomic-write implementation: a file written next to its destination
/// (`OUT.partial-XXXXXXXXXXXXXXXX`, created exclusively, so nothing else's file is reused) and
/// given the destination's name only once complete, so that readers see the old file or the
/// whole new one, never a part of it. The safetensors writer and `convert` both use it.
package struct StagingFile: Sendable {
    /// The staging file's path.
    package let path: String
    /// Where the finished file goes.
    package let destination: String

    private static func message() -> String { String(cString: strerror(errno)) }

    /// Creates an empty staging file next to `destination` (same folder: the rename stays on one
    /// file system).
    package static func create(for destination: String) throws(FileWriteError) -> StagingFile {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let hex = String(generator.next(), radix: 16)
            let path = "\(destination).partial-\(String(repeating: "0", count: 16 - hex.count))\(hex)"
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 {
                close(fd)
                return StagingFile(path: path, destination: destination)
            }
            guard errno == EEXIST else { break }
        }
        throw FileWriteError(.cannotCreate("a file next to it: \(message())"), file: destination)
    }

    /// Opens the staging file for writing.
    package func openForWriting() throws(FileWriteError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileWriteError(.cannotCreate(Self.message()), file: path) }
        return fd
    }

    /// Writes all of `buffer` at `offset` of `fd` (at the current position when nil).
    package static func writeFully(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: Int? = nil,
                                   path: String) throws(FileWriteError) {
        guard let base = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let size = min(buffer.count - done, 1 << 30)
            let n = offset.map { pwrite(fd, base + done, size, off_t($0 + done)) } ?? write(fd, base + done, size)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw FileWriteError(.cannotWrite(n < 0 ? message() : "no progress"), file: path) }
            done += n
        }
    }

    /// Flushes the staging file to disk.
    package func sync() throws(FileWriteError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0, fsync(fd) == 0 else {
            let m = Self.message()
            if fd >= 0 { close(fd) }
            throw FileWriteError(.cannotSync(m), file: path)
        }
        close(fd)
    }

    /// Gives the staging file the destination's name: replacing what is there with `replace`,
    /// else only where nothing is (a hard link fails on an existing name, so a file created in
    /// between is never overwritten). With `durable`, the folder is synced so the name survives
    /// a crash. The staging file is gone afterwards unless this throws.
    package func place(replace: Bool, durable: Bool) throws(FileWriteError) {
        if replace {
            guard rename(path, destination) == 0 else { throw FileWriteError(.cannotRename(Self.message()), file: destination) }
        } else if link(path, destination) == 0 {
            unlink(path)
        } else if errno == EEXIST {
            throw FileWriteError(.destinationExists, file: destination)
        } else {
            // A file system without hard links: check again, then rename.
            var st = stat()
            guard lstat(destination, &st) != 0, errno == ENOENT else { throw FileWriteError(.destinationExists, file: destination) }
            guard rename(path, destination) == 0 else { throw FileWriteError(.cannotRename(Self.message()), file: destination) }
        }
        if durable { Self.syncFolder(of: destination) }
    }

    /// Removes the staging file.
    package func discard() { unlink(path) }

    /// Best effort: makes a rename in the folder of `path` durable.
    private static func syncFolder(of path: String) {
        let folder = (path as NSString).deletingLastPathComponent
        let fd = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}
