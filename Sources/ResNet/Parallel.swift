import CKernels
import Synchronization
import TorchportCore

/// The inference threads: work is split by Torchport itself (by image or by output columns), and
/// each piece calls single-threaded OpenBLAS, so no core idles in a serial stage or spins in
/// OpenBLAS's own thread pool.
enum Parallel {
    private static let count = Atomic<Int>(2)

    /// OpenBLAS runs single-threaded inside each piece of work.
    private static let singleThreadedBLAS: Void = { BLAS.threads = 1 }()

    static var threads: Int {
        _ = singleThreadedBLAS
        return count.load(ordering: .relaxed)
    }

    static func setThreads(_ n: Int) {
        _ = singleThreadedBLAS
        count.store(max(1, n), ordering: .relaxed)
    }

    /// Splits `0..<total` into contiguous ranges, one per thread (at most `threads`, none empty),
    /// and runs `body(thread, range)` for each on the pool.
    static func forEach(splitting total: Int, threads: Int, _ body: (Int, Range<Int>) -> Void) {
        let n = min(threads, total)
        guard n > 0 else { return }
        forEach(n) { t in body(t, (total * t / n)..<(total * (t + 1) / n)) }
    }

    /// Runs `body(0..<n)` on the calling thread and `n - 1` workers of one persistent pool
    /// (`tp_pool_run`: workers spin briefly between tasks, then sleep), and waits for all of them.
    static func forEach(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 {
            body(0)
            return
        }
        typealias Body = (Int) -> Void
        withoutActuallyEscaping(body) { escapable in
            var task: Body = escapable
            withUnsafeMutablePointer(to: &task) { pointer in
                tp_pool_run(Int64(n), { context, index in
                    context!.assumingMemoryBound(to: Body.self).pointee(Int(index))
                }, pointer)
            }
        }
    }
}

extension Optional where Wrapped == [Float] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let a): a.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: body(nil)
        }
    }
}
