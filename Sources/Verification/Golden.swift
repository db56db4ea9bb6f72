import Conversion
import Foundation
import TorchCheckpoint
import TorchportCore

/// What PyTorch computed for one input batch, read from a golden file written by real PyTorch:
///
/// ```python
/// torch.save({"input": x, "logits": model(x)}, "resnet18.golden.pth")   # x: N x 3 x H x W, float32
/// ```
///
/// | tensor            | layout           | dtype   |                                          |
/// |-------------------|------------------|---------|------------------------------------------|
/// | `input`           | `N x 3 x H x W`  | float32 | required                                 |
/// | `logits`          | `N x C`          | float32 | a classifier's output                    |
/// | `features`        | `N x C'`         | float32 | a headless backbone's pooled features    |
/// | `feature_map`     | `N x C' x h x w` | float32 | the last stage's map, before pooling     |
/// | `<output>_f64`    | as `<output>`    | float64 | the same model run in float64 (optional) |
/// | `intermediates`   | a dict           | float32 | module name -> its output (optional)     |
///
/// `intermediates` maps torchvision module names, as `named_modules()` gives them (`conv1`,
/// `bn1`, `layer1.0.conv1`, `layer1.0`, `avgpool`, `fc`), to that module's output for the same
/// input, in forward order (`scripts/make_golden.py` writes them with forward hooks); any subset.
///
/// At least one of `logits`, `features`, `feature_map` is required (a classifier's golden has
/// `logits`; a headless backbone's has `features` and/or `feature_map`). Every tensor present is
/// checked: rank, sizes, dtype, the same `N` as `input`, finite values. Other tensors are ignored.
/// Values are held row-major, as torch lays them out.
public struct Golden: Sendable {
    /// The file it was read from, as the caller named it.
    public var file: String?
    /// The input batch, NCHW, row-major (`N * 3 * H * W` floats).
    public var input: [Float]
    /// `[N, 3, H, W]`.
    public var inputShape: [Int]
    /// PyTorch's logits, row-major `N x C`, when the golden has them.
    public var logits: [Float]?
    /// `[N, C]` when `logits` is present.
    public var logitsShape: [Int]?
    /// PyTorch's pooled features, row-major `N x C'`, when the golden has them.
    public var features: [Float]?
    /// `[N, C']` when `features` is present.
    public var featuresShape: [Int]?
    /// PyTorch's last feature map, NCHW row-major `N x C' x h x w`, when the golden has it.
    public var featureMap: [Float]?
    /// `[N, C', h, w]` when `featureMap` is present.
    public var featureMapShape: [Int]?
    /// The float64 run of each output, shaped like it, when the file has one.
    public var logitsF64: [Double]?
    /// The float64 run of `features`, when the file has `features_f64`.
    public var featuresF64: [Double]?
    /// The float64 run of `featureMap`, when the file has `feature_map_f64`.
    public var featureMapF64: [Double]?
    /// The module outputs the golden holds (`intermediates`), in the file's (forward) order.
    public var intermediates: [Intermediate] = []

    /// One module's output in a golden.
    public struct Intermediate: Sendable, Equatable {
        /// The module's name, as `named_modules()` gives it (`layer1.0.bn1`).
        public let name: String
        /// The output's shape (`[N, C, H, W]` for a map, `[N, C]` for `fc`).
        public let shape: [Int]
        /// The values, row-major, as float32.
        public let values: [Float]

        /// A module output of `shape` (not checked against `values`: ``Golden`` checks what it reads).
        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// The prefix of intermediate tensors' names in a golden file (`intermediates.layer1.0.conv1`).
    public static let intermediatesPrefix = "intermediates."

    /// `N`, the number of samples.
    public var batch: Int { inputShape[0] }
    /// `C`, the number of logits per sample, when the golden has logits.
    public var classes: Int? { logitsShape?[1] }

    /// The outputs the golden holds, in the order `logits`, `features`, `feature_map`: never empty.
    public var outputs: [GoldenOutput] { GoldenOutput.allCases.filter { output($0) != nil } }
    /// The output to verify by default: `logits` when present, else `features`, else `feature_map`.
    public var primaryOutput: GoldenOutput { outputs[0] }

    /// Reads and validates a golden file: any checkpoint `Checkpoint(contentsOf:)` reads (zip,
    /// legacy), or a safetensors file. Throws ``VerificationError``, never traps.
    public static func load(contentsOf url: URL) throws(VerificationError) -> Golden { try load(path: url.path) }

    /// Reads the golden at `path`; see ``load(contentsOf:)``.
    public static func load(path: String) throws(VerificationError) -> Golden {
        let tensors: [NamedTensor]
        do {
            tensors = try readTensors(path).tensors  // any layout the loader reads (Conversion)
        } catch let e as CheckpointError {
            var inner = e
            inner.file = nil  // the golden's path is named once, by the VerificationError
            throw VerificationError(.unreadable(inner.description), file: path, underlying: e)
        } catch {
            throw VerificationError(.unreadable("\(error)"), file: path)
        }
        return try Golden(tensors: tensors, file: path)
    }

    /// Validates the tensors of an already-read file (`file` is used in errors).
    public init(tensors: [NamedTensor], file: String? = nil) throws(VerificationError) {
        var byName: [String: TensorRecord] = [:]
        for t in tensors where byName[t.name] == nil { byName[t.name] = t.tensor }
        do {
            try self.init(entries: { name in byName[name].map { GoldenEntry(name: name, record: $0) } }, file: file)
        } catch {
            var e = error
            e.hint = Self.hint(for: e.kind, tensors: tensors)
            throw e
        }
        var seen = Set<String>()
        for t in tensors where t.name.hasPrefix(Self.intermediatesPrefix) && seen.insert(t.name).inserted {
            let entry = GoldenEntry(name: t.name, record: t.tensor)
            try entry.check(dtype: .float32, file: file)
            guard entry.shape.first == batch else {
                throw VerificationError(.batchMismatch(name: t.name, batch: entry.shape.first ?? 0, expected: batch), file: file)
            }
            intermediates.append(Intermediate(name: String(t.name.dropFirst(Self.intermediatesPrefix.count)),
                                              shape: t.tensor.shape, values: t.tensor.floats()))
        }
    }

    /// What a file that is no usable golden looks like: a model's state dict (the arguments
    /// swapped?), the tensors it holds, an input in NHWC order.
    static func hint(for kind: VerificationError.Kind, tensors: [NamedTensor]) -> String? {
        switch kind {
        case .missingTensor:
            if tensors.contains(where: { $0.name.hasSuffix("conv1.weight") || $0.name.hasSuffix("fc.weight") }) {
                return "it holds a model's weights (\(tensors.count) tensors): the model and the golden swapped?"
            }
            let names = tensors.prefix(8).map { "'\($0.name)' \($0.tensor.shape)" }.joined(separator: ", ")
            return tensors.isEmpty ? "it holds no tensor" : "it holds \(names)" + (tensors.count > 8 ? ", ... (\(tensors.count) in all)" : "")
        case .badShape(let name, let shape, _) where name == GoldenTensor.input && shape.count == 4 && shape[3] == 3 && shape[1] != 3:
            return "an NHWC input (channels last)? save it as NCHW: x.permute(0, 3, 1, 2)"
        default:
            return nil
        }
    }

    /// Builds a golden from values in memory, with the same checks as ``load(path:)`` (each
    /// `values.count` must match its shape; a float64 run takes its output's shape). For tests,
    /// and for goldens produced in-process.
    public init(input: [Float], inputShape: [Int],
                logits: [Float]? = nil, logitsShape: [Int]? = nil,
                features: [Float]? = nil, featuresShape: [Int]? = nil,
                featureMap: [Float]? = nil, featureMapShape: [Int]? = nil,
                logitsF64: [Double]? = nil, featuresF64: [Double]? = nil, featureMapF64: [Double]? = nil,
                file: String? = nil) throws(VerificationError) {
        var entries: [String: GoldenEntry] = [:]
        func add(_ name: String, _ values: [Float]?, _ shape: [Int]?) throws(VerificationError) {
            guard let values else { return }
            let shape = shape ?? [values.count]
            guard GoldenEntry.product(shape) == values.count else {
                throw VerificationError(.badShape(name: name, shape: shape, expected: "a shape of \(values.count) values"), file: file)
            }
            entries[name] = GoldenEntry(name: name, floats: values, shape: shape)
        }
        func add(_ name: String, _ values: [Double]?, _ shape: [Int]?) throws(VerificationError) {
            guard let values else { return }
            let shape = shape ?? [values.count]
            guard GoldenEntry.product(shape) == values.count else {
                throw VerificationError(.badShape(name: name, shape: shape, expected: "a shape of \(values.count) values"), file: file)
            }
            entries[name] = GoldenEntry(name: name, doubles: values, shape: shape)
        }
        try add(GoldenTensor.input, input, inputShape)
        try add(GoldenTensor.logits, logits, logitsShape)
        try add(GoldenTensor.features, features, featuresShape)
        try add(GoldenTensor.featureMap, featureMap, featureMapShape)
        try add(GoldenOutput.logits.float64Name, logitsF64, logitsShape)
        try add(GoldenOutput.features.float64Name, featuresF64, featuresShape)
        try add(GoldenOutput.featureMap.float64Name, featureMapF64, featureMapShape)
        try self.init(entries: { entries[$0] }, file: file)
    }

    private init(entries: (String) -> GoldenEntry?, file: String?) throws(VerificationError) {
        guard let input = entries(GoldenTensor.input) else {
            throw VerificationError(.missingTensor(GoldenTensor.input), file: file)
        }
        try input.check(dtype: .float32, file: file)
        guard input.shape.count == 4, input.shape[1] == 3, input.shape.allSatisfy({ $0 > 0 }) else {
            throw VerificationError(.badShape(name: input.name, shape: input.shape, expected: "N x 3 x H x W, all sizes > 0"),
                                    file: file)
        }
        let n = input.shape[0]

        var read: [GoldenOutput: (values: [Float], shape: [Int], float64: [Double]?)] = [:]
        for output in GoldenOutput.allCases {
            guard let entry = entries(output.rawValue) else { continue }
            try entry.check(dtype: .float32, file: file)
            try entry.check(rank: output.rank, layout: output.layout, batch: n, file: file)
            var float64: [Double]?
            if let f64 = entries(output.float64Name) {
                try f64.check(dtype: .float64, file: file)
                guard f64.shape == entry.shape else {
                    throw VerificationError(.badShape(name: f64.name, shape: f64.shape,
                                                      expected: "the shape of \(output.rawValue), \(VerificationError.shape(entry.shape))"),
                                            file: file)
                }
                float64 = try f64.finiteDoubles(file: file)
            }
            read[output] = (try entry.finiteFloats(file: file), entry.shape, float64)
        }
        guard !read.isEmpty else { throw VerificationError(.missingTensor(GoldenTensor.logits), file: file) }

        self.file = file
        self.input = try input.finiteFloats(file: file)
        inputShape = input.shape
        logits = read[.logits]?.values
        logitsShape = read[.logits]?.shape
        logitsF64 = read[.logits]?.float64
        features = read[.features]?.values
        featuresShape = read[.features]?.shape
        featuresF64 = read[.features]?.float64
        featureMap = read[.featureMap]?.values
        featureMapShape = read[.featureMap]?.shape
        featureMapF64 = read[.featureMap]?.float64
    }

    /// The values, shape and float64 run (when present) of one of the golden's outputs; nil when
    /// the file lacks that output.
    public func output(_ output: GoldenOutput) -> (values: [Float], shape: [Int], float64: [Double]?)? {
        switch output {
        case .logits: logits.flatMap { v in logitsShape.map { (v, $0, logitsF64) } }
        case .features: features.flatMap { v in featuresShape.map { (v, $0, featuresF64) } }
        case .featureMap: featureMap.flatMap { v in featureMapShape.map { (v, $0, featureMapF64) } }
        }
    }
}

/// The outputs a golden can hold, by the tensor name in the file.
public enum GoldenOutput: String, Sendable, CaseIterable, Codable {
    /// A classifier's logits, `N x C` (tensor `logits`).
    case logits
    /// A headless backbone's pooled features, `N x C'` (tensor `features`).
    case features
    /// The last stage's feature map before pooling, `N x C' x h x w` (tensor `feature_map`).
    case featureMap = "feature_map"

    /// The name of its float64 run: `logits_f64`, `features_f64`, `feature_map_f64`.
    public var float64Name: String { rawValue + "_f64" }

    var rank: Int { self == .featureMap ? 4 : 2 }

    var layout: String { self == .featureMap ? "N x C x h x w" : "N x C" }
}

/// Tensor names of a golden file.
public enum GoldenTensor {
    /// `input`: the input batch.
    public static let input = "input"
    /// `logits`: a classifier's output.
    public static let logits = "logits"
    /// `features`: a headless backbone's pooled features.
    public static let features = "features"
    /// `feature_map`: the last stage's map, before pooling.
    public static let featureMap = "feature_map"
    /// `logits_f64`: the logits of the same model run in float64.
    public static let logitsF64 = "logits_f64"
}

/// One named tensor of a golden, from a file or from memory, checked before it is read.
struct GoldenEntry {
    var name: String
    var dtype: DType
    var shape: [Int]
    private var readFloats: () -> [Float]
    private var readDoubles: () -> [Double]

    init(name: String, record: TensorRecord) {
        self.name = name
        dtype = record.dtype
        shape = record.shape
        readFloats = { record.floats() }
        readDoubles = {
            guard record.dtype == .float64 else { return record.floats().map(Double.init) }
            return record.withContiguousBytes { b in
                (0..<record.numel).map { b.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) }
            }
        }
    }

    /// In-memory values; the caller has checked their count against `shape`.
    init(name: String, floats: [Float], shape: [Int]) {
        self.name = name
        dtype = .float32
        self.shape = shape
        readFloats = { floats }
        readDoubles = { floats.map(Double.init) }
    }

    init(name: String, doubles: [Double], shape: [Int]) {
        self.name = name
        dtype = .float64
        self.shape = shape
        readFloats = { doubles.map(Float.init) }
        readDoubles = { doubles }
    }

    static func product(_ shape: [Int]) -> Int? { Shape.elementCount(shape) }

    func check(dtype expected: DType, file: String?) throws(VerificationError) {
        guard dtype == expected else {
            throw VerificationError(.dtype(name: name, dtype: dtype, expected: expected), file: file)
        }
    }

    func check(rank: Int, layout: String, batch: Int, file: String?) throws(VerificationError) {
        guard shape.count == rank, shape.allSatisfy({ $0 > 0 }) else {
            throw VerificationError(.badShape(name: name, shape: shape, expected: "\(layout), all sizes > 0"), file: file)
        }
        guard shape[0] == batch else {
            throw VerificationError(.batchMismatch(name: name, batch: shape[0], expected: batch), file: file)
        }
    }

    func finiteFloats(file: String?) throws(VerificationError) -> [Float] {
        let v = readFloats()
        if let i = v.firstIndex(where: { !$0.isFinite }) {
            throw VerificationError(.nonFinite(name: name, index: i), file: file)
        }
        return v
    }

    func finiteDoubles(file: String?) throws(VerificationError) -> [Double] {
        let v = readDoubles()
        if let i = v.firstIndex(where: { !$0.isFinite }) {
            throw VerificationError(.nonFinite(name: name, index: i), file: file)
        }
        return v
    }
}
