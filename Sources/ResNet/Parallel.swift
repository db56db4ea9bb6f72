import Dispatch
import Synchronization

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

    /// Runs `body(0..<n)` on up to `n` threads and waits for all of them.
    static func forEach(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 {
            body(0)
        } else {
            withoutActuallyEscaping(body) { escapable in
                let task = UncheckedSendable(escapable)
                DispatchQueue.concurrentPerform(iterations: n) { task.value($0) }
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

/// Hands a closure over raw buffers to worker threads; each worker writes a disjoint range.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
