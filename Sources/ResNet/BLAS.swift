#if canImport(Accelerate)
import Accelerate
#else
import COpenBLAS
#endif
import Foundation
import TorchportCore

// The one file that touches a BLAS: OpenBLAS on Linux (COpenBLAS), Accelerate on Apple platforms.
// The Accelerate branches are compiled and run on Apple platforms only, which this project's CI
// does not have: they are untested (see the README's platform table).

enum BLAS {
    /// C[m x n] = alpha * A[m x k] * B[k x n] + beta * C, row-major; `transB` multiplies by Bᵀ
    /// (B then stored n x k).
    static func sgemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float = 0, transB: Bool = false) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Threads the BLAS uses for each call (process-wide). Accelerate has no such setting before
    /// macOS 15 (`BLASSetThreading`); there the getter says 1 and the setter does nothing.
    static var threads: Int {
        get {
            #if canImport(Accelerate)
            1
            #else
            Int(openblas_get_num_threads())
            #endif
        }
        set {
            #if !canImport(Accelerate)
            openblas_set_num_threads(Int32(max(1, newValue)))
            #endif
        }
    }

    /// One thread for every BLAS call, and OpenBLAS's worker threads stopped: Torchport splits
    /// the work itself and calls single-threaded BLAS in each piece, so the pool OpenBLAS starts
    /// when it loads (whose idle workers spin for some milliseconds, taking cores from the
    /// process's own threads) is never used. Accelerate: nothing to do.
    static func useSingleThread() {
        #if !canImport(Accelerate)
        openblas_set_num_threads(1)
        _ = blas_thread_shutdown_()
        #endif
    }

    static var coreName: String {
        #if canImport(Accelerate)
        "Accelerate"
        #else
        openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        #endif
    }
}

/// OpenBLAS picks its kernels once, when the library loads, from the CPU model. 0.3.21 (Debian 12)
/// does not know recent Xeons (family 6, model 207 here) and falls back to its SSE3 "Prescott"
/// kernels, at about a quarter of the speed. When that happened on a CPU with AVX-512 (or AVX2),
/// this returns the `OPENBLAS_CORETYPE` that selects the right kernels; the process must then be
/// restarted with it set (the CLI does this once on Linux, see `torchport`'s entry point).
package enum BLASKernels {
    /// The name of the kernel set the BLAS selected when it loaded (OpenBLAS: `Prescott`,
    /// `Haswell`, `SkylakeX`, …; `Accelerate` on Apple platforms).
    package static var coreName: String { BLAS.coreName }

    /// Stops the BLAS's own worker threads (Torchport never uses them: it calls single-threaded
    /// BLAS inside its own pieces of work). The CLI calls this first, so that no idle OpenBLAS
    /// worker spins beside the work of a command.
    package static func releaseThreads() { BLAS.useSingleThread() }

    /// The `OPENBLAS_CORETYPE` to restart with (`SkylakeX` or `Haswell`), or nil when OpenBLAS did not
    /// fall back to `Prescott` or the CPU flags in `cpuinfo` (by default `/proc/cpuinfo`, read on
    /// Linux only) offer nothing better. Always nil with Accelerate.
    package static func betterCoreType(cpuinfo: String? = BLASKernels.linuxCPUInfo()) -> String? {
        guard coreName.lowercased() == "prescott", let info = cpuinfo,
              let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }
}
