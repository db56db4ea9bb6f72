import ArgumentParser
import Foundation
import Torchport
import TorchportCore

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two checkpoints or safetensors files tensor by tensor, any formats, any model.",
        discussion: """
            Each file's names are mapped as `inspect` shows (a ResNet's wrappers and prefixes undone, \
            num_batches_tracked dropped); a file in which no ResNet is found is compared under its \
            state dict's names, unwrapped as `convert` does (model / state_dict / module. ...). Lists the names only in A and only in B, dtype and shape differences, \
            and for each tensor on both sides the largest absolute and relative difference. A \
            tensor is the same when every element has |a - b| <= atol + rtol * |b| (NaN equal to \
            NaN); with the defaults (0, 0) only identical values are, and a dtype difference is a \
            difference; with a tolerance, values decide and a dtype difference is only reported.

            Exit status: 0 same, 1 different, 2 a file cannot be used.

            Example:
              torchport diff resnet50.pth resnet50.safetensors
              torchport diff resnet50.pth resnet50-fp16.safetensors --rtol 1e-3 --json
            """)

    @Argument(help: "The first file (a .pth / .pt checkpoint or a .safetensors file).", completion: .file())
    var a: String

    @Argument(help: "The second file, compared with the first.", completion: .file())
    var b: String

    @Option(help: "Absolute tolerance per element.")
    var atol: Double = 0

    @Option(help: "Relative tolerance per element (of the second file's value).")
    var rtol: Double = 0

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(help: "In text output, list identical tensors too (default: only the ones that differ, and a count).")
    var all = false

    @OptionGroup var reader: ReaderFlags

    func validate() throws {
        guard atol >= 0, rtol >= 0, atol.isFinite, rtol.isFinite else {
            throw ValidationError("--atol and --rtol must be finite and at least 0")
        }
    }

    func run() throws {
        let (left, right) = try withExitCode2(json: json, verbose: reader.verbose) {
            (try mappedTensors(a), try mappedTensors(b))
        }
        let diff = TensorDiff(a: left, b: right, atol: atol, rtol: rtol)
        if json {
            try printJSON(DiffJSON(a: a, b: b, diff: diff))
        } else {
            print(text(diff))
        }
        if !diff.same { throw ExitCode(ExitStatus.mismatch) }
    }

    /// The file's tensors under mapped names: a ResNet's state dict where one is found (its
    /// canonical torchvision names, num_batches_tracked dropped), else the state dict of whatever
    /// model the file holds, unwrapped as `convert` does (`StateDictSelection`).
    func mappedTensors(_ path: String) throws -> [NamedTensor] {
        let tensors = try readTensors(path, options: reader.options).tensors
        let stateDict = (try? NameMapping.map(tensors).stateDict) ?? StateDictSelection.select(tensors).stateDict
        return stateDict.map { NamedTensor(name: $0.name, tensor: $0.tensor) }
    }

    func text(_ d: TensorDiff) -> String {
        var lines: [String] = []
        func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
        for name in d.onlyInA { lines.append("only in A  \(name)") }
        for name in d.onlyInB { lines.append("only in B  \(name)") }
        for e in d.entries where all || !e.identical {
            var line = (e.withinTolerance ? (e.identical ? "identical  " : "close      ") : "DIFFERENT  ") + e.name
            if e.dtypeA != e.dtypeB { line += "  dtype \(e.dtypeA.rawValue) -> \(e.dtypeB.rawValue)" }
            if e.shapeA != e.shapeB {
                line += "  shape \(shape(e.shapeA)) -> \(shape(e.shapeB))"
            } else if let abs = e.maxAbsDifference, let rel = e.maxRelDifference, let out = e.elementsOutOfTolerance {
                line += String(format: "  max|d| %.3e  rel %.3e", abs, rel)
                if out > 0 { line += "  \(out) element\(out == 1 ? "" : "s") out of tolerance" }
            }
            lines.append(line)
        }
        let counts = "\(d.entries.count) tensors in both (\(d.identical) identical), \(d.onlyInA.count) only in A, "
            + "\(d.onlyInB.count) only in B"
        let criterion = d.atol == 0 && d.rtol == 0 ? "identical values" : "|a - b| <= \(d.atol) + \(d.rtol) * |b|"
        lines.append((d.same ? "SAME: " : "DIFFERENT: ") + counts + "; criterion: " + criterion)
        return lines.joined(separator: "\n")
    }
}

/// `torchport diff --json`.
struct DiffJSON: Encodable {
    let a: String
    let b: String
    let same: Bool
    let identical: Int
    let onlyInA: [String]
    let onlyInB: [String]
    let atol: Double
    let rtol: Double
    let tensors: [TensorDiff.Entry]

    init(a: String, b: String, diff: TensorDiff) {
        self.a = a
        self.b = b
        same = diff.same
        identical = diff.identical
        onlyInA = diff.onlyInA
        onlyInB = diff.onlyInB
        atol = diff.atol
        rtol = diff.rtol
        tensors = diff.entries
    }
}
