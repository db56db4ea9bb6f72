import Dispatch
import Foundation
import Synchronization
import Testing
@testable import ResNet
import StateDict
import TorchCheckpoint
import TorchportCore
import _TestSupport

/// Executors: each model runs on the thread pool of the executor it was bound with; no lock or
/// thread count is process-wide.
@Suite("Executors: thread pools owned by a value")
struct ExecutorTests {
    /// A fixture's model bound to `executor`, with its golden's input and logits.
    static func load(_ name: String, executor: Executor, engine: InferenceEngine? = nil) throws
        -> (model: ResNetModel, input: FeatureMap, logits: [Float]) {
        let f = try #require(ModelFixture.all.first { $0.name == name })
        let checkpoint = try Checkpoint(contentsOf: f.path(f.checkpoint))
        let model = try ResNetModel(mapping: NameMapping.map(checkpoint.tensors), engine: engine, executor: executor)
        let golden = try Checkpoint(contentsOf: f.path(f.golden))
        return (model, try ModelParityTests.input(golden), try #require(golden.tensor(named: "logits")).floats())
    }

    /// The largest error (max|d| / max|ref|) of `passes` forward passes of `model` on `input`.
    static func worstError(_ model: ResNetModel, _ input: FeatureMap, _ logits: [Float], passes: Int) throws -> Float {
        var worst: Float = 0
        for _ in 0..<passes { worst = max(worst, ModelParityTests.relativeError(try model(input).values, logits)) }
        return worst
    }

    static let engines = InferenceEngine.allCases.filter(\.isAvailable)

    @Test("The engines the parameterised tests run on: at least the reference engine")
    func enginesListed() { #expect(Self.engines.contains(.reference)) }

    @Test("Two models on two executors, run from two concurrent tasks, both match their goldens", arguments: engines)
    func twoModelsTwoExecutors(_ engine: InferenceEngine) async throws {
        let a = try Self.load("tiny-basic-r18ish", executor: Executor(threads: 2), engine: engine)
        let b = try Self.load("tiny-bottleneck", executor: Executor(threads: 2), engine: engine)
        #expect(a.model.executor !== b.model.executor)
        async let errorA = Self.worstError(a.model, a.input, a.logits, passes: 8)
        async let errorB = Self.worstError(b.model, b.input, b.logits, passes: 8)
        let (ea, eb) = try await (errorA, errorB)
        #expect(ea <= 1e-5, "tiny-basic-r18ish on \(engine): \(ea)")
        #expect(eb <= 1e-5, "tiny-bottleneck on \(engine): \(eb)")
    }

    @Test("Tasks that share one executor on purpose take turns at each layer and still get correct results",
          arguments: engines)
    func sharedExecutor(_ engine: InferenceEngine) async throws {
        let shared = Executor(threads: 2)
        let a = try Self.load("tiny-basic-r18ish", executor: shared, engine: engine)
        let b = try Self.load("tiny-wide", executor: shared, engine: engine)
        #expect(a.model.executor === b.model.executor)
        // Two tasks per model: the same model also runs two passes at once (a workspace each).
        let errors = try await withThrowingTaskGroup(of: (String, Float).self) { group in
            for (name, m) in [("tiny-basic-r18ish", a), ("tiny-wide", b), ("tiny-basic-r18ish", a), ("tiny-wide", b)] {
                group.addTask { (name, try Self.worstError(m.model, m.input, m.logits, passes: 5)) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(errors.count == 4)
        for (name, error) in errors { #expect(error <= 1e-5, "\(name) on \(engine): \(error)") }
    }

    @Test("A thread count below 1 means 1 (no trap): every piece of work runs on the caller, models still run",
          arguments: [0, -1, -8, Int.min])
    func belowOne(_ threads: Int) throws {
        let executor = Executor(threads: threads)
        #expect(executor.threads == 1)
        var order: [Int] = []
        executor.forEach(3) { order.append($0) }  // no worker: in order, on this thread
        #expect(order == [0, 1, 2])
        let m = try Self.load("tiny-basic-r18ish", executor: executor)
        #expect(try Self.worstError(m.model, m.input, m.logits, passes: 1) <= 1e-5)
        #expect(Executor(threads: Int.max).threads == 256)
    }

    /// A flag set from another thread.
    final class Flag: Sendable {
        let value = Mutex(false)
    }

    @Test("Two executors never wait for each other: work on one sees work on the other finish meanwhile")
    func independentPools() {
        let a = Executor(threads: 2), b = Executor(threads: 2)
        let aWaiting = DispatchSemaphore(value: 0), bRan = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        let sawB = Flag()
        // a's second piece (on a's worker) waits for b's second piece (on b's worker), which starts
        // only after a's is under way. With one lock for every pool, b would wait for a, which
        // waits for b: the wait below would time out.
        DispatchQueue.global().async {
            a.forEach(2) { i in
                guard i == 1 else { return }
                aWaiting.signal()
                let ran = bRan.wait(timeout: .now() + 10) == .success
                sawB.value.withLock { $0 = ran }
            }
            done.signal()
        }
        #expect(aWaiting.wait(timeout: .now() + 10) == .success)
        b.forEach(2) { i in if i == 1 { bRan.signal() } }
        #expect(done.wait(timeout: .now() + 20) == .success)
        #expect(sawB.value.withLock { $0 })
    }

    @Test("Executors made, used and released one after another stop their workers (no hang, every piece run)")
    func releasedExecutors() {
        for round in 0..<40 {
            let executor = Executor(threads: 1 + round % 4)
            let hits = Mutex(0)
            executor.forEach(executor.threads) { _ in hits.withLock { $0 += 1 } }
            #expect(hits.withLock { $0 } == executor.threads)
            if round % 8 == 0 { Thread.sleep(forTimeInterval: 0.05) }  // workers asleep by then, some rounds
        }
    }

    @Test("The shared executor: one instance, at least one thread, at most 8; models use it unless given another")
    func sharedDefault() throws {
        #expect(Executor.shared === Executor.shared)
        #expect((1...8).contains(Executor.shared.threads))
        let m = try Self.load("tiny-basic-r18ish", executor: .shared)
        #expect(m.model.executor === Executor.shared)
        let f = try #require(ModelFixture.all.first { $0.name == "tiny-basic-r18ish" })
        let byDefault = try ResNetModel(mapping: NameMapping.map(Checkpoint(contentsOf: f.path(f.checkpoint)).tensors))
        #expect(byDefault.executor === Executor.shared)
    }
}
