import ArgumentParser
import Foundation
import Torchport

// `bench --concurrent N`: the throughput of N copies of a model running at once against one model
// alone. Each copy is bound separately (its own packed weights and arenas, as two models of a
// server would be), and runs its passes on a thread of its own.

extension Bench {
    /// One way of running the models, timed over several rounds.
    struct ConcurrentConfiguration: Encodable {
        /// What runs: `1 model, 2 threads`, `2 models at once, own executors of 1 thread`, ...
        let label: String
        /// Models running at once.
        let models: Int
        /// Threads of each model's executor.
        let threadsPerModel: Int
        /// Whether the models share one executor (taking turns at each layer, as every model did
        /// when the thread pool was one per process) instead of each having its own.
        let sharedExecutor: Bool
        /// Images per second of all models together, one figure per round.
        let imagesPerSecond: [Double]
        let medianImagesPerSecond: Double
        /// The median throughput over that of one model alone.
        let speedup: Double
        /// Median milliseconds of one forward pass of one model, over all passes of all rounds.
        let medianPassMs: Double
    }

    struct ConcurrentReport: Encodable {
        let model: String
        let architecture: String
        let engine: String
        let batch: Int
        let size: Int
        /// --threads: the threads of the one model alone, and the budget the copies split.
        let threads: Int
        let concurrent: Int
        /// Timed forward passes of each model in each round.
        let runs: Int
        let rounds: Int
        let cpu: String?
        let configurations: [ConcurrentConfiguration]
    }

    /// Rounds of --concurrent: every configuration runs once per round, in turn, so that a slow
    /// period of the machine falls on all of them.
    static let concurrentRounds = 3

    /// The models of one configuration.
    private struct Group {
        let label: String
        let models: [ResNetModel]
        let threadsPerModel: Int
        let shared: Bool
    }

    func runConcurrent(_ count: Int) throws {
        let load = { (executor: Executor) throws -> ResNetModel in
            try withExitCode2(json: json, verbose: reader.verbose, file: model) {
                try loadModel(model, arch: arch, reader: reader, engine: engineFlags.engine, executor: executor)
            }
        }
        let split = max(1, threads / count)
        // One model alone; the same executor is then shared by `count` models (the old behaviour);
        // `count` models on executors of their own of `threads` threads, and of threads / count.
        let alone = try load(Executor(threads: threads))
        var sharing = [alone]
        for _ in 1..<count { sharing.append(try load(alone.executor)) }
        var full = [alone]
        for _ in 1..<count { full.append(try load(Executor(threads: threads))) }
        var halves: [ResNetModel] = []
        for _ in 0..<count { halves.append(try load(Executor(threads: split))) }
        let plural = { (n: Int) in n == 1 ? "" : "s" }
        let groups = [
            Group(label: "1 model, \(threads) thread\(plural(threads))", models: [alone], threadsPerModel: threads, shared: false),
            Group(label: "\(count) models at once, own executors of \(split) thread\(plural(split))", models: halves,
                  threadsPerModel: split, shared: false),
            Group(label: "\(count) models at once, own executors of \(threads) thread\(plural(threads))", models: full,
                  threadsPerModel: threads, shared: false),
            Group(label: "\(count) models at once, one shared executor of \(threads) thread\(plural(threads))", models: sharing,
                  threadsPerModel: threads, shared: true),
        ]
        let input = try randomInput(batch: batch)
        for g in groups where warmup > 0 { _ = try Self.runTogether(g.models, input, passes: warmup) }
        var rates = [[Double]](repeating: [], count: groups.count), passes = [[Double]](repeating: [], count: groups.count)
        for _ in 0..<Self.concurrentRounds {
            for (i, g) in groups.enumerated() {
                let (seconds, times) = try Self.runTogether(g.models, input, passes: runs)
                rates[i].append(Double(g.models.count * runs * batch) / seconds)
                passes[i] += times
            }
        }
        let base = median(rates[0])
        let configurations = groups.indices.map { i in
            ConcurrentConfiguration(label: groups[i].label, models: groups[i].models.count, threadsPerModel: groups[i].threadsPerModel,
                                    sharedExecutor: groups[i].shared, imagesPerSecond: rates[i],
                                    medianImagesPerSecond: median(rates[i]), speedup: median(rates[i]) / base,
                                    medianPassMs: median(passes[i]))
        }
        let cpu = BLASKernels.linuxCPUInfo()?.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) }
        let report = ConcurrentReport(model: model, architecture: alone.architecture.description,
                                      engine: alone.engine.rawValue, batch: batch, size: size, threads: threads,
                                      concurrent: count, runs: runs, rounds: Self.concurrentRounds, cpu: cpu,
                                      configurations: configurations)
        if json { return try printJSON(report) }
        print("\(report.architecture), batch \(batch), \(size)x\(size), engine \(report.engine), \(runs) pass\(runs == 1 ? "" : "es") "
              + "per model per round, median of \(Self.concurrentRounds) rounds\(cpu.map { ", \($0)" } ?? "")")
        let width = configurations.map(\.label.count).max() ?? 0
        print("configuration".padding(toLength: width, withPad: " ", startingAt: 0) + "   images/s   vs 1 model   ms/pass")
        for c in configurations {
            print(c.label.padding(toLength: width, withPad: " ", startingAt: 0)
                  + String(format: "  %9.2f   %9.2fx  %8.2f", c.medianImagesPerSecond, c.speedup, c.medianPassMs))
        }
    }

    /// Runs `passes` forward passes of each model, all models at once (a thread each, started
    /// together); returns the seconds from the start until the last one finished, and every
    /// pass's milliseconds.
    private static func runTogether(_ models: [ResNetModel], _ input: FeatureMap, passes: Int) throws -> (Double, [Double]) {
        final class Outcome: @unchecked Sendable {
            let lock = NSLock()
            var times: [Double] = []
            var error: (any Error)?
        }
        let outcome = Outcome()
        let start = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
        for model in models {
            let thread = Thread {
                start.wait()
                var times: [Double] = []
                do {
                    for _ in 0..<passes {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        _ = try model(input)
                        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                    }
                } catch {
                    outcome.lock.withLock { outcome.error = error }
                }
                outcome.lock.withLock { outcome.times += times }
                finished.signal()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in models { start.signal() }
        for _ in models { finished.wait() }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        if let error = outcome.lock.withLock({ outcome.error }) { throw error }
        return (seconds, outcome.lock.withLock { outcome.times })
    }
}

/// The median of `values` (0 for none).
private func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
