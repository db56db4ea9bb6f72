import CKernels
import Dispatch
import Synchronization
import TorchportCore

/// Per-layer timings of forward passes, for `torchport bench --profile`: each convolution's time
/// and achieved GFLOP/s, to set against the machine's peak (the roofline).
package enum Profiler {
    /// Totals for one layer (one convolution) over every recorded forward pass.
    package struct Entry: Sendable, Codable {
        /// torchvision's name of the layer (`layer1.0.conv2`).
        package let name: String
        /// Number of recorded calls.
        package var calls: Int
        /// Floating-point operations of all calls together (a multiply-add counts as two).
        package var flops: Int
        /// Wall-clock time of all calls together, in seconds.
        package var seconds: Double
        /// Achieved throughput, `flops / seconds` in GFLOP/s (0 before any time is recorded).
        package var gflopsPerSecond: Double { seconds > 0 ? Double(flops) / seconds / 1e9 : 0 }
    }

    private static let enabled = Atomic<Bool>(false)
    private static let entries = Mutex<[String: Entry]>([:])
    private static let order = Mutex<[String]>([])

    /// Whether forward passes are being recorded (between ``start()`` and ``stop()``).
    package static var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Clears earlier entries and starts recording.
    package static func start() {
        entries.withLock { $0 = [:] }
        order.withLock { $0 = [] }
        enabled.store(true, ordering: .relaxed)
    }

    /// Stops recording and returns the entries in first-call order.
    package static func stop() -> [Entry] {
        enabled.store(false, ordering: .relaxed)
        let e = entries.withLock { $0 }
        return order.withLock { $0 }.compactMap { e[$0] }
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// The CPU's float32 FMA peak on the threads of `executor`, in GFLOP/s: every thread runs
    /// independent FMA chains of the packed engine's instruction set (zmm with AVX-512, ymm with
    /// AVX2; see ``InferenceEngine/packedISA``) for about `seconds`; nil without either. The ceiling of the
    /// roofline that `bench --profile` sets each layer against.
    package static func peakGflops(seconds: Double = 0.3, executor: Executor = .shared) -> Double? {
        var sink = 0.0
        guard tp_fma_flops(1000, &sink) > 0 else { return nil }
        let threads = executor.threads
        let iterations = Int64(seconds * 2.5e9 / 6)  // ~6 cycles per round of 12 FMAs at 2 per cycle
        let sinks = UnsafeMutableBufferPointer<Double>.allocate(capacity: threads)
        sinks.initialize(repeating: 0)
        defer { sinks.deallocate() }
        nonisolated(unsafe) let s = sinks
        let start = now()
        executor.forEach(threads) { t in _ = tp_fma_flops(iterations, &s[t]) }
        let elapsed = Double(now() - start) / 1e9
        return Double(iterations) * 12 * 16 * 2 * Double(threads) / elapsed / 1e9
    }

    /// Runs `body`, recording it under `name` (with `flops` operations) while recording is on.
    static func timed<R>(_ name: @autoclosure () -> String, flops: @autoclosure () -> Int = 0, _ body: () throws -> R) rethrows -> R {
        guard isEnabled else { return try body() }
        let started = now()
        defer { record(name(), flops: flops(), since: started) }
        return try body()
    }

    static func record(_ name: String, flops: Int, since start: UInt64) {
        let seconds = Double(now() - start) / 1e9
        entries.withLock { e in
            if e[name] == nil { order.withLock { $0.append(name) } }
            e[name, default: Entry(name: name, calls: 0, flops: 0, seconds: 0)].calls += 1
            e[name]?.flops += flops
            e[name]?.seconds += seconds
        }
    }
}
