import ArgumentParser
import Foundation
import Torchport
import TorchportCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the forward pass of a model on random input.",
        discussion: """
            Runs warm-up passes, then times each forward and reports the median, min and max. \
            With --serve, stays loaded and answers requests on standard input instead: each line \
            "BATCH RUNS" runs RUNS timed passes at that batch size (the first request of a size \
            runs --warmup passes first) and prints one JSON line {"batch": B, "times_ms": [...]}; \
            benchmark scripts interleave it run by run with engines that live in their own process.

            With --concurrent N, compares the throughput (images per second) of one model on \
            --threads threads with N copies of it running at once (each bound separately, its passes \
            on a thread of its own): on executors of their own of --threads / N threads each, and of \
            --threads threads each, and all sharing one executor of --threads threads (taking turns \
            at each layer). Each configuration runs --runs passes per model, in turn, for \
            \(Bench.concurrentRounds) rounds; the median round is reported.

            Examples:
              torchport bench resnet50.pth --batch 8 --threads 2 --json
              torchport bench resnet50.safetensors --threads 2 --concurrent 2 --runs 20
            """)

    @Argument(help: "A checkpoint (.pth / .pt) or a converted .safetensors file.", completion: .file())
    var model: String

    @Option(help: "Images per forward pass.") var batch = 1
    @Option(help: "Inference threads (one persistent pool; OpenBLAS runs single-threaded inside each).") var threads = 2
    @Option(help: "Input height and width.") var size = 224
    @Option(help: "Timed runs.") var runs = 10
    @Option(help: "Untimed warm-up runs.") var warmup = 2
    @Option(help: "Architecture override (e.g. resnet50).") var arch: ArchChoice?
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Also time each convolution and report its achieved GFLOP/s (the roofline).") var profile = false
    @Flag(help: "Answer \"BATCH RUNS\" requests on standard input, one JSON line each (see above).") var serve = false
    @Option(help: "Compare N copies of the model running at once with one model (see above).") var concurrent: Int?
    @OptionGroup var reader: ReaderFlags
    @OptionGroup var engineFlags: EngineFlags

    func validate() throws {
        try requireAtLeast([("--batch", batch, 1), ("--threads", threads, 1), ("--size", size, 1), ("--runs", runs, 1),
                            ("--warmup", warmup, 0)])
        if let concurrent {
            try requireAtLeast([("--concurrent", concurrent, 2)])
            guard !serve, !profile else { throw ValidationError("--concurrent cannot be combined with --serve or --profile") }
        }
    }

    struct Report: Encodable {
        let model: String
        let architecture: String
        let batch: Int
        let threads: Int
        let size: Int
        let runs: Int
        let medianMs: Double
        let minMs: Double
        let maxMs: Double
        /// Every timed run, in order.
        let timesMs: [Double]
        let msPerImage: Double
        let gflops: Double
        let achievedGflopsPerSecond: Double
        let blasKernels: String
        /// `packed` or `reference`.
        let engine: String
        /// The packed engine's instruction set (`avx512`, `avx2`; TORCHPORT_ISA forces one); nil
        /// with the reference engine.
        let isa: String?
        /// Bytes of the activation arena (packed engine), and of the largest activation.
        let activationArenaBytes: Int?
        let largestActivationBytes: Int?
        /// Linux: resident memory before the timed runs, and its peak during them (the peak is
        /// reset first, through /proc/self/clear_refs); nil elsewhere.
        let rssBeforeRunsBytes: Int?
        let peakRssDuringRunsBytes: Int?
        /// Bytes of the weights as the engine holds them (packed, BatchNorm folded).
        let weightBytes: Int
        /// With --profile: the FMA peak of the threads (GFLOP/s), the roofline's ceiling.
        let peakGflopsPerSecond: Double?
        let layers: [Profiler.Entry]?
    }

    /// Deterministic input of `batch` images in [-1, 1).
    func randomInput(batch: Int) throws -> FeatureMap {
        var rng = SplitMix64(seed: 0)
        return try FeatureMap(n: batch, c: 3, h: size, w: size, data: (0..<(batch * 3 * size * size)).map { _ in rng.nextFloat() * 2 - 1 })
    }

    /// Milliseconds of each of `runs` forward passes.
    func time(_ model: ResNetModel, _ input: FeatureMap, runs: Int) throws -> [Double] {
        try (0..<runs).map { _ in
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try model(input)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        }
    }

    struct Served: Encodable { let batch: Int, timesMs: [Double] }

    /// --serve: answers "BATCH RUNS" lines until end of input.
    func serve(_ model: ResNetModel) throws {
        var inputs: [Int: FeatureMap] = [:]
        while let line = readLine() {
            let fields = line.split(separator: " ").compactMap { Int($0) }
            guard fields.count == 2, fields[0] >= 1, fields[1] >= 1 else {
                FileHandle.standardError.write(Data("error: expected \"BATCH RUNS\" (two positive integers), got \"\(line)\"\n".utf8))
                throw ExitCode(2)
            }
            let input: FeatureMap
            if let known = inputs[fields[0]] {
                input = known
            } else {
                input = try randomInput(batch: fields[0])
                inputs[fields[0]] = input
                _ = try time(model, input, runs: warmup)
            }
            // One line, unbuffered: the requester waits for it.
            try printJSON(Served(batch: fields[0], timesMs: try time(model, input, runs: fields[1])), oneLine: true)
        }
    }

    func run() throws {
        if let concurrent { return try runConcurrent(concurrent) }
        let executor = Executor(threads: threads)
        let loaded = try withExitCode2(json: json, verbose: reader.verbose, file: model) {
            try loadModel(model, arch: arch, reader: reader, engine: engineFlags.engine, executor: executor)
        }
        if serve { return try serve(loaded) }
        let input = try randomInput(batch: batch)
        for _ in 0..<warmup { _ = try loaded(input) }
        if profile { Profiler.start() }
        let rssBefore = Memory.resetPeak()
        let times = try time(loaded, input, runs: runs)
        // The kernel folds per-thread RSS counts in lazily: the peak can read a little below the
        // size read at the reset.
        let peakRss = Memory.peak().map { max($0, rssBefore ?? 0) }
        let layers = profile ? Profiler.stop() : nil
        let sorted = times.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        let flops = Double(loaded.flops(height: size, width: size) * batch)
        let activations = loaded.activationMemory(batch: batch, height: size, width: size)
        let report = Report(model: model, architecture: loaded.architecture.description, batch: batch, threads: threads,
                            size: size, runs: runs, medianMs: median, minMs: sorted[0], maxMs: sorted[sorted.count - 1], timesMs: times,
                            msPerImage: median / Double(batch), gflops: flops / 1e9,
                            achievedGflopsPerSecond: flops / (median * 1e6), blasKernels: BLASKernels.coreName,
                            engine: loaded.engine.rawValue,
                            isa: loaded.engine == .packed ? InferenceEngine.packedISA : nil,
                            activationArenaBytes: activations?.arena, largestActivationBytes: activations?.largest,
                            rssBeforeRunsBytes: rssBefore, peakRssDuringRunsBytes: peakRss, weightBytes: loaded.weightBytes,
                            peakGflopsPerSecond: profile ? Profiler.peakGflops(executor: executor) : nil,
                            layers: layers)
        if json {
            try printJSON(report)
        } else {
            print("\(report.architecture), batch \(batch), \(size)x\(size), \(threads) thread\(threads == 1 ? "" : "s"), "
                  + "\(runs) run\(runs == 1 ? "" : "s"), engine \(report.engine)" + (report.isa.map { " (\($0))" } ?? ""))
            if let stored = loaded.storedDType, stored != .float32 {
                print("note: the weights are stored as \(stored.rawValue) and run in float32 (widened when the model is bound)")
            }
            print(String(format: "median %.2f ms (min %.2f, max %.2f), %.2f ms/image, %.1f GFLOP/s (OpenBLAS kernels: %@)",
                         median, report.minMs, report.maxMs, report.msPerImage, report.achievedGflopsPerSecond, BLASKernels.coreName))
            if let arena = report.activationArenaBytes, let largest = report.largestActivationBytes {
                print(String(format: "activations: arena %.2f MiB = %.2fx the largest activation (%.2f MiB)",
                             Double(arena) / 1048576, Double(arena) / Double(largest), Double(largest) / 1048576))
                if let before = report.rssBeforeRunsBytes, let peak = report.peakRssDuringRunsBytes {
                    let budget = Double(report.weightBytes + 2 * largest) / 1048576
                    print(String(format: "memory: peak RSS during the runs %.1f MiB (%.1f MiB before them); weights %.1f MiB + 2 x largest activation = %.1f MiB; peak minus that: %.1f MiB",
                                 Double(peak) / 1048576, Double(before) / 1048576, Double(report.weightBytes) / 1048576,
                                 budget, Double(peak) / 1048576 - budget))
                }
            } else if let before = report.rssBeforeRunsBytes, let peak = report.peakRssDuringRunsBytes {
                print(String(format: "memory: peak RSS during the runs %.1f MiB (%.1f MiB before them); weights %.1f MiB",
                             Double(peak) / 1048576, Double(before) / 1048576, Double(report.weightBytes) / 1048576))
            }
            if let layers {
                let peak = report.peakGflopsPerSecond
                print(peak.map { String(format: "\nFMA peak of %d threads: %.1f GFLOP/s (the roofline's ceiling)", threads, $0) }
                      ?? "\nFMA peak: not measured (no AVX-512 or AVX2 kernels)")
                print("layer                     calls   ms/call   GFLOP/s  of peak")
                for l in layers {
                    let share = peak.map { String(format: "  %5.1f%%", 100 * l.gflopsPerSecond / $0) } ?? ""
                    print(l.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                          + String(format: " %6d  %8.3f  %8.1f", l.calls, l.seconds * 1000 / Double(l.calls), l.gflopsPerSecond)
                          + share)
                }
                let profiled = layers.reduce(0) { $0 + $1.seconds } * 1000 / Double(runs)
                print(String(format: "steps above: %.2f ms of the %.2f ms mean pass (the rest: dispatch, waiting, and steps not timed)", profiled,
                             times.reduce(0, +) / Double(runs)))
                if layers.contains(where: { $0.name.hasSuffix(" *") }) {
                    print("* Winograd F(2x2, 3x3): GFLOP/s counted as the direct convolution's operations (2.25x what it computes)")
                }
            }
        }
    }
}

/// Deterministic pseudo-random numbers for benchmark inputs.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
}
