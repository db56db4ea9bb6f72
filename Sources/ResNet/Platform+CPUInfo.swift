import Foundation
import TorchportCore

// Platform: the CPU's feature flags as the kernel lists them, for choosing OpenBLAS's kernels.
// Linux: /proc/cpuinfo. Darwin has no such file and no OpenBLAS to help (Accelerate is used
// there), so the answer is nil. The Darwin branch is compiled on Apple platforms only: untested.

extension BLASKernels {
    /// The text of `/proc/cpuinfo` on Linux; nil elsewhere.
    package static func linuxCPUInfo() -> String? {
        #if os(Linux)
        try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        #else
        nil
        #endif
    }
}
