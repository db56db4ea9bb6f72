#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Platform: handing the resident pages of a read-only file map back to the kernel.
// Linux drops them at once (`MADV_DONTNEED`: touched again, they are read from the file again).
// Darwin takes `MADV_DONTNEED` as a hint only, so resident memory may not fall there; the bytes
// stay valid either way. The Darwin branch is compiled on Apple platforms only: untested here.

package enum MemoryPages {
    /// The size of a memory page.
    package static let size = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Releases the whole pages inside `bytes` (part of a read-only map of a file that is never
    /// written); the partial pages at either end are kept.
    package static func release(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let page = UInt(size)
        let start = UInt(bitPattern: base), end = start + UInt(bytes.count)
        let first = (start + page - 1) / page * page, last = end / page * page
        guard last > first, let p = UnsafeMutableRawPointer(bitPattern: first) else { return }
        _ = madvise(p, Int(last - first), MADV_DONTNEED)  // both systems have it; a hint on Darwin
    }
}
