#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TorchportCore

// Platform: this process's resident memory, for `torchport bench`.
// Linux: /proc/self/status (VmRSS, VmHWM), the peak reset through /proc/self/clear_refs.
// Darwin: the peak since the process started (`getrusage`, in bytes there), which cannot be
// reset, so `resetPeak` answers nil and the bench reports no peak. Compiled on Apple platforms
// only: untested here.

enum Memory {
    /// Resets the peak to the current resident size and returns that size; nil where the peak
    /// cannot be reset.
    static func resetPeak() -> Int? {
        #if os(Linux)
        guard let f = fopen("/proc/self/clear_refs", "w") else { return nil }
        fputs("5", f)
        fclose(f)
        return field("VmRSS")
        #else
        return nil
        #endif
    }

    /// The peak resident size since the last reset (Darwin: since the process started).
    static func peak() -> Int? {
        #if os(Linux)
        return field("VmHWM")
        #else
        var usage = rusage()
        guard getrusage(RUSAGE_SELF, &usage) == 0 else { return nil }
        return Int(usage.ru_maxrss)
        #endif
    }

    #if os(Linux)
    private static func field(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
              let kb = Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "") else { return nil }
        return kb * 1024
    }
    #endif
}
