#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
import TorchportCore
#endif

// Platform: restarting this process with one more environment variable (for libraries that read
// it only when they load, such as OpenBLAS's `OPENBLAS_CORETYPE`). Linux only: it re-executes
// `/proc/self/exe`. Elsewhere nothing happens (Apple platforms use Accelerate, which needs no
// restart), and the caller carries on.

/// Sets `name` to `value` and re-executes this program with the same arguments; returns only
/// when that is not possible here.
func restartSelf(setting name: String, to value: String) {
    #if os(Linux)
    setenv(name, value, 1)
    var argv: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
    argv.append(nil)
    execv("/proc/self/exe", &argv)
    #endif
}
