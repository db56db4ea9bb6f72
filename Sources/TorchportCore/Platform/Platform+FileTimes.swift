#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Platform: a file's modification and status-change times from `stat`, in nanoseconds.
// glibc names the fields `st_mtim`/`st_ctim`, Darwin `st_mtimespec`/`st_ctimespec`.
// The Darwin branch is compiled on Apple platforms only: untested here.

extension stat {
    /// Last modification of the file's data, nanoseconds since the epoch.
    package var modificationNanoseconds: Int64 {
        #if os(Linux)
        Self.nanoseconds(st_mtim)
        #else
        Self.nanoseconds(st_mtimespec)
        #endif
    }

    /// Last change of the file's status (data or metadata), nanoseconds since the epoch.
    package var statusChangeNanoseconds: Int64 {
        #if os(Linux)
        Self.nanoseconds(st_ctim)
        #else
        Self.nanoseconds(st_ctimespec)
        #endif
    }

    private static func nanoseconds(_ t: timespec) -> Int64 { Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec) }
}
