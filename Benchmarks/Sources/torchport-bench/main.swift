// Benchmark driver (never part of the library product). `Benchmarks/load_vs_torch.py` runs it side
// by side with torch in one run.
//
//   torchport-bench load FILE [--repeat N]
//
// Prints one JSON object: median/min/max milliseconds to open, parse and validate the whole
// checkpoint (every tensor located and bounds-checked), and the process's peak RSS.
import Foundation
import TorchCheckpoint
#if canImport(Glibc)
import Glibc
#endif

func peakRSSBytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
guard args.first == "load", args.count >= 2 else { fail("usage: torchport-bench load FILE [--repeat N]") }
let file = args[1]
var repeats = 10
if let i = args.firstIndex(of: "--repeat"), i + 1 < args.count, let n = Int(args[i + 1]), n > 0 { repeats = n }

let rssBefore = peakRSSBytes()
var times: [Double] = []
var tensors = 0
var bytes = 0
for _ in 0..<repeats {
    let start = DispatchTime.now().uptimeNanoseconds
    do {
        let checkpoint = try Checkpoint(contentsOf: file)
        tensors = checkpoint.tensors.count
        bytes = checkpoint.totalBytes
    } catch {
        fail("\(error)")
    }
    times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
}
let sorted = times.sorted()
let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
let result: [String: Any] = [
    "median_ms": median, "min_ms": sorted.first ?? 0, "max_ms": sorted.last ?? 0, "repeat": repeats,
    "peak_rss_bytes": peakRSSBytes(), "baseline_rss_bytes": rssBefore, "tensors": tensors, "bytes": bytes,
]
let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
print(String(decoding: data, as: UTF8.self))
