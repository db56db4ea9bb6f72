// Benchmark driver (never part of the library product). `Benchmarks/load_vs_torch.py` and
// `Benchmarks/convert_vs_torch.py` run it side by side with torch in one run.
//
//   torchport-bench load FILE [--repeat N]
//   torchport-bench safetensors FILE [--repeat N] [--touch floats|sum|none]
//
// Prints one JSON object: median/min/max milliseconds, and the process's peak RSS.
// `load`: open, parse and validate the whole checkpoint (every tensor located and bounds-checked).
// `safetensors`: map and validate a .safetensors file, then make every tensor ready for binding:
//   `floats` (default) reads each into a [Float] with `TensorRecord.floats()`, exactly what
//   `ResNetModel(mapping:)` does; `sum` reads every value in place (the zero-copy path) and adds
//   them up, so nothing is skipped; `none` stops after validation (tensors are views of the map,
//   nothing read yet: what safetensors' `load_file` hands back too).
import Foundation
import SafeTensors
import TorchCheckpoint
import TorchportCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's peak resident size: `ru_maxrss` is in KiB on Linux, in bytes on Darwin (untested).
func peakRSSBytes() -> Int {
    var usage = rusage()
    #if os(Linux)
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
    #else
    getrusage(RUSAGE_SELF, &usage)
    return usage.ru_maxrss
    #endif
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

let usage = "usage: torchport-bench load FILE [--repeat N]\n       torchport-bench safetensors FILE [--repeat N] [--touch floats|sum|none]"
var args = Array(CommandLine.arguments.dropFirst())
guard let mode = args.first, ["load", "safetensors"].contains(mode), args.count >= 2 else { fail(usage) }
let file = args[1]
var repeats = 10
if let i = args.firstIndex(of: "--repeat"), i + 1 < args.count, let n = Int(args[i + 1]), n > 0 { repeats = n }
var touch = "floats"
if let i = args.firstIndex(of: "--touch"), i + 1 < args.count { touch = args[i + 1] }
guard ["floats", "sum", "none"].contains(touch) else { fail(usage) }

/// Maps and validates `file`, then reads every value of every tensor; returns (tensors, bytes, checksum).
@MainActor func loadSafeTensors() throws -> (Int, Int, Double) {
    let st = try SafeTensorsFile(contentsOf: file)
    var checksum = 0.0
    if touch == "floats" {
        // What binding keeps: one [Float] per tensor.
        var kept: [[Float]] = []
        kept.reserveCapacity(st.tensors.count)
        for t in st.tensors {
            let values = t.tensor.floats()
            checksum += Double(values.first ?? 0) + Double(values.last ?? 0)
            kept.append(values)
        }
    } else if touch == "sum" {
        for t in st.tensors {
            t.tensor.withContiguousBytes { b in
                var sum: Float = 0
                switch t.tensor.dtype {
                case .float32:
                    // Sixteen lanes, as torch's vectorised sum: one add chain would measure the
                    // adder's latency, not the reading.
                    let floats = b.bindMemory(to: Float.self), n = floats.count
                    var lanes = (SIMD16<Float>(repeating: 0), SIMD16<Float>(repeating: 0))
                    var i = 0
                    while i + 32 <= n {
                        lanes.0 += b.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                        lanes.1 += b.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
                        i += 32
                    }
                    sum = (lanes.0 + lanes.1).sum()
                    while i < n { sum += floats[i]; i += 1 }
                case .float16: for v in b.bindMemory(to: UInt16.self) { sum += FloatCast.float(halfBits: v) }
                case .bfloat16: for v in b.bindMemory(to: UInt16.self) { sum += FloatCast.float(bfloat16Bits: v) }
                default: for v in b { sum += Float(v) }  // other dtypes: every byte, so nothing is skipped
                }
                checksum += Double(sum)
            }
        }
    }
    return (st.tensors.count, st.totalBytes, checksum)
}

let rssBefore = peakRSSBytes()
var times: [Double] = []
var tensors = 0
var bytes = 0
for _ in 0..<repeats {
    let start = DispatchTime.now().uptimeNanoseconds
    do {
        if mode == "load" {
            let checkpoint = try Checkpoint(contentsOf: file)
            tensors = checkpoint.tensors.count
            bytes = checkpoint.totalBytes
        } else {
            let (n, b, checksum) = try loadSafeTensors()
            tensors = n
            bytes = b
            if checksum.isNaN { FileHandle.standardError.write(Data("checksum is NaN\n".utf8)) }
        }
    } catch {
        fail("\(error)")
    }
    times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
}
let sorted = times.sorted()
let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
let result: [String: Any] = [
    "mode": mode, "touch": mode == "safetensors" ? touch : "none",
    "median_ms": median, "min_ms": sorted.first ?? 0, "max_ms": sorted.last ?? 0, "repeat": repeats,
    "peak_rss_bytes": peakRSSBytes(), "baseline_rss_bytes": rssBefore, "tensors": tensors, "bytes": bytes,
]
let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
print(String(decoding: data, as: UTF8.self))
