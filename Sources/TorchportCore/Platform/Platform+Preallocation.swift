#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Platform: allocating a file's blocks before it is written.
// Linux: `posix_fallocate` (where the file system cannot, glibc writes zeros). ext4 otherwise
// flushes a file with delayed allocation to disk when it is renamed over an existing one
// (`auto_da_alloc`), which made `convert --force` wait tens of milliseconds for the disk.
// Darwin: `fcntl(F_PREALLOCATE)`, contiguous if it can be, else anywhere. Compiled on Apple
// platforms only: untested here. A failure is ignored on both: the writes then allocate.

package enum FilePreallocation {
    /// Reserves `bytes` for the open file `fd` (best effort).
    package static func reserve(_ fd: Int32, bytes: Int) {
        guard bytes > 0 else { return }
        #if os(Linux)
        _ = posix_fallocate(fd, 0, off_t(bytes))
        #elseif canImport(Darwin)
        var store = fstore_t(fst_flags: UInt32(F_ALLOCATECONTIG), fst_posmode: F_PEOFPOSMODE, fst_offset: 0,
                             fst_length: off_t(bytes), fst_bytesalloc: 0)
        if fcntl(fd, F_PREALLOCATE, &store) == -1 {
            store.fst_flags = UInt32(F_ALLOCATEALL)
            _ = fcntl(fd, F_PREALLOCATE, &store)
        }
        #endif
    }
}
