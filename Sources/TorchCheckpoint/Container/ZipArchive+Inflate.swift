import CZip
import Foundation
import TorchportCore

// The one file that touches libzip: torch writes entries stored, but archives re-packed by other
// tools (zip -9, cloud storage pipelines) are deflated. libzip inflates them and checks their CRC;
// the declared size is checked against `ReaderLimits.maxInflatedEntryBytes`, and the running total
// against `maxInflatedTotalBytes`, before anything is allocated, and the output is cut at the
// declared size, so a bomb cannot grow memory. libzip parses the central directory once per
// archive (not once per entry: 4,000 deflated entries made that quadratic).

/// libzip's handle on one archive, and the inflate budget spent on it. One entry is inflated at
/// a time (a libzip archive is not safe to read from two threads).
final class Inflater: @unchecked Sendable {
    private let lock = NSLock()
    private var archive: OpaquePointer?
    private var inflated = 0

    deinit { if let archive { zip_discard(archive) } }

    /// Charges `count` bytes to the budget (`overBudget` past `limit`), opens the archive over
    /// `bytes` on first use, and runs `body` with it.
    func withArchive<R>(over bytes: UnsafeRawBufferPointer, charging count: Int, limit: Int,
                        overBudget: () -> CheckpointError, fail: (String) -> CheckpointError,
                        _ body: (OpaquePointer) throws -> R) throws -> R {
        lock.lock()
        defer { lock.unlock() }
        let (total, overflow) = inflated.addingReportingOverflow(count)
        guard !overflow, total <= limit else { throw overBudget() }
        if archive == nil {
            var error = zip_error_t()
            zip_error_init(&error)
            defer { zip_error_fini(&error) }
            guard let source = zip_source_buffer_create(bytes.baseAddress, zip_uint64_t(bytes.count), 0, &error) else {
                throw fail(String(cString: zip_error_strerror(&error)))
            }
            guard let opened = zip_open_from_source(source, ZIP_RDONLY, &error) else {
                zip_source_free(source)
                throw fail(String(cString: zip_error_strerror(&error)))
            }
            archive = opened
        }
        inflated = total
        return try body(archive!)
    }
}

extension ZipArchive {
    func inflate(_ entry: Entry, limits: ReaderLimits) throws -> ByteSlice {
        func fail(_ why: String) -> CheckpointError {
            CheckpointError(.zipInflate(why), file: fileName, entry: entry.name, offset: entry.localHeaderOffset)
        }
        guard entry.uncompressedSize <= limits.maxInflatedEntryBytes else {
            throw CheckpointError(.limitExceeded(.entrySize, limit: limits.maxInflatedEntryBytes), file: fileName,
                                  entry: entry.name, offset: entry.localHeaderOffset)
        }
        // Deflate cannot expand data by more than 1032:1; a larger declared size is a lie, refused
        // before a buffer of that size is allocated.
        let (most, overflow) = entry.compressedSize.multipliedReportingOverflow(by: 1032)
        guard overflow || entry.uncompressedSize <= most + 64 else {
            throw fail("declares \(entry.uncompressedSize) bytes from \(entry.compressedSize) compressed, beyond deflate's maximum ratio")
        }
        let overBudget = {
            CheckpointError(.limitExceeded(.inflatedTotal, limit: limits.maxInflatedTotalBytes), file: self.fileName,
                            entry: entry.name, offset: entry.localHeaderOffset)
        }
        return try inflater.withArchive(over: file.bytes, charging: entry.uncompressedSize, limit: limits.maxInflatedTotalBytes,
                                        overBudget: overBudget, fail: fail) { archive in
            let index = zip_name_locate(archive, entry.name, zip_flags_t(ZIP_FL_ENC_RAW))
            guard index >= 0, let handle = zip_fopen_index(archive, zip_uint64_t(index), 0) else {
                throw fail(String(cString: zip_strerror(archive)))
            }
            defer { zip_fclose(handle) }
            return ByteSlice(owner: try FileBytes.filled(count: entry.uncompressedSize) { out in
                var done = 0
                while done < out.count {
                    guard let base = out.baseAddress else { return }
                    let n = zip_fread(handle, base + done, zip_uint64_t(out.count - done))
                    if n < 0 { throw fail(String(cString: zip_file_strerror(handle))) }
                    if n == 0 { throw fail("inflates to \(done) bytes, \(out.count) declared") }
                    done += Int(n)
                }
                var extra: UInt8 = 0
                let more = zip_fread(handle, &extra, 1)
                if more < 0 { throw fail(String(cString: zip_file_strerror(handle))) }
                if more > 0 { throw fail("inflates past its declared \(out.count) bytes") }
            })
        }
    }
}
