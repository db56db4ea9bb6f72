#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import StateDict
import SafeTensors
import TorchCheckpoint
import TorchportCore


/// The metadata key of the source's SHA-256.
let sourceHashKey = ConversionPlan.metadataPrefix + "source_sha256"

// MARK: - Options and results

/// How ``convertCheckpoint(from:to:options:progress:validate:)-(String,String,_,_,_)`` converts.
public struct ConversionOptions: Sendable {
    /// The dtype the floating-point weights are written in.
    public enum TargetDType: String, Sendable, CaseIterable, Codable {
        /// 32-bit IEEE float, 16-bit IEEE half, or 16-bit bfloat16 (float32's exponent, 7-bit mantissa).
        case float32, float16, bfloat16
        /// The corresponding element type.
        public var dtype: DType {
            switch self {
            case .float32: .float32
            case .float16: .float16
            case .bfloat16: .bfloat16
            }
        }
    }

    /// nil keeps every tensor's dtype (and its bytes, bit for bit).
    public var dtype: TargetDType?
    /// Replace an existing output file (never the input itself).
    public var force: Bool
    /// Bind as this architecture instead of recognising it from the shapes.
    public var architecture: ResNetArchitecture?
    /// How the input checkpoint is read (limits, trust).
    public var reader: ReaderOptions
    /// Glob patterns (`NamePattern`) on state-dict names: when not empty, only matching tensors
    /// are written.
    public var include: [NamePattern] = []
    /// Glob patterns on state-dict names: matching tensors are left out (after ``include``).
    public var exclude: [NamePattern] = []
    /// Write Hugging Face's sharded layout into the output folder: files of at most this many
    /// bytes of tensor data (`model-00001-of-00003.safetensors`, ...; a larger tensor alone) and
    /// `model.safetensors.index.json`, or a single `model.safetensors` when all fits in one.
    /// nil: one file.
    public var maxShardBytes: Int?
    /// fsync the file (and its folder) before it takes the output's name, so it also survives a
    /// power loss. Off by default, as in Python's `save_file`: the rename alone already means an
    /// interrupted or failed conversion never leaves a partial file under the output's name.
    public var durable: Bool = false
    /// The most bytes the written tensors may hold beyond their storages: a view with zero (or
    /// overlapping) strides claims more elements than its storage has, and converting writes
    /// every one of them. Real checkpoints hardly hold such views (broadcast buffers, a few KiB);
    /// a 9 KB file of them could otherwise write gigabytes. Above it: ``ConversionError/Kind/expandsTooMuch(bytes:limit:)``.
    public var maxExpansionBytes: Int = 256 << 20

    /// Creates options; the defaults keep dtypes, refuse to replace an existing output, recognise the
    /// architecture from the shapes, and do not fsync.
    public init(dtype: TargetDType? = nil, force: Bool = false, architecture: ResNetArchitecture? = nil,
                reader: ReaderOptions = .init(), durable: Bool = false) {
        self.durable = durable
        self.dtype = dtype
        self.force = force
        self.architecture = architecture
        self.reader = reader
    }
}

/// Where a conversion is, for a progress display. Reported from whichever thread does the work,
/// never concurrently.
public struct ConversionProgress: Sendable {
    /// The phase of the conversion being reported.
    public enum Stage: String, Sendable {
        /// Tensors cast to the target dtype (only with a dtype change).
        case casting
        /// The tensors being written.
        case writing
        /// Tensors of the written file read back and compared with the source.
        case checking
    }
    /// The current phase.
    public var stage: Stage
    /// Tensors done so far in this stage.
    public var tensors: Int
    /// Tensors this stage handles in all.
    public var totalTensors: Int
    /// Bytes of tensor data done so far in this stage.
    public var bytes: Int
    /// Bytes of tensor data this stage handles in all.
    public var totalBytes: Int
}

/// What a conversion wrote.
public struct ConversionSummary: Sendable, Codable {
    /// The input path, as given.
    public var input: String
    /// The output path, as given.
    public var output: String
    /// Tensors written (the canonical state dict).
    public var tensors: Int
    /// Bytes of tensor data written.
    public var bytes: Int
    /// Size of the output file.
    public var fileBytes: Int
    /// The dtype of the floating-point tensors written (integer counters aside); nil when they
    /// differ (the `torchport.dtype` metadata says `mixed`).
    public var dtype: DType?
    /// Tensors whose dtype changed.
    public var castTensors: Int
    /// The ResNet the state dict binds to (`torchport.arch` metadata: `resnet50`, or a structural
    /// description); nil for any other model.
    public var architecture: ResNetArchitecture?
    /// A ResNet's classes; nil for a headless backbone or another model.
    public var numClasses: Int?
    /// The parameter count people quote (floating-point elements, BatchNorm statistics left out).
    public var parameters: Int
    /// The checkpoint's non-tensor values kept as JSON metadata (`torchport.checkpoint.<key>`).
    public var keptValues: [String]
    /// SHA-256 of the input file, 64 lowercase hex digits (the `torchport.source_sha256` metadata).
    public var sourceSHA256: String
    /// The input's format.
    public var sourceFormat: WeightsFormat
    /// The name-mapping decisions (prefixes stripped, wrappers unwrapped, buffers dropped).
    public var decisions: [MappingDecision]
    /// The metadata written to the file.
    public var metadata: [String: String]
    /// Wall-clock duration of the whole conversion, in seconds.
    public var seconds: Double
    /// With ``ConversionOptions/maxShardBytes``: the files written in the output folder (shards,
    /// then the index when there are several); empty for a single output file.
    public var files: [String] = []
}

/// A conversion that did not produce a file. Errors from reading the input
/// (`CheckpointError`, `SafeTensorsError`) and from binding (`BindingError`) pass through as they
/// are; these are the conversion's own.
public struct ConversionError: TorchportError {
    /// Why the conversion stopped.
    public enum Kind: Sendable, Equatable {
        /// The output exists and `force` is off.
        case outputExists
        /// The output is the input file (same device and inode), whatever the path says.
        case outputIsInput
        /// The output names a directory or something else that is not a regular file.
        case outputNotAFile
        /// The input changed (size, time or identity) while it was being converted.
        case inputChanged
        /// The written file, read back, differs from what was meant to be written.
        case checkFailed(tensor: String?, reason: String)
        /// A tensor of the state dict cannot be converted (an integer tensor where a ResNet
        /// has floating-point weights).
        case unsupportedTensor(name: String, dtype: DType)
        /// Views with zero or overlapping strides would write `bytes` more than their storages
        /// hold, above ``ConversionOptions/maxExpansionBytes`` (`limit`). Nothing was written.
        case expandsTooMuch(bytes: Int, limit: Int)
        /// Nothing to write: no tensor in the state dict (of `total` tensors in the input), e.g.
        /// `--include` patterns that match none.
        case noTensors(total: Int)
        /// An I/O failure (create, write, sync, rename), with the system's message.
        case io(String)
    }

    /// What went wrong.
    public var kind: Kind
    /// The file concerned.
    public var file: String

    /// Creates an error of `kind` about `file`.
    public init(_ kind: Kind, file: String) {
        self.kind = kind
        self.file = file
    }

    /// A staging file's failure: an existing output is ``Kind/outputExists``, the rest I/O.
    init(_ error: FileWriteError) {
        self.init(error.kind == .destinationExists ? .outputExists : .io(error.reason), file: error.location.file ?? "")
    }

    /// True for refusals about the output (nothing was read or written): exit status 2.
    public var isRefusal: Bool {
        switch kind {
        case .outputExists, .outputIsInput, .outputNotAFile: true
        default: false
        }
    }

    /// What went wrong, in one sentence.
    public var reason: String {
        switch kind {
        case .outputExists: "output exists (use --force to replace it)"
        case .outputIsInput: "output is the input file; refusing to overwrite it"
        case .outputNotAFile: "output exists and is not a regular file"
        case .inputChanged: "input changed while it was being converted; nothing written"
        case .checkFailed(let tensor, let reason):
            "written file failed its check" + (tensor.map { " at tensor '\($0)'" } ?? "") + ": \(reason)"
        case .unsupportedTensor(let name, let dtype): "tensor '\(name)' has dtype \(dtype.rawValue); a ResNet's weights are floating point"
        case .expandsTooMuch(let bytes, let limit):
            "its tensors are views that would expand to \(bytes) bytes beyond their storages, over the "
                + "\(limit)-byte budget (ConversionOptions.maxExpansionBytes); nothing written"
        case .noTensors(let total): "no tensor to write (the input holds \(total); check --include / --exclude); nothing written"
        case .io(let message): "\(message)"
        }
    }

    /// The file concerned.
    public var location: ErrorLocation { ErrorLocation(file: file) }

    /// The file, then what went wrong, in one line.
    public var description: String { "\(file): \(reason)" }
}

// MARK: - Conversion

/// Converts a checkpoint (any file ``readTensors(_:options:)-(String,_)`` reads: zip, legacy, TorchScript, a
/// whole-model pickle, or a `.safetensors`) to a `.safetensors` file holding the state dict of the
/// model inside, any model, every tensor under its `state_dict()` name and bit-identical (so
/// `load_state_dict(strict=True)` takes it), with Torchport's metadata (docs/safetensors.md).
/// The plan (``ConversionPlan``) says what is kept, dropped and unwrapped; a ResNet is also
/// recognised (`torchport.arch`).
///
/// ```swift
/// let summary = try convertCheckpoint(from: "resnet50.pth", to: "resnet50.safetensors")
/// print(summary.architecture, summary.tensors, summary.sourceSHA256)
/// ```
///
/// Steps, each of which stops the conversion with nothing left behind:
/// 1. The output is refused when it is the input (same device and inode, through links too), not a
///    regular file, or exists without `force`.
/// 2. The input is mapped read-only; one thread hashes all of it (SHA-256, for
///    `torchport.source_sha256`) while the tensors are read and the state dict found
///    (``ConversionPlan/make(tensors:checkpoint:architecture:include:exclude:file:)``; a forced
///    architecture must bind).
/// 3. Tensors are cast when `options.dtype` asks (`FloatCast`, torch's rounding).
/// 4. The file is written as `OUT.partial-<random>`, created exclusively next to the output:
///    header and data order from `SafeTensorsWriter.layout(_:metadata:order:)`, the data while
///    the input is still being hashed, the header (with `source_sha256`) last.
/// 5. The file is read back: every tensor's bytes compared byte for byte with the bytes it was
///    written from (the source's, or the cast ones) while the input's hash completes, then (while
///    the file is synced to disk, with `durable`) its header validated in full (`SafeTensorsFile`),
///    its metadata and every tensor's name, dtype, shape and offset compared. Then `validate` runs
///    on it (e.g. a golden verification).
/// 6. The input is checked to be unchanged (identity, size, times), and the file takes the output's
///    name: a rename with `force`, otherwise a hard link that fails if the output appeared
///    meanwhile. The folder is synced.
///
/// This is `SafeTensorsWriter.writeAtomically(_:metadata:order:to:)`'s recipe (temporary file
/// in the folder, sync, rename) with the read-back check between the write and the rename, where
/// `writeAtomically` has no room for it.
///
/// On any failure the staging file is removed and an existing output is untouched. A process
/// killed mid-way can leave an `OUT.partial-*`; a signal handler can call
/// ``ConversionCleanup/removeFilesInProgress(in:)`` (the CLI does).
///
/// - Parameters:
///   - input: the checkpoint (`.pth`/`.pt`, any format the reader reads) or `.safetensors` file.
///   - output: the `.safetensors` file to write.
///   - options: target dtype, `force`, architecture override, reader options, durability.
///   - progress: called as the work advances (casting, writing, checking).
///   - validate: called with the path of the written, checked file before it takes the output's
///     name; an error it throws aborts the conversion and is rethrown.
public func convertCheckpoint(from input: URL, to output: URL, options: ConversionOptions = .init(),
                              progress: (@Sendable (ConversionProgress) -> Void)? = nil,
                              validate: ((String) throws -> Void)? = nil) throws -> ConversionSummary {
    try convertCheckpoint(from: input.path, to: output.path, options: options, progress: progress, validate: validate)
}

/// Converts the checkpoint at path `input` to `output`; see ``convertCheckpoint(from:to:options:progress:validate:)-(URL,URL,_,_,_)``.
public func convertCheckpoint(from input: String, to output: String, options: ConversionOptions = .init(),
                              progress: (@Sendable (ConversionProgress) -> Void)? = nil,
                              validate: ((String) throws -> Void)? = nil) throws -> ConversionSummary {
    let start = DispatchTime.now().uptimeNanoseconds
    let before = try FileIdentity(path: input)
    if let limit = options.maxShardBytes {
        return try convertSharded(from: input, toFolder: output, maxShardBytes: limit, options: options, before: before,
                                  start: start, progress: progress)
    }
    try checkOutput(output, input: before, force: options.force)

    let file: StagingFile
    do { file = try StagingFile.create(for: output) } catch { throw ConversionError(error) }
    let staging = file.path
    ConversionCleanup.register(staging)
    defer { ConversionCleanup.unregister(staging) }
    do {
        var written = try writeStaging(input: input, staging: file, options: options, progress: progress)
        // With `durable`, the file goes to disk while its header is read back and checked.
        let synced = options.durable ? Background { () throws in do throws(FileWriteError) { try file.sync() } catch { throw ConversionError(error) } } : nil
        let checked = Result { try checkHeader(staging, against: written) }
        try synced?.value()
        try checked.get()
        let tensorCount = written.expected.count
        written.expected = []  // the source's bytes are no longer needed: unmap before validating
        try validate?(staging)
        guard try FileIdentity(path: input) == before else { throw ConversionError(.inputChanged, file: input) }
        do { try file.place(replace: options.force, durable: options.durable) } catch { throw ConversionError(error) }
        let fileBytes = (try? FileIdentity(path: output).size) ?? 0
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return ConversionSummary(
            input: input, output: output, tensors: tensorCount, bytes: written.dataBytes,
            fileBytes: fileBytes, dtype: written.dtype, castTensors: written.castTensors,
            architecture: written.architecture, numClasses: written.architecture?.numClasses,
            parameters: written.parameters, keptValues: written.keptValues,
            sourceSHA256: written.metadata[sourceHashKey] ?? "", sourceFormat: written.sourceFormat,
            decisions: written.decisions, metadata: written.metadata, seconds: seconds)
    } catch {
        file.discard()
        throw error
    }
}

/// ``convertCheckpoint(from:to:options:progress:validate:)-(String,String,_,_,_)`` into a folder
/// of shards and `model.safetensors.index.json` (``ConversionOptions/maxShardBytes``). Every
/// file is staged, written, read back and checked before any takes its name; on any failure
/// none is left behind. The summary's `fileBytes` sums the files.
private func convertSharded(from input: String, toFolder folder: String, maxShardBytes: Int, options: ConversionOptions,
                            before: FileIdentity, start: UInt64,
                            progress: (@Sendable (ConversionProgress) -> Void)?) throws -> ConversionSummary {
    guard maxShardBytes > 0 else { throw ConversionError(.io("the shard size must be positive"), file: folder) }
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) {
        guard isDir.boolValue else { throw ConversionError(.outputNotAFile, file: folder) }
    } else {
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw ConversionError(.io("cannot create the folder: \(error.localizedDescription)"), file: folder)
        }
    }
    let indexName = "model.safetensors.index.json"
    var files: [StagingFile] = []
    defer { for f in files { ConversionCleanup.unregister(f.path) } }
    func stage(_ target: String) throws -> StagingFile {
        try checkOutput(target, input: before, force: options.force)
        let file: StagingFile
        do { file = try StagingFile.create(for: target) } catch { throw ConversionError(error) }
        ConversionCleanup.register(file.path)
        files.append(file)
        return file
    }
    do {
        var written = try writeStaging(input: input, options: options, maxShardBytes: maxShardBytes, progress: progress) { i, n in
            let name = n == 1 ? "model.safetensors" : String(format: "model-%05d-of-%05d.safetensors", i + 1, n)
            return try stage((folder as NSString).appendingPathComponent(name))
        }
        let shardFiles = files
        for (f, w) in zip(shardFiles, written) {
            try checkHeader(f.path, against: w)
            if options.durable { do { try f.sync() } catch { throw ConversionError(error) } }
        }
        let tensorCount = written.reduce(0) { $0 + $1.expected.count }
        let dataBytes = written.reduce(0) { $0 + $1.dataBytes }
        var names: [String] = []
        if shardFiles.count > 1 {
            // Hugging Face's index: total_size, and every tensor's shard (keys sorted, as it writes them).
            var map: [(String, String)] = []
            for (f, w) in zip(shardFiles, written) {
                let shard = (f.destination as NSString).lastPathComponent
                names.append(shard)
                for e in w.expected { map.append((e.name, shard)) }
            }
            map.sort { $0.0 < $1.0 }
            let body = map.map { "    \(PickleGraph.jsonLiteral($0.0)): \(PickleGraph.jsonLiteral($0.1))" }.joined(separator: ",\n")
            let json = "{\n  \"metadata\": {\n    \"total_size\": \(dataBytes)\n  },\n  \"weight_map\": {\n\(body)\n  }\n}\n"
            let index = try stage((folder as NSString).appendingPathComponent(indexName))
            let fd: Int32
            do { fd = try index.openForWriting() } catch { throw ConversionError(error) }
            defer { close(fd) }
            try Array(json.utf8).withUnsafeBytes { try writeFully(fd, $0, at: 0, path: index.path) }
            if options.durable { do { try index.sync() } catch { throw ConversionError(error) } }
        } else {
            names = shardFiles.map { ($0.destination as NSString).lastPathComponent }
        }
        for i in written.indices { written[i].expected = [] }  // unmap the source before placing
        guard try FileIdentity(path: input) == before else { throw ConversionError(.inputChanged, file: input) }
        var placed: [StagingFile] = []
        do {
            for f in files {
                try f.place(replace: options.force, durable: options.durable)
                placed.append(f)
            }
        } catch {
            for f in placed { unlink(f.destination) }
            throw ConversionError(error)
        }
        let fileBytes = files.reduce(0) { $0 + ((try? FileIdentity(path: $1.destination).size) ?? 0) }
        let first = written[0]
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return ConversionSummary(
            input: input, output: folder, tensors: tensorCount, bytes: dataBytes,
            fileBytes: fileBytes, dtype: first.dtype, castTensors: first.castTensors,
            architecture: first.architecture, numClasses: first.architecture?.numClasses,
            parameters: first.parameters, keptValues: first.keptValues,
            sourceSHA256: first.metadata[sourceHashKey] ?? "", sourceFormat: first.sourceFormat,
            decisions: first.decisions, metadata: first.metadata, seconds: seconds, files: names)
    } catch {
        for f in files { f.discard() }
        throw error
    }
}

/// What was written, for the check after reading it back.
struct Written {
    struct Expected {
        let name: String
        let dtype: DType
        let shape: [Int]
        /// The bytes that were meant to be written: the cast bytes, or the source tensor itself.
        let bytes: Payload
    }
    var expected: [Expected]
    var metadata: [String: String]
    var decisions: [MappingDecision]
    var architecture: ResNetArchitecture?
    var parameters: Int
    var keptValues: [String]
    var sourceFormat: WeightsFormat
    var dtype: DType?
    var castTensors: Int
    var dataBytes: Int
    /// Where each expected tensor's data starts in the file (the draft layout's offsets, which the
    /// data check compared at and the header must name).
    var fileOffsets: [String: Int]
}

/// Maps the input, hashes it, reads, maps names, binds, casts and writes `staging` (not yet
/// synced). The whole file's SHA-256 is computed on another thread while the checkpoint is parsed,
/// mapped, cast and the tensor data written; the header, which holds it, goes in last.
/// `SafeTensorsWriter.layout(_:metadata:order:)` makes the header and the data order (the
/// format's rules and checks live there); this only puts the bytes at their offsets.
private func writeStaging(input: String, staging file: StagingFile, options: ConversionOptions,
                          progress: (@Sendable (ConversionProgress) -> Void)?) throws -> Written {
    let written = try writeStaging(input: input, options: options, maxShardBytes: nil, progress: progress) { _, _ in file }
    guard let only = written.first, written.count == 1 else {
        throw ConversionError(.io("\(written.count) files planned for one output"), file: file.path)
    }
    return only
}

/// Like ``writeStaging(input:staging:options:progress:)``, into several files when
/// `maxShardBytes` splits the tensors (in state-dict order, a new file when the next tensor would
/// pass the limit; a larger tensor alone): `staging(i, n)` gives the staging file of file `i` of `n`.
private func writeStaging(input: String, options: ConversionOptions, maxShardBytes: Int?,
                          progress: (@Sendable (ConversionProgress) -> Void)?,
                          staging makeStaging: (Int, Int) throws -> StagingFile) throws -> [Written] {
    // A sharded index or a distributed checkpoint is read by its own reader (its tensors are
    // views of several maps); its identifying file (the index, `.metadata`) is hashed on its own.
    let layout = CheckpointLayout.detect(input)
    let single = if case .file? = layout { true } else { false }
    let bytes = single ? try FileBytes.map(path: input) : FileBytes.owned([])
    let hashed = layout?.identifyingFile ?? input
    // Without a cast, one read-only map serves the file hash and the tensors (their pages are read
    // once, and stay for the check). With one, each source tensor's pages are released once it is
    // cast, so the hash reads the file on its own instead of bringing them back.
    let casting = options.dtype != nil
    let sourceHash = Background { () -> String in
        if casting || !single { return try sha256(ofFileAt: hashed) }
        var h = SHA256()
        var offset = 0
        while offset < bytes.count {  // in 4 MiB steps, so pages are faulted in as they are hashed
            let n = min(1 << 22, bytes.count - offset)
            h.update(UnsafeRawBufferPointer(rebasing: bytes.bytes[offset..<(offset + n)]))
            offset += n
        }
        return Hex.string(h.finalize())
    }
    defer { _ = try? sourceHash.value() }  // never leave the thread reading a map we gave up on

    let tensors: [NamedTensor], sourceFormat: WeightsFormat, checkpoint: Checkpoint?
    var layoutDecisions: [MappingDecision] = []
    if case .distributed(let folder)? = layout {
        let dcp = try DistributedCheckpoint(folder: folder, options: options.reader)
        (tensors, sourceFormat, checkpoint) = (dcp.tensors, .distributed, nil)
        layoutDecisions = dcp.nonTensorEntries.map {
            .droppedValue($0, reason: "a pickled Python value of the distributed checkpoint (BytesStorageMetadata), not read")
        }
    } else if !single {
        (tensors, sourceFormat) = try readTensors(input, options: options.reader)
        checkpoint = nil
    } else if SafeTensorsSignature.matches(bytes.bytes, fileSize: bytes.count) {  // the map already holds the bytes
        tensors = try SafeTensorsFile(bytes: bytes, name: input).tensors
        sourceFormat = .safetensors
        checkpoint = nil
    } else {
        let c = try Checkpoint(bytes: bytes, name: input, options: options.reader)
        tensors = c.tensors
        sourceFormat = c.format
        checkpoint = c
    }
    var plan = try ConversionPlan.make(tensors: tensors, checkpoint: checkpoint, architecture: options.architecture,
                                       include: options.include, exclude: options.exclude, file: input)
    plan.decisions += layoutDecisions
    let architecture = plan.architecture
    guard !plan.stateDict.isEmpty else { throw ConversionError(.noTensors(total: tensors.count), file: input) }

    // Views that claim more elements than their storages hold (zero strides) are written in full:
    // bounded before anything is allocated or written.
    var expansion = 0
    for (_, t) in plan.stateDict {
        // Saturating: a caller's ReaderLimits.maxElements may allow element counts near Int.max.
        let (logical, overflow) = t.numel.multipliedReportingOverflow(by: (options.dtype?.dtype ?? t.dtype).size)
        let (sum, sumOverflow) = expansion.addingReportingOverflow(overflow ? Int.max : max(0, logical - t.storage.count))
        expansion = sumOverflow ? Int.max : sum
        if expansion > options.maxExpansionBytes {
            throw ConversionError(.expandsTooMuch(bytes: expansion, limit: options.maxExpansionBytes), file: input)
        }
    }

    // Cast where asked; everything else is written from the source's own bytes.
    let target = options.dtype?.dtype
    var entries: [SafeTensorsWriter.Entry] = []
    var payloads: [Payload] = []
    entries.reserveCapacity(plan.stateDict.count)
    payloads.reserveCapacity(plan.stateDict.count)
    var castTensors = 0
    let totalBytes = plan.stateDict.reduce(0) { total, item in
        total + item.tensor.numel * (target.flatMap { FloatCast.canCast(from: item.tensor.dtype, to: $0) ? $0 : nil } ?? item.tensor.dtype).size
    }
    var doneBytes = 0
    for (i, (name, t)) in plan.stateDict.enumerated() {
        if let target, t.dtype != target, let cast = FloatCast.cast(t, to: target) {
            entries.append(.init(name: name, dtype: target, shape: t.shape, bytes: cast))
            payloads.append(.bytes(cast))
            releasePages(of: t, in: bytes)
            castTensors += 1
            doneBytes += cast.count
            progress?(.init(stage: .casting, tensors: i + 1, totalTensors: plan.stateDict.count,
                            bytes: doneBytes, totalBytes: totalBytes))
        } else {
            entries.append(.init(name: name, tensor: t))
            payloads.append(.record(t))
            doneBytes += t.nbytes
        }
    }
    // The dtype of the weights: the floating-point tensors' (integer counters aside), when they share one.
    let floating = entries.filter { $0.dtype.isFloatingPoint }
    let dtypes = Set((floating.isEmpty ? entries : floating).map(\.dtype))
    var metadata = plan.metadata(sourceFormat: sourceFormat.rawValue,
                                 dtype: dtypes.count == 1 ? dtypes.first?.rawValue ?? "mixed" : "mixed")
    metadata[sourceHashKey] = String(repeating: "0", count: 64)  // a placeholder of the same length
    // Shards: consecutive tensors up to the limit each.
    var groups: [Range<Int>] = []
    var groupStart = 0, groupBytes = 0
    for (i, e) in entries.enumerated() {
        let n = payloads[i].count
        if let limit = maxShardBytes, i > groupStart, groupBytes + n > limit {
            groups.append(groupStart..<i)
            groupStart = i
            groupBytes = 0
        }
        groupBytes += n
        _ = e
    }
    groups.append(groupStart..<entries.count)

    // The data goes out while the input is still being hashed; the header, which holds the hash,
    // is written last over the space its placeholder version reserved.
    struct Open { let file: StagingFile; let fd: Int32; let entries: [SafeTensorsWriter.Entry]; let prefix: Int
                  let expected: [Written.Expected]; let offsets: [String: Int]; let bytes: Int }
    var opened: [Open] = []
    defer { for o in opened { close(o.fd) } }
    var doneTensors = 0, doneData = 0
    for (g, range) in groups.enumerated() {
        let file = try makeStaging(g, groups.count)
        let groupEntries = Array(entries[range]), groupPayloads = Array(payloads[range])
        let draft = try SafeTensorsWriter.layout(groupEntries, metadata: metadata)
        let staging = file.path
        let fd: Int32
        do { fd = try file.openForWriting() } catch { throw ConversionError(error) }
        let expected = zip(groupEntries, groupPayloads).map { Written.Expected(name: $0.name, dtype: $0.dtype, shape: $0.shape, bytes: $1) }
        var offset = draft.prefix.count
        var fileOffsets: [String: Int] = [:]
        opened.append(Open(file: file, fd: fd, entries: groupEntries, prefix: draft.prefix.count, expected: expected,
                           offsets: [:], bytes: draft.dataSize))
        FilePreallocation.reserve(fd, bytes: draft.prefix.count + draft.dataSize)
        let payloadByName = Dictionary(zip(groupEntries.map(\.name), groupPayloads), uniquingKeysWith: { a, _ in a })
        for e in draft.entries {
            guard let payload = payloadByName[e.name] else { throw ConversionError(.io("lost tensor \(e.name)"), file: staging) }
            fileOffsets[e.name] = offset
            try payload.withContiguousBytes { try writeFully(fd, $0, at: offset, path: staging) }
            offset += payload.count
            doneTensors += 1
            doneData += payload.count
            progress?(.init(stage: .writing, tensors: doneTensors, totalTensors: entries.count,
                            bytes: doneData, totalBytes: totalBytes))
        }
        // The data is read back and compared while the hash completes.
        try checkData(staging, expected: expected, offsets: fileOffsets, totalBytes: draft.dataSize, progress: progress)
        opened[opened.count - 1] = Open(file: file, fd: fd, entries: groupEntries, prefix: draft.prefix.count,
                                        expected: expected, offsets: fileOffsets, bytes: draft.dataSize)
    }
    metadata[sourceHashKey] = try sourceHash.value()
    var written: [Written] = []
    for o in opened {
        let header = try SafeTensorsWriter.layout(o.entries, metadata: metadata).prefix
        guard header.count == o.prefix else {
            throw ConversionError(.io("header changed size (\(o.prefix) -> \(header.count))"), file: o.file.path)
        }
        try header.withUnsafeBytes { try writeFully(o.fd, $0, at: 0, path: o.file.path) }
        written.append(Written(expected: o.expected, metadata: metadata, decisions: plan.decisions,
                               architecture: architecture, parameters: plan.parameters, keptValues: plan.keptValues.map(\.key),
                               sourceFormat: sourceFormat, dtype: dtypes.count == 1 ? dtypes.first : nil,
                               castTensors: castTensors, dataBytes: o.bytes, fileOffsets: o.offsets))
    }
    return written
}

/// Reads `path`'s header back and compares it with what was meant to be written: validated in
/// full (`SafeTensorsFile`), the same metadata, the same tensors by name, dtype and shape, each at
/// the offset its bytes were written and compared at (`checkData`).
func checkHeader(_ path: String, against written: Written) throws {
    let file = try SafeTensorsFile(contentsOf: path)
    func fail(_ tensor: String?, _ reason: String) -> ConversionError {
        ConversionError(.checkFailed(tensor: tensor, reason: reason), file: path)
    }
    guard file.metadata == written.metadata else { throw fail(nil, "metadata differs") }
    guard file.tensors.count == written.expected.count else {
        throw fail(nil, "\(file.tensors.count) tensors, expected \(written.expected.count)")
    }
    var byName: [String: TensorRecord] = [:]
    for t in file.tensors { byName[t.name] = t.tensor }
    for e in written.expected {
        guard let t = byName[e.name] else { throw fail(e.name, "missing") }
        guard t.dtype == e.dtype, t.shape == e.shape, t.nbytes == e.bytes.count else {
            throw fail(e.name, "\(t.dtype.rawValue) \(t.shape), expected \(e.dtype.rawValue) \(e.shape)")
        }
        // A safetensors record views the whole map: its range starts at the tensor's first byte.
        guard t.storage.range.lowerBound == written.fileOffsets[e.name] else {
            throw fail(e.name, "at byte \(t.storage.range.lowerBound), written at \(written.fileOffsets[e.name] ?? -1)")
        }
    }
}

/// Reads every tensor's bytes back from `path` (at `offsets`) and compares them byte for byte with
/// the bytes they were written from (the source's, or the cast ones). The data is read with
/// `pread` in 4 MiB pieces on two threads, so the written file adds no more than the buffers to
/// the process's memory.
func checkData(_ path: String, expected: [Written.Expected], offsets: [String: Int], totalBytes: Int,
               progress: (@Sendable (ConversionProgress) -> Void)?) throws {
    @Sendable func fail(_ tensor: String?, _ reason: String) -> ConversionError {
        ConversionError(.checkFailed(tensor: tensor, reason: reason), file: path)
    }
    var work: [(expected: Written.Expected, offset: Int)] = []
    for e in expected {
        guard let offset = offsets[e.name] else { throw fail(e.name, "not written") }
        work.append((e, offset))
    }

    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ConversionError(.io("cannot open: \(String(cString: strerror(errno)))"), file: path) }
    defer { close(fd) }
    let report = ProgressCounter(total: work.count, totalBytes: totalBytes, progress: progress)
    let workers = 2
    let failures = UnsafeMutableBufferPointer<ConversionError?>.allocate(capacity: workers)
    failures.initialize(repeating: nil)
    defer { failures.deallocate() }
    nonisolated(unsafe) let failed = failures
    let items = work
    DispatchQueue.concurrentPerform(iterations: workers) { w in
        let chunk = 1 << 22
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        for i in stride(from: w, to: items.count, by: workers) {
            let (e, offset) = items[i]
            let problem: String? = e.bytes.withContiguousBytes { expected in
                var done = 0
                while done < expected.count {
                    let n = min(chunk, expected.count - done)
                    let got = pread(fd, buffer.baseAddress, n, off_t(offset + done))
                    if got < 0 && errno == EINTR { continue }
                    guard got == n else { return got < 0 ? "cannot read: \(String(cString: strerror(errno)))" : "short read" }
                    if memcmp(buffer.baseAddress!, expected.baseAddress! + done, n) != 0 {
                        let at = (0..<n).first { buffer[$0] != expected[done + $0] } ?? 0
                        return "byte \(done + at) of \(expected.count) differs from the source"
                    }
                    done += n
                }
                return nil
            }
            if let problem {
                failed[w] = fail(e.name, problem)
                return
            }
            report.add(bytes: e.bytes.count)
        }
    }
    if let failure = failures.compactMap({ $0 }).first { throw failure }
}

// MARK: - Files

/// A file's identity and the attributes that change when it is written.
private struct FileIdentity: Equatable {
    let device: UInt64
    let inode: UInt64
    let size: Int
    let modified: Int64
    let changed: Int64
    let isRegular: Bool

    init(path: String, followLinks: Bool = true) throws {
        var st = stat()
        let r = followLinks ? stat(path, &st) : lstat(path, &st)
        guard r == 0 else { throw ConversionError(.io("cannot stat: \(String(cString: strerror(errno)))"), file: path) }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int(st.st_size)
        modified = st.modificationNanoseconds
        changed = st.statusChangeNanoseconds
        isRegular = (st.st_mode & S_IFMT) == S_IFREG
    }

    func isSameFile(as other: FileIdentity) -> Bool { device == other.device && inode == other.inode }
}

/// Refuses an output that is the input, is not a regular file, or exists without `force`.
private func checkOutput(_ output: String, input: FileIdentity, force: Bool) throws {
    var st = stat()
    guard lstat(output, &st) == 0 else {
        guard errno == ENOENT else {
            throw ConversionError(.io("cannot stat: \(String(cString: strerror(errno)))"), file: output)
        }
        return
    }
    // Through a link too: replacing a link to the input would not touch the input, but is
    // surely a mistake.
    if let target = try? FileIdentity(path: output), target.isSameFile(as: input) {
        throw ConversionError(.outputIsInput, file: output)
    }
    guard (st.st_mode & S_IFMT) == S_IFREG || (st.st_mode & S_IFMT) == S_IFLNK else {
        throw ConversionError(.outputNotAFile, file: output)
    }
    if !force { throw ConversionError(.outputExists, file: output) }
}

/// SHA-256 of a file, read in 4 MiB pieces (not mapped: its pages do not count against the process).
private func sha256(ofFileAt path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ConversionError(.io("cannot open: \(String(cString: strerror(errno)))"), file: path) }
    defer { close(fd) }
    let chunk = 1 << 22
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
    defer { buffer.deallocate() }
    var hash = SHA256()
    while true {
        let n = read(fd, buffer.baseAddress, chunk)
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { throw ConversionError(.io("cannot read: \(String(cString: strerror(errno)))"), file: path) }
        if n == 0 { break }
        hash.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
    }
    return Hex.string(hash.finalize())
}

/// Drops the pages holding `tensor`'s bytes from the process when they are part of `map`, a
/// read-only map of a file that is never written: touched again, they are read again from the
/// file, so only the resident memory changes. Other memory (inflated or byte-swapped storages) is
/// left alone.
private func releasePages(of tensor: TensorRecord, in map: FileBytes) {
    guard tensor.storage.owner === map, let view = tensor.contiguousView, let base = view.buffer.baseAddress else { return }
    MemoryPages.release(UnsafeRawBufferPointer(start: base, count: view.count))
}

/// Writes all of `buffer` at `offset` of `fd`.
private func writeFully(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: Int, path: String) throws {
    do { try StagingFile.writeFully(fd, buffer, at: offset, path: path) } catch { throw ConversionError(error) }
}

/// The staging files of conversions in progress, so that a signal handler can remove them.
public enum ConversionCleanup {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var inProgress: Set<String> = []

    /// The same paths as C strings in fixed slots, for a handler of a synchronous signal (SIGBUS
    /// when the input shrinks under its memory map), which may call only async-signal-safe
    /// functions. A slot's string is never freed (a slot may be read by a handler at any time).
    private static let slotCount = 64
    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let p = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: slotCount)
        p.initialize(repeating: nil, count: slotCount)
        return p
    }()

    static func register(_ staging: String) {
        lock.lock()
        inProgress.insert(staging)
        if let free = (0..<slotCount).first(where: { slots[$0] == nil }) { slots[free] = strdup(staging) }
        lock.unlock()
    }

    static func unregister(_ staging: String) {
        lock.lock()
        inProgress.remove(staging)
        if let i = (0..<slotCount).first(where: { slots[$0].map { String(cString: $0) == staging } ?? false }) { slots[i] = nil }
        lock.unlock()
    }

    /// On SIGBUS (a memory-mapped input truncated or replaced while it is read: the page behind a
    /// read is gone): removes the files of conversions in progress, says what happened on standard
    /// error, and lets the process die of the signal. Reads of a map cannot be turned into errors
    /// from Swift; this is what remains (`docs/security.md`).
    public static func installInputFaultHandler() {
        _ = slots  // initialised now, not inside the handler
        var action = sigaction()
        #if os(Linux)
        action.__sigaction_handler.sa_handler = { _ in ConversionCleanup.inputFault() }
        #else
        action.__sigaction_u.__sa_handler = { _ in ConversionCleanup.inputFault() }
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGBUS, &action, nil)
    }

    /// Async-signal-safe only: unlink, write, signal, raise.
    private static func inputFault() {
        for i in 0..<slotCount { if let p = slots[i] { unlink(p) } }
        let message: StaticString = "torchport: the input file changed while it was being read (truncated or replaced?); any unfinished output was removed\n"
        _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
        signal(SIGBUS, SIG_DFL)
        raise(SIGBUS)  // delivered on return; a real fault would also recur there
    }

    /// Removes the files of conversions in progress (their staging files). For signal handlers
    /// (from a normal thread, e.g. a `DispatchSourceSignal`), just before the process exits.
    /// `folder` limits it to the conversions writing there (tests run several at once).
    public static func removeFilesInProgress(in folder: String? = nil) {
        lock.lock()
        let paths = inProgress
        lock.unlock()
        for p in paths where folder.map({ p.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) ?? true { unlink(p) }
    }
}

// MARK: - Concurrency helpers

/// A value computed on another thread, waited for with ``value()``.
private final class Background<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, Error>?
    private var work: (@Sendable () throws -> T)?

    init(_ work: @escaping @Sendable () throws -> T) {
        self.work = work
        Thread.detachNewThread { [self] in
            result = Result { try self.work!() }
            self.work = nil  // what the work captured (mapped files) is released before anyone waits
            done.signal()
        }
    }

    /// Waits for the result; may be called more than once. `result` is read only after the
    /// worker's signal (reading it before, as this once did, raced the worker's write: a torn
    /// `Result` crashed the process when a hostile input failed as fast as its hash finished).
    func value() throws -> T {
        waitLock.lock()
        defer { waitLock.unlock() }
        if !waited {
            done.wait()
            waited = true
        }
        guard let result else { throw ConversionError(.io("background work ended without a result"), file: "") }
        return try result.get()
    }
    private let waitLock = NSLock()
    private var waited = false
}

/// Progress of work done on several threads, reported one call at a time.
private final class ProgressCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var tensors = 0, bytes = 0
    private let total: Int, totalBytes: Int
    private let progress: (@Sendable (ConversionProgress) -> Void)?

    init(total: Int, totalBytes: Int, progress: (@Sendable (ConversionProgress) -> Void)?) {
        self.total = total
        self.totalBytes = totalBytes
        self.progress = progress
    }

    func add(bytes n: Int) {
        guard let progress else { return }
        lock.lock()
        defer { lock.unlock() }
        tensors += 1
        bytes += n
        progress(.init(stage: .checking, tensors: tensors, totalTensors: total, bytes: bytes, totalBytes: totalBytes))
    }
}

/// A tensor's bytes as written: cast bytes, or the source record itself.
enum Payload: Sendable {
    case bytes([UInt8])
    case record(TensorRecord)

    var count: Int {
        switch self {
        case .bytes(let b): b.count
        case .record(let r): r.nbytes
        }
    }

    func withContiguousBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch self {
        case .bytes(let b): try b.withUnsafeBytes(body)
        case .record(let r): try r.withContiguousBytes(body)
        }
    }
}
