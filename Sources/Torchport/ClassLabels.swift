@_exported import Images
import Foundation

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
    public static let checkpointKeys = ["classes", "class_names", "categories", "labels", "idx_to_class", "class_to_idx"]

    /// Dicts inside the checkpoint's root dict that are searched too (`{"meta": {"classes": ...}}`).
    public static let nestedDictKeys = ["meta", "metadata", "hparams", "hyper_parameters"]

    /// Reads names from a text file, one per line (surrounding spaces and trailing blank lines
    /// dropped; `#` starts no comment: a name may contain anything but a newline).
    public static func read(contentsOf path: String) throws -> [String] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read it" : "no such file"
            throw LabelsError("\(path): \(reason) (labels file)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw LabelsError("\(path): not UTF-8 text")
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
        let graph = checkpoint.graph
        guard case .dict(let rootIndex) = checkpoint.root else { return nil }
        var dicts: [(PickleDict, String)] = [(graph.dicts[rootIndex], "")]
        for key in nestedDictKeys {
            if case .dict(let i)? = graph.dicts[rootIndex][key] { dicts.append((graph.dicts[i], key + ".")) }
        }
        for (dict, prefix) in dicts {
            for key in checkpointKeys {
                if let value = dict[key], let names = names(from: value, graph: graph) { return (names, prefix + key) }
            }
        }
        return nil
    }

    /// A class list stored in a converted `.safetensors` file's metadata under `classes`, as a JSON
    /// array of strings.
    public static func stored(in file: SafeTensorsFile) -> [String]? {
        guard let json = file.metadata["classes"],
              let array = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String] else { return nil }
        return array
    }

    /// Picks labels for a model with `classes` outputs: the labels file if given (its line count
    /// must equal `classes`), else a list stored in the model file, else ImageNet's names when
    /// `classes == 1000`, else numbered classes. A stored list of the wrong length is ignored.
    public static func resolve(classes: Int, labelsFile: String? = nil, checkpointPath: String? = nil,
                               options: ReaderOptions = .init()) throws -> ClassLabels {
        if let labelsFile {
            let names = try read(contentsOf: labelsFile)
            guard names.count == classes else {
                throw LabelsError("\(labelsFile) has \(names.count) labels, the model has \(classes) classes")
            }
            return ClassLabels(names: names, source: .file, detail: labelsFile)
        }
        if let path = checkpointPath {
            if let file = try? SafeTensorsFile(contentsOf: path) {
                if let names = stored(in: file), names.count == classes {
                    return ClassLabels(names: names, source: .checkpoint, detail: "metadata classes")
                }
            } else if let checkpoint = try? Checkpoint(contentsOf: path, options: options),
                      let (names, key) = stored(in: checkpoint), names.count == classes {
                return ClassLabels(names: names, source: .checkpoint, detail: key)
            }
        }
        if classes == imageNet.count { return ClassLabels(names: imageNet, source: .imageNet) }
        return .indices
    }

    private static func names(from value: PickleValue, graph: PickleGraph) -> [String]? {
        if let items = graph.sequence(value) {
            var out: [String] = []
            for item in items {
                guard case .string(let s) = item else { return nil }
                out.append(s)
            }
            return out.isEmpty ? nil : out
        }
        guard case .dict(let d) = value else { return nil }
        let dict = graph.dicts[d]
        guard dict.count > 0 else { return nil }
        var slots = [String?](repeating: nil, count: dict.count)
        for (k, v) in zip(dict.keys, dict.values) {
            let index: Int, name: String
            switch (k, v) {
            case (.int(let i), .string(let s)): (index, name) = (i, s)    // idx_to_class
            case (.string(let s), .int(let i)): (index, name) = (i, s)    // class_to_idx
            default: return nil
            }
            guard slots.indices.contains(index), slots[index] == nil else { return nil }
            slots[index] = name
        }
        return slots.allSatisfy { $0 != nil } ? slots.map { $0! } : nil
    }
}

/// A labels file or class list that cannot be used.
public struct LabelsError: Error, Sendable, CustomStringConvertible, LocalizedError {
    /// What is wrong.
    public let description: String
    /// An error explained by `description`.
    public init(_ description: String) { self.description = description }
    /// The same text as ``description``.
    public var errorDescription: String? { description }
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
        guard !row.isEmpty, k > 0 else { return [] }
        let peak = Double(row.max()!)
        let exps = row.map { Foundation.exp(Double($0) - peak) }
        let sum = exps.reduce(0, +)
        let order = row.indices.sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }
        return order.prefix(k).map { i in
            Prediction(index: i, label: labels[i], probability: exps[i] / sum, logit: row[i])
        }
    }
}

extension LoadedResNet {
    /// Logits `[images.count * classes]` (row-major) for images, each preprocessed with
    /// `preprocessing`, run in batches of at most `batchSize`. Images whose preprocessed sizes differ
    /// (no crop) are batched by size; the rows keep the order of `images`.
    ///
    /// ```swift
    /// let model = try LoadedResNet(contentsOf: "resnet50.pth")
    /// let image = try ImageDecoder().decode(contentsOf: "cat.jpg").rgb
    /// let logits = try model.logits(for: [image])
    /// let best = Prediction.top(5, logits: logits, labels: ClassLabels(names: ClassLabels.imageNet, source: .imageNet))
    /// ```
    public func logits(for images: [RGBImage], preprocessing: Preprocessing = .imageNet, batchSize: Int = 8) throws -> [Float] {
        if let problem = preprocessing.validationProblem { throw LabelsError("preprocessing: \(problem)") }
        let tensors = images.map { image -> (tensor: [Float], w: Int, h: Int) in
            let (w, h) = preprocessing.outputSize(width: image.width, height: image.height)
            return (preprocessing.tensor(image), w, h)
        }
        return try logits(forTensors: tensors, batchSize: batchSize)
    }

    /// Logits for already preprocessed planar `[3, h, w]` tensors, batched by size as in
    /// ``logits(for:preprocessing:batchSize:)``.
    public func logits(forTensors tensors: [(tensor: [Float], w: Int, h: Int)], batchSize: Int = 8) throws -> [Float] {
        let width = model.outputWidth
        var out = [Float](repeating: 0, count: tensors.count * width)
        var groups: [String: [Int]] = [:]
        var order: [String] = []
        for (i, t) in tensors.enumerated() {
            let key = "\(t.w)x\(t.h)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(i)
        }
        for key in order {
            let members = groups[key]!
            for start in stride(from: 0, to: members.count, by: max(1, batchSize)) {
                let batch = Array(members[start..<min(start + max(1, batchSize), members.count)])
                let (w, h) = (tensors[batch[0]].w, tensors[batch[0]].h)
                var data: [Float] = []
                data.reserveCapacity(batch.count * 3 * w * h)
                for i in batch { data += tensors[i].tensor }
                let result = try self(FeatureMap(n: batch.count, c: 3, h: h, w: w, data: data))
                for (row, i) in batch.enumerated() {
                    out.replaceSubrange((i * width)..<((i + 1) * width), with: result[(row * width)..<((row + 1) * width)])
                }
            }
        }
        return out
    }
}
