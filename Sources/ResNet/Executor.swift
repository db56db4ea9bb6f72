import CKernels
import Foundation

/// The threads that run forward passes: a pool of persistent worker threads of its own (the calling
/// thread plus `threads - 1` workers, started when a forward pass first needs them), which every
/// layer of a model splits its work over. Torchport splits each layer itself (by tiles, output
/// blocks, images, output columns or channels) and OpenBLAS runs single-threaded inside each
/// piece, so no core idles in a serial stage or spins in OpenBLAS's own pool.
///
/// Executors are independent: two models on two executors, or two forward passes on two
/// executors, run at the same time without waiting for each other. Forward passes that share one
/// executor take turns at each layer (the pool runs one layer's pieces at a time), which is
/// correct but runs them no faster than one after the other. So for throughput, give each model
/// (or each task that runs passes concurrently) its own executor, and split the cores between
/// them:
///
/// ```swift
/// let a = try ResNetModel(mapping: m1, executor: Executor(threads: 4))
/// let b = try ResNetModel(mapping: m2, executor: Executor(threads: 4))
/// async let x = a(batchA)   // both run at once, on 4 threads each
/// async let y = b(batchB)
/// ```
///
/// The workers spin for a few milliseconds after each piece of work (the next layer follows within
/// microseconds), then sleep; releasing the last reference to an executor stops and joins them.
public final class Executor: Sendable {
    /// Threads a forward pass is split over (the caller's thread included): at least 1.
    public let threads: Int

    /// The C pool (`tp_pool`), owned: destroyed in `deinit`. nil when it could not be created (no
    /// memory); every piece of work then runs on the calling thread. The pool serialises the runs
    /// made on it from several threads itself (its dispatch lock), which is what makes sharing this
    /// pointer between threads safe.
    private nonisolated(unsafe) let pool: OpaquePointer?

    /// An executor of `threads` threads (the calling thread and `threads - 1` workers). A count
    /// below 1 means 1: every piece of work then runs on the calling thread, with no worker and no
    /// lock. Counts above 256 mean 256.
    public init(threads: Int) {
        _ = Self.singleThreadedBLAS
        let clamped = min(max(threads, 1), 256)
        self.threads = clamped
        pool = clamped > 1 ? tp_pool_create(Int32(clamped)) : nil
    }

    deinit {
        tp_pool_destroy(pool)
    }

    /// The executor models use unless given one (``ResNetModel/init(mapping:architecture:engine:source:executor:)``),
    /// shared by all of them in the process: `min(active processor count, 8)` threads, created on
    /// first use. Capped at 8 because a forward pass at batch 1 does not split usefully much further
    /// (late layers have few tiles), while more workers spin longer between layers; on a machine
    /// with more cores, more throughput comes from several models (or several forward passes) on
    /// executors of their own than from one wider executor (see docs/performance.md, "Concurrent
    /// models"). Models that share it take turns at each layer.
    public static let shared = Executor(threads: min(ProcessInfo.processInfo.activeProcessorCount, 8))

    /// OpenBLAS runs single-threaded inside each piece of work (set once, process-wide, before the
    /// first executor exists).
    private static let singleThreadedBLAS: Void = { BLAS.useSingleThread() }()

    /// Splits `0..<total` into contiguous ranges, one per thread (at most `threads`, none empty),
    /// and runs `body(thread, range)` for each on the pool.
    func forEach(splitting total: Int, threads: Int, _ body: (Int, Range<Int>) -> Void) {
        let n = min(threads, total)
        guard n > 0 else { return }
        forEach(n) { t in body(t, (total * t / n)..<(total * (t + 1) / n)) }
    }

    /// Runs `body(0..<n)` on the calling thread (0) and the pool's workers (`tp_pool_run`: workers
    /// spin briefly between tasks, then sleep), and waits for all of them. Indices beyond the
    /// executor's threads run on the calling thread.
    func forEach(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 || pool == nil {
            for i in 0..<max(n, 0) { body(i) }
            return
        }
        typealias Body = (Int) -> Void
        withoutActuallyEscaping(body) { escapable in
            var task: Body = escapable
            withUnsafeMutablePointer(to: &task) { pointer in
                tp_pool_run(pool, Int64(n), { context, index in
                    context?.assumingMemoryBound(to: Body.self).pointee(Int(index))
                }, pointer)
            }
        }
    }
}
