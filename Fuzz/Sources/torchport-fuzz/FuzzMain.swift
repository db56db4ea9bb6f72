// torchport-fuzz: libFuzzer targets for every layer of the reader, and a replay tool.
//
// Fuzz build (`make fuzz`): `-DFUZZING -parse-as-library -sanitize=fuzzer,address`; libFuzzer
// supplies `main` and calls `LLVMFuzzerTestOneInput`, which runs the target named by the
// environment variable TORCHPORT_FUZZ_TARGET (zip, legacy, unpickler, safetensors, inspect, scan).
//
// Plain build (`swift build`): a replay tool (`@main`; the file is not called main.swift so that
// both builds parse it as a library), `torchport-fuzz TARGET FILE...`, that runs each file
// through the same target without a sanitizer and prints the outcome (for regressions).
import Foundation
import SafeTensors
import TorchCheckpoint
import TorchportCore

enum FuzzTarget: String, CaseIterable {
    case zip, legacy, unpickler, safetensors, inspect, scan

    /// Runs one input. Returns a one-line outcome; a typed error is an outcome, not a failure.
    /// Anything else (a trap, an ASan report, a non-typed error) is a finding.
    func run(_ bytes: [UInt8]) -> String {
        do {
            switch self {
            case .zip:
                return "ok: \(try FuzzEntryPoints.zip(bytes)) entries"
            case .legacy:
                guard let n = try FuzzEntryPoints.legacy(bytes) else { return "skipped: looks like a zip" }
                return "ok: \(n) tensors"
            case .unpickler:
                let strict: String
                do { strict = "ok: \(try FuzzEntryPoints.unpickler(bytes).kindName)" } catch let e as CheckpointError {
                    strict = "error \(e.code)"
                }
                // Again with unknown globals kept as inert records, which reaches further.
                let lenient: String
                do { lenient = "ok: \(try FuzzEntryPoints.unpickler(bytes, allowUnknownGlobals: true).kindName)" } catch let e as CheckpointError {
                    lenient = "error \(e.code)"
                }
                return "\(strict); lenient \(lenient)"
            case .safetensors:
                let f = try SafeTensorsFile(bytes: bytes, name: "fuzz", maxHeaderBytes: 1 << 20)
                var sink: UInt8 = 0
                for t in f.tensors {
                    t.tensor.withContiguousBytes { b in for v in b { sink ^= v } }
                }
                withExtendedLifetime(sink) {}
                return "ok: \(f.tensors.count) tensors"
            case .inspect:
                return "ok: \(try FuzzEntryPoints.inspect(bytes)) tensors"
            case .scan:
                let r = FuzzEntryPoints.scan(bytes)
                return "\(r.verdict.rawValue): \(r.format), \(r.globals.count) globals"
            }
        } catch let e as CheckpointError {
            return "error \(e.code): \(e)"
        } catch let e as SafeTensorsError {
            return "error \(e.code): \(e)"
        } catch {
            // Every reader failure is typed; an untyped error is itself a bug.
            fatalError("untyped error \(type(of: error)): \(error)")
        }
    }
}

extension PickleValue {
    var kindName: String { String(describing: self).prefix(while: { $0 != "(" }).description }
}

#if FUZZING
let fuzzTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["TORCHPORT_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        fatalError("set TORCHPORT_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue))")
    }
    return t
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    _ = fuzzTarget.run(bytes)
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links executables with `main` aliased to `<module>_main` (`--defsym`), so libFuzzer's
/// own `main` is never linked in; this is that entry point, handing control to libFuzzer's driver.
@_cdecl("torchport_fuzz_main")
public func torchportFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzTestOneInput(data, size) }
}
#else
/// The replay tool (plain builds): no sanitizer, one line of outcome per file.
@main
struct ReplayTool {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let first = arguments.first, let target = FuzzTarget(rawValue: first), arguments.count >= 2 else {
            FileHandle.standardError.write(Data("""
                usage: torchport-fuzz TARGET FILE...
                  TARGET: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))
                Runs each file through the fuzz target (no sanitizer) and prints the outcome.
                The libFuzzer build is made by `make fuzz`.

                """.utf8))
            exit(64)
        }
        for path in arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("\(path): cannot read")
                exit(66)
            }
            print("\(path): \(target.run(Array(data)))")
        }
    }
}
#endif
