import Foundation
import Images
import ResNet
import SafeTensors
import TorchCheckpoint
import TorchportCore

/// Names for a classifier's outputs, and where they came from.
///
/// ``resolve(classes:labelsFile:checkpointPath:options:)`` picks, in order: a labels file (one
/// name per line), a class list stored in the checkpoint next to the weights, ImageNet's 1000 names
/// for a 1000-class model, and otherwise `class N`.
public struct ClassLabels: Sendable, Equatable {
    /// Where a set of labels came from.
    public enum Source: String, Sendable, Codable {
        /// A text file given by the user, one name per line.
        case file
        /// A class list saved in the checkpoint (`classes`, `idx_to_class`, ...).
        case checkpoint
        /// ImageNet-1k's names (``imageNet``), for a 1000-class model.
        case imageNet = "imagenet"
        /// No names: `class 0`, `class 1`, ...
        case indices
    }

    /// One name per class, or nil when classes are only numbered.
    public let names: [String]?
    /// Where the names came from.
    public let source: Source
    /// Details of the source, e.g. the file path or the checkpoint key (`classes`).
    public let detail: String?

    /// Labels from explicit names.
    public init(names: [String]?, source: Source, detail: String? = nil) {
        self.names = names
        self.source = source
        self.detail = detail
    }

    /// Numbered classes: `class 0`, `class 1`, ...
    public static let indices = ClassLabels(names: nil, source: .indices)

    /// The name of class `index` (`class N` beyond the list or without one).
    public subscript(index: Int) -> String {
        if let names, names.indices.contains(index) { return names[index] }
        return "class \(index)"
    }

    /// Keys under which training scripts commonly save a class list next to the state dict, in the
    /// order they are tried. A list (or tuple) of names, an `{index: name}` dict (`idx_to_class`) and a
    /// `{name: index}` dict (`class_to_idx`, as torchvision's `ImageFolder` builds it) are understood.
    public static let checkpointKeys = Checkpoint.classNameKeys

    /// Dicts inside the checkpoint's root dict that are searched too (`{"meta": {"classes": ...}}`).
    public static let nestedDictKeys = Checkpoint.classNameContainers

    /// Reads names from a text file, one per line (surrounding spaces and trailing blank lines
    /// dropped; `#` starts no comment: a name may contain anything but a newline).
    public static func read(contentsOf url: URL) throws(LabelsError) -> [String] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw LabelsError(FileManager.default.fileExists(atPath: url.path) ? .unreadable : .noSuchFile, file: url.path)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw LabelsError(.notUTF8, file: url.path)
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        while lines.last?.isEmpty == true { lines.removeLast() }
        return lines
    }

    /// The class list stored in a checkpoint's root dict (or one level down, under
    /// ``nestedDictKeys``), with the key it was found under; nil when there is none or it is
    /// malformed (not all strings, indices not exactly `0..<n`).
    public static func stored(in checkpoint: Checkpoint) -> (names: [String], key: String)? {
        checkpoint.storedClassNames
    }

    /// The metadata keys a converted `.safetensors` file may hold a class list under (a JSON array
    /// of strings), in the order they are tried: `torchport.classes` (what `convert` writes), then
    /// `classes` (files converted by Torchport before its keys had a prefix, and other tools).
    public static let metadataKeys = ["torchport.classes", "classes"]

    /// A class list stored in a converted `.safetensors` file's metadata (``metadataKeys``), as a
    /// JSON array of strings.
    public static func stored(in file: SafeTensorsFile) -> [String]? {
        storedWithKey(in: file)?.names
    }

    /// ``stored(in:)-(SafeTensorsFile)`` and the metadata key it came from.
    static func storedWithKey(in file: SafeTensorsFile) -> (names: [String], key: String)? {
        for key in metadataKeys {
            if let json = file.metadata[key],
               let array = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String], !array.isEmpty {
                return (array, key)
            }
        }
        return nil
    }

    /// Picks labels for a model with `classes` outputs: the labels file if given (its line count
    /// must equal `classes`), else a list stored in the model file, else ImageNet's names when
    /// `classes == 1000`, else numbered classes. A stored list of the wrong length is ignored.
    public static func resolve(classes: Int, labelsFile: String? = nil, checkpointPath: String? = nil,
                               options: ReaderOptions = .init()) throws -> ClassLabels {
        if let labelsFile {
            let names = try read(contentsOf: URL(fileURLWithPath: labelsFile))
            guard names.count == classes else {
                throw LabelsError(.countMismatch(labels: names.count, classes: classes), file: labelsFile)
            }
            return ClassLabels(names: names, source: .file, detail: labelsFile)
        }
        if let path = checkpointPath {
            if let file = try? SafeTensorsFile(contentsOf: path) {
                if let (names, key) = storedWithKey(in: file), names.count == classes {
                    return ClassLabels(names: names, source: .checkpoint, detail: "metadata \(key)")
                }
            } else if let checkpoint = try? Checkpoint(contentsOf: path, options: options),
                      let (names, key) = stored(in: checkpoint), names.count == classes {
                return ClassLabels(names: names, source: .checkpoint, detail: key)
            }
        }
        if classes == imageNet.count { return ClassLabels(names: imageNet, source: .imageNet) }
        return .indices
    }
}

/// A labels file, a class list or a classification request that cannot be used.
public struct LabelsError: TorchportError, Equatable {
    /// What is wrong.
    public enum Kind: Sendable, Equatable {
        /// The labels file does not exist.
        case noSuchFile
        /// The labels file exists but cannot be read.
        case unreadable
        /// The labels file is not UTF-8 text.
        case notUTF8
        /// The labels file has another line count than the model has classes.
        case countMismatch(labels: Int, classes: Int)
        /// The model has no classification head (a headless backbone).
        case headless
    }

    /// What is wrong.
    public let kind: Kind
    /// The labels file or the model file concerned.
    public let location: ErrorLocation

    /// An error of `kind`, about `file` when known.
    public init(_ kind: Kind, file: String? = nil) {
        self.kind = kind
        location = ErrorLocation(file: file)
    }

    /// What is wrong, in one sentence.
    public var reason: String {
        switch kind {
        case .noSuchFile: "no such file (labels file)"
        case .unreadable: "cannot read it (labels file)"
        case .notUTF8: "not UTF-8 text (labels file)"
        case .countMismatch(let l, let c): "\(l) labels, the model has \(c) classes"
        case .headless: "the model has no classification head (a headless backbone): nothing to classify"
        }
    }

    /// The file, then the reason (`labels.txt: 9 labels, the model has 10 classes`).
    public var description: String { location.file.map { "\($0): \(reason)" } ?? reason }
}

/// One class of a prediction: its index, name, softmax probability and raw logit.
public struct Prediction: Sendable, Equatable, Codable {
    /// The output index.
    public let index: Int
    /// The class name (from ``ClassLabels``).
    public let label: String
    /// The softmax probability over all classes.
    public let probability: Double
    /// The raw model output.
    public let logit: Float

    /// A prediction for class `index`.
    public init(index: Int, label: String, probability: Double, logit: Float) {
        self.index = index
        self.label = label
        self.probability = probability
        self.logit = logit
    }

    /// The `k` most probable classes of one row of logits, most probable first (ties: lower index
    /// first), with softmax probabilities computed in Double.
    public static func top(_ k: Int, logits: some Collection<Float>, labels: ClassLabels) -> [Prediction] {
        let row = Array(logits)
        return top(k, of: ModelOutput(unchecked: 1, width: row.count, values: row), row: 0, labels: labels)
    }

    /// The `k` most probable classes of row `row` of `output` (`ModelOutput/topK(_:)` and
    /// `ModelOutput/softmax()`); empty when `row` is not a row of it.
    public static func top(_ k: Int, of output: ModelOutput, row: Int, labels: ClassLabels) -> [Prediction] {
        guard (0..<output.batch).contains(row), output.width > 0, k > 0 else { return [] }
        let one = ModelOutput(unchecked: 1, width: output.width, values: Array(output.row(row)))
        let probabilities = one.softmax()[0]
        return one.topK(k)[0].map { Prediction(index: $0.index, label: labels[$0.index], probability: probabilities[$0.index], logit: $0.value) }
    }
}

extension FeatureMap {
    /// A batch of images, each preprocessed with `preprocessing` (torchvision's transforms), as
    /// the model's input; throws when the preprocessing cannot run, the batch is empty or the
    /// preprocessed sizes differ (without a crop, batch images by size: see
    /// `ResNetModel/outputs(for:preprocessing:batchSize:)`).
    public init(images: [RGBImage], preprocessing: Preprocessing = .imageNet) throws {
        try preprocessing.validate()
        guard let first = images.first else { throw InputError(.emptyBatch) }
        let (w, h) = preprocessing.outputSize(width: first.width, height: first.height)
        var data: [Float] = []
        data.reserveCapacity(images.count * 3 * w * h)
        for image in images {
            let size = preprocessing.outputSize(width: image.width, height: image.height)
            guard size == (w, h) else {
                throw InputError(.sizeMismatch(shape: [images.count, 3, h, w], count: data.count + 3 * size.0 * size.1))
            }
            data += try preprocessing.tensor(image)
        }
        try self.init(n: images.count, c: 3, h: h, w: w, data: data)
    }
}

extension ResNetModel {
    /// The outputs for images, each preprocessed with `preprocessing`, run in batches of at most
    /// `batchSize`. Images whose preprocessed sizes differ (no crop) are batched by size; the rows
    /// keep the order of `images`.
    ///
    /// ```swift
    /// let model = try ResNetModel(contentsOf: URL(fileURLWithPath: "resnet50.pth"))
    /// let image = try ImageDecoder().decode(contentsOf: URL(fileURLWithPath: "cat.jpg")).rgb
    /// let output = try model.outputs(for: [image])
    /// let best = Prediction.top(5, of: output, row: 0, labels: ClassLabels(names: ClassLabels.imageNet, source: .imageNet))
    /// ```
    public func outputs(for images: [RGBImage], preprocessing: Preprocessing = .imageNet, batchSize: Int = 8) throws -> ModelOutput {
        try preprocessing.validate()
        let inputs = try images.map { image in
            let (w, h) = preprocessing.outputSize(width: image.width, height: image.height)
            return try FeatureMap(n: 1, c: 3, h: h, w: w, data: try preprocessing.tensor(image))
        }
        return try outputs(for: inputs, batchSize: batchSize)
    }

    /// The outputs for single-image inputs (`[1, 3, h, w]` each), batched by size as in
    /// ``outputs(for:preprocessing:batchSize:)``; the rows keep the order of `inputs`.
    public func outputs(for inputs: [FeatureMap], batchSize: Int = 8) throws(InputError) -> ModelOutput {
        let width = outputWidth
        var out = [Float](repeating: 0, count: inputs.count * width)
        var groups: [[Int]: [Int]] = [:]
        var order: [[Int]] = []
        for (i, x) in inputs.enumerated() {
            guard x.n == 1 else { throw InputError(.sizeMismatch(shape: [1, x.c, x.h, x.w], count: x.data.count)) }
            if groups[x.shape] == nil { order.append(x.shape) }
            groups[x.shape, default: []].append(i)
        }
        let step = max(1, batchSize)
        for shape in order {
            let members = groups[shape] ?? []
            for start in stride(from: 0, to: members.count, by: step) {
                let batch = Array(members[start..<min(start + step, members.count)])
                var data: [Float] = []
                data.reserveCapacity(batch.count * shape[1] * shape[2] * shape[3])
                for i in batch { data += inputs[i].data }
                let result = try self(try FeatureMap(n: batch.count, c: shape[1], h: shape[2], w: shape[3], data: data))
                for (row, i) in batch.enumerated() {
                    out.replaceSubrange((i * width)..<((i + 1) * width), with: result.row(row))
                }
            }
        }
        return ModelOutput(unchecked: inputs.count, width: width, values: out)
    }
}
