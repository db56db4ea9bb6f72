import ArgumentParser
import Foundation
import Torchport
import TorchportCore

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a checkpoint's format, structure and every tensor, without executing anything.",
        discussion: """
            Example:
              torchport inspect resnet50.pth
              torchport inspect checkpoint.pth --json | jq '.tensors[].name'

            A file that refers to code outside the allowlist is refused (exit 2, like any file that \
            cannot be used) unless --allow-unknown-globals keeps such objects as inert records.
            """)

    @Argument(help: "A .pth / .pt / .ckpt / .bin checkpoint (zip, legacy, TorchScript, whole model) or a .safetensors file; a Hugging Face *.index.json or its folder; a torch.distributed.checkpoint folder.", completion: .file())
    var file: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @OptionGroup var reader: ReaderFlags

    func run() throws {
        let report = try withExitCode2(json: json, verbose: reader.verbose, file: file) {
            switch CheckpointLayout.detect(file) {
            case .file?:
                WeightsFormat.isSafeTensors(path: file) ? InspectReport(try SafeTensorsFile(contentsOf: file)) : InspectReport(try reader.open(file))
            case .distributed(let folder)?:
                try InspectReport(distributed: DistributedCheckpoint(folder: folder, options: reader.options), file: file)
            default:  // a sharded index (or an error saying why a folder is no checkpoint)
                InspectReport(file: file, try readTensors(file, options: reader.options))
            }
        }
        if json {
            try printJSON(report)
        } else {
            print(report.text)
        }
    }
}

/// Reader options shared by every command that opens a checkpoint.
struct ReaderFlags: ParsableArguments {
    @Flag(help: "Load files that reference globals outside the allowlist, keeping them as inert records (nothing is executed).")
    var allowUnknownGlobals = false

    @Flag(help: "When a state dict does not fit the model, list every key (default: the first \(BindingError.listedKeys) of each kind).")
    var verbose = false

    var options: ReaderOptions { ReaderOptions(allowUnknownGlobals: allowUnknownGlobals) }

    func open(_ path: String) throws -> Checkpoint {
        try Checkpoint(contentsOf: path, options: options)
    }
}

struct InspectReport: Encodable {
    struct Tensor: Encodable {
        let name: String
        let dtype: String
        let shape: [Int]
        let strides: [Int]?
        let storageKey: String
        let storageOffset: Int
        let location: String
        let bytes: Int
    }
    struct Entry: Encodable {
        let key: String
        let value: String
    }
    let file: String
    let format: String
    let prefix: String?
    let byteOrder: String
    /// nil for a safetensors file.
    let pickleProtocol: Int?
    /// A safetensors file's `__metadata__`.
    let metadata: [String: String]?
    let root: String
    var topLevel: [Entry]
    let tensors: [Tensor]
    let totalTensors: Int
    let totalElements: Int
    let totalBytes: Int
    let model: ModelSection?

    /// What `convert` makes of the file (its ``ConversionPlan``): where the state dict is, what
    /// was unwrapped, stripped, kept or dropped, its size, and for a ResNet the recognised
    /// architecture and whether binding succeeds.
    struct ModelSection: Encodable {
        let root: String
        let kind: String
        let decisions: [String]
        let architecture: String?
        let numClasses: Int?
        let binding: String
        /// Tensors of the state dict `convert` writes.
        let stateDictTensors: Int
        /// Their bytes.
        let stateDictBytes: Int
        /// The parameter count (floating-point elements, BatchNorm running statistics left out).
        let parameters: Int
        /// `11.7M parameters`.
        let parametersText: String
        /// Non-tensor values `convert` keeps as JSON metadata.
        let keptValues: [String]
        /// Class names stored beside the weights.
        let classes: [String]?
    }

    init(_ c: Checkpoint) {
        file = c.file ?? "-"
        format = c.format.rawValue
        prefix = c.prefix
        byteOrder = c.byteOrder.rawValue
        pickleProtocol = c.pickleProtocol
        root = c.graph.summary(c.root)
        metadata = nil
        topLevel = c.topLevel.map { Entry(key: $0.key, value: $0.summary) }
        tensors = c.tensors.map {
            let t = $0.tensor
            return Tensor(name: $0.name, dtype: t.dtype.rawValue, shape: t.shape,
                          strides: t.isContiguous ? nil : t.strides, storageKey: t.storageKey,
                          storageOffset: t.storageOffset, location: t.location, bytes: t.nbytes)
        }
        totalTensors = c.tensors.count
        totalElements = c.totalElements
        totalBytes = c.totalBytes
        model = Self.modelSection(c.tensors, checkpoint: c)
    }

    /// A checkpoint of several files (a sharded index, a distributed checkpoint): one state dict,
    /// its tensors as the layout's reader assembled them (`storage_key` is `assembled`).
    init(file path: String, _ read: (tensors: [NamedTensor], format: WeightsFormat)) {
        file = path
        format = read.format.rawValue
        prefix = nil
        byteOrder = "little"
        pickleProtocol = nil
        metadata = nil
        root = "\(read.tensors.count) tensors across files"
        topLevel = []
        tensors = read.tensors.map {
            let t = $0.tensor
            return Tensor(name: $0.name, dtype: t.dtype.rawValue, shape: t.shape, strides: t.isContiguous ? nil : t.strides,
                          storageKey: t.storageKey.isEmpty ? "assembled" : t.storageKey, storageOffset: t.storageOffset,
                          location: "cpu", bytes: t.nbytes)
        }
        totalTensors = read.tensors.count
        totalElements = read.tensors.reduce(0) { $0 + $1.tensor.numel }
        totalBytes = read.tensors.reduce(0) { $0 + $1.tensor.nbytes }
        model = Self.modelSection(read.tensors, checkpoint: nil)
    }

    /// A distributed checkpoint: its full tensors, and its non-tensor entries among the top level.
    init(distributed dcp: DistributedCheckpoint, file path: String) {
        self.init(file: path, (dcp.tensors, .distributed))
        topLevel = dcp.nonTensorEntries.map { Entry(key: $0, value: "a pickled Python value (BytesStorageMetadata), not read") }
    }

    /// A safetensors file: its metadata, and each tensor with its byte offset in the data buffer
    /// (`storage_key` is `buffer`, `storage_offset` counts bytes).
    init(_ f: SafeTensorsFile) {
        file = f.file ?? "-"
        format = "safetensors"
        prefix = nil
        byteOrder = "little"
        pickleProtocol = nil
        metadata = f.metadata
        root = "header of \(f.headerSize) bytes, \(f.tensors.count) tensors"
        topLevel = []
        tensors = f.tensors.map {
            let t = $0.tensor
            return Tensor(name: $0.name, dtype: t.dtype.rawValue, shape: t.shape, strides: nil, storageKey: "buffer",
                          storageOffset: t.storage.range.lowerBound - f.dataOffset, location: "cpu", bytes: t.nbytes)
        }
        totalTensors = f.tensors.count
        totalElements = f.tensors.reduce(0) { $0 + $1.tensor.numel }
        totalBytes = f.totalBytes
        model = Self.modelSection(f.tensors, checkpoint: nil)
    }

    private static func modelSection(_ tensors: [NamedTensor], checkpoint: Checkpoint?) -> ModelSection? {
        guard let plan = try? ConversionPlan.make(tensors: tensors, checkpoint: checkpoint) else { return nil }
        let mapping = try? NameMapping.map(tensors)
        let binding: String
        if plan.architecture != nil {
            binding = "ok"
        } else if let mapping {
            // A ResNet stem that does not bind: why (it is converted as any state dict).
            do {
                _ = try mapping.checkBinding()
                binding = "ok"
            } catch {
                binding = "\(error)"
            }
        } else {
            binding = "not a ResNet (convert writes the state dict as it is)"
        }
        let root = plan.architecture != nil ? (mapping?.root ?? "") : StateDictSelection.select(tensors).root
        return ModelSection(root: root, kind: plan.architecture == nil ? "state-dict" : (mapping?.kind.rawValue ?? "resnet"),
                            decisions: plan.decisions.map(\.description), architecture: plan.architecture?.description,
                            numClasses: plan.architecture?.numClasses, binding: binding,
                            stateDictTensors: plan.stateDict.count,
                            stateDictBytes: plan.stateDict.reduce(0) { $0 + $1.tensor.nbytes },
                            parameters: plan.parameters, parametersText: StateDictSelection.describeParameters(plan.parameters),
                            keptValues: plan.keptValues.map(\.key), classes: plan.classes)
    }

    var text: String {
        var lines = ["file:      \(file)",
                     "format:    \(format)\(prefix.map { " (archive folder '\($0)')" } ?? "")",
                     "byteorder: \(byteOrder)" + (pickleProtocol.map { ", pickle protocol \($0)" } ?? ""),
                     "root:      \(root)"]
        if let metadata {
            lines.append("metadata:" + (metadata.isEmpty ? "  none" : ""))
            for key in metadata.keys.sorted() { lines.append("  \(key): \(metadata[key] ?? "")") }
        }
        let nonTensor = topLevel.filter { !$0.value.hasPrefix("tensor") }
        if !topLevel.isEmpty && nonTensor.count < topLevel.count && nonTensor.isEmpty {
            lines.append("           a state dict of \(topLevel.count) tensors")
        } else {
            for e in topLevel.prefix(40) { lines.append("  \(e.key): \(e.value)") }
            if topLevel.count > 40 { lines.append("  ... \(topLevel.count - 40) more") }
        }
        lines.append("")
        let width = min(max(tensors.map(\.name.count).max() ?? 4, 4), 60)
        lines.append("NAME".padding(toLength: width, withPad: " ", startingAt: 0) + "  DTYPE     SHAPE                 STORAGE        BYTES")
        // Legacy files key storages by Python object ids (`94357781391168`): shown as s0, s1, ... in
        // order of first use (the JSON keeps the keys).
        var storageNames: [String: String] = [:]
        if format == "legacy" {
            for t in tensors where storageNames[t.storageKey] == nil { storageNames[t.storageKey] = "s\(storageNames.count)" }
        }
        for t in tensors {
            var shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            if let s = t.strides { shape += " stride (" + s.map(String.init).joined(separator: ", ") + ")" }
            let storage = "\(storageNames[t.storageKey] ?? t.storageKey)+\(t.storageOffset)" + (t.location == "cpu" ? "" : " @\(t.location)")
            let columns = t.dtype.padding(toLength: 9, withPad: " ", startingAt: 0) + " "
                + shape.padding(toLength: max(21, shape.count), withPad: " ", startingAt: 0) + " "
                + storage.padding(toLength: max(14, storage.count), withPad: " ", startingAt: 0) + " "
                + Self.humanBytes(t.bytes)
            if t.name.count > width {  // a long name on its own line, so the columns stay aligned
                lines.append(t.name)
                lines.append(String(repeating: " ", count: width) + "  " + columns)
            } else {
                lines.append(t.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + columns)
            }
        }
        lines.append("")
        lines.append("total: \(totalTensors) tensors, \(Self.grouped(totalElements)) elements, \(Self.humanBytes(totalBytes))"
                     + (totalBytes >= 1024 ? " (\(Self.grouped(totalBytes)) bytes)" : ""))
        lines.append("parameters: \(Self.grouped(parameterCount)) (floating-point values, BatchNorm running statistics left out; "
                     + "\(StateDictSelection.describeParameters(parameterCount)))")
        lines.append("")
        if let m = model {
            if let arch = m.architecture {
                lines.append("model:     \(arch)" + (m.numClasses.map { ", \($0) classes" } ?? ", headless (features)")
                             + (m.kind == "detection-backbone" ? ", detection backbone" : ""))
            } else {
                lines.append("model:     a state dict (not a ResNet)")
            }
            lines.append("           \(m.parametersText), \(m.stateDictTensors) tensors, \(Self.humanBytes(m.stateDictBytes))")
            lines.append("mapping:   root '\(m.root)'")
            for d in m.decisions { lines.append("           - \(d)") }
            if let classes = m.classes {
                lines.append("classes:   \(classes.count): " + classes.prefix(5).joined(separator: ", ") + (classes.count > 5 ? ", ..." : ""))
            }
            lines.append("binding:   \(m.binding)")
        } else {
            lines.append("model:     no state dict found")
        }
        return lines.joined(separator: "\n")
    }

    /// Floating-point values of the tensors that are not BatchNorm running statistics.
    var parameterCount: Int {
        let floating: Set<String> = ["float16", "bfloat16", "float32", "float64"]
        var n = 0
        for t in tensors where floating.contains(t.dtype) {
            let last = t.name.split(separator: ".").last.map(String.init) ?? ""
            if last == "running_mean" || last == "running_var" { continue }
            n += t.shape.reduce(1, *)
        }
        return n
    }

    /// `568 B`, `97.8 MiB`.
    static func humanBytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n), unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// `25,557,032`.
    static func grouped(_ n: Int) -> String {
        let digits = Array(String(n.magnitude))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}

/// The one JSON printer of the CLI: `value` on stdout with snake-case keys and sorted keys,
/// pretty-printed or on one line; non-finite numbers (a verification report can hold them) as
/// the strings `"nan"`, `"inf"`, `"-inf"`, as ``VerificationReport/jsonEncoder`` writes them.
func printJSON<T: Encodable>(_ value: T, oneLine: Bool = false) throws {
    let encoder = VerificationReport.jsonEncoder
    encoder.outputFormatting = oneLine ? [.sortedKeys, .withoutEscapingSlashes] : [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    let data = try encoder.encode(value)
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}
