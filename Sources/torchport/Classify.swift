import ArgumentParser
import Foundation
import Torchport
import TorchportCore

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify JPEG and PNG images with a model, using torchvision's ImageNet preprocessing.",
        discussion: """
            Images are decoded (libjpeg-turbo, libpng), converted to RGB as PIL does, \
            resized so the shorter side is 256 (antialiased bilinear), centre-cropped \
            to 224, scaled to [0, 1] and normalised with ImageNet's mean and std, \
            exactly as torchvision's
              Compose([Resize(256), CenterCrop(224), ToTensor(), Normalize(...)])
            Every step can be changed (--resize, --crop, --interpolation, --mean, \
            --std). torchvision's IMAGENET1K_V2 ResNet weights use --resize 232.

            Class names come from --labels FILE (one per line), else from a class \
            list saved in the checkpoint (classes, class_names, idx_to_class, \
            class_to_idx, ...), else ImageNet's 1000 names for a 1000-class model, \
            else "class N".

            Directories are searched recursively for .jpg, .jpeg and .png files. \
            Images are decoded in parallel and run in batches; on a terminal, \
            progress is shown on stderr. Images that cannot be read are listed at \
            the end, the others still run, and the exit status is then 2.

            Examples:
              torchport classify resnet50.pth cat.jpg dog.png --top 3
              torchport classify finetuned.pth photos/ --labels classes.txt --json
              torchport classify resnet50.pth photos/ --save-logits logits.safetensors
            """)

    @Argument(help: "A checkpoint (.pth / .pt) or a converted .safetensors file.", completion: .file())
    var model: String

    @Argument(help: "JPEG or PNG images, or directories of them.", completion: .file())
    var images: [String]

    @Option(name: [.customShort("k"), .long], help: "How many classes to show per image.") var top = 5
    @Option(help: "A text file of class names, one per line, in output order.", completion: .file())
    var labels: String?
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Write the logits to this .safetensors file (tensor `logits`, N x C, one row per image read).",
            completion: .file())
    var saveLogits: String?
    @Flag(help: "Replace an existing --save-logits file.") var force = false

    @Option(help: "Resize the shorter side to this many pixels (0: no resize).") var resize = 256
    @Option(help: "Centre-crop to a square of this side (0: no crop).") var crop = 224
    @Option(help: "Resize filter: \(InterpolationChoice.allCases.map(\.rawValue).joined(separator: ", ")).")
    var interpolation: InterpolationChoice = .bilinear
    @Option(help: "Per-channel mean, R,G,B.") var mean = "0.485,0.456,0.406"
    @Option(help: "Per-channel standard deviation, R,G,B.") var std = "0.229,0.224,0.225"

    @Option(help: "Images per forward pass.") var batch = 8
    @Option(help: "Threads (inference and decoding).") var threads = 2
    @Option(help: "Architecture override for ambiguous state dicts (e.g. resnet50).") var arch: ArchChoice?
    @Flag(inversion: .prefixedNo, help: "Show progress on stderr (default: only when stderr is a terminal).")
    var progress: Bool?
    @OptionGroup var reader: ReaderFlags
    @OptionGroup var engineFlags: EngineFlags

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
        try requireAtLeast([("--batch", batch, 1), ("--threads", threads, 1)])
        guard resize >= 0, crop >= 0 else { throw ValidationError("--resize and --crop must be 0 or more") }
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        if let saveLogits { try checkOutputFile(saveLogits, option: "--save-logits", force: force) }
        if let problem = try preprocessing().validationProblem { throw ValidationError(problem) }
    }

    func preprocessing() throws -> Preprocessing {
        func triple(_ text: String, _ name: String) throws -> [Double] {
            let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard values.count == 3, values.allSatisfy({ $0 != nil }) else {
                throw ValidationError("--\(name) needs three comma-separated numbers (R,G,B), got '\(text)'")
            }
            return values.map { $0! }
        }
        return Preprocessing(resizeSize: resize == 0 ? nil : resize, cropSize: crop == 0 ? nil : crop,
                             interpolation: interpolation.interpolation,
                             mean: try triple(mean, "mean"), std: try triple(std, "std"))
    }

    func run() throws {
        let preprocessing = try preprocessing()
        let executor = Executor(threads: threads)
        let (loaded, labels) = try withExitCode2(json: json, verbose: reader.verbose, file: model) { () throws -> (ResNetModel, ClassLabels) in
            let loaded = try loadModel(model, arch: arch, reader: reader, engine: engineFlags.engine, executor: executor)
            guard let classes = loaded.architecture.numClasses else { throw LabelsError(.headless, file: model) }
            let labels = try ClassLabels.resolve(classes: classes, labelsFile: self.labels, checkpointPath: model,
                                                 options: reader.options)
            return (loaded, labels)
        }
        let classes = loaded.outputWidth

        // Directories are searched recursively for .jpg/.jpeg/.png files; a path that is not there
        // is a failure, listed with the others at the end.
        let expanded = expandInputs(images, extensions: ["jpg", "jpeg", "png"], recursive: true)
        let inputs = expanded.files
        var failures = expanded.failures.map { Failure(image: $0.name, error: $0.error) }
        let total = inputs.count + failures.count   // failures so far: paths that are not there
        let meter = ProgressMeter(total: inputs.count, enabled: progressEnabled(progress)) { done, total, _ in
            "classified \(done)/\(total) images"
        }

        var results: [Result] = []
        var logitRows: [Float] = []
        var rowImages: [String] = []
        let decoder = ImageDecoder()
        for start in stride(from: 0, to: inputs.count, by: batch) {
            let chunk = Array(inputs[start..<min(start + batch, inputs.count)])
            // Decode and preprocess the chunk in parallel, then run it as one batch.
            let slots = Slots<Prepared>(count: chunk.count)
            let workers = min(threads, chunk.count)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for i in stride(from: worker, to: chunk.count, by: workers) {
                    do {
                        let image = try decoder.decode(contentsOf: chunk[i])
                        let (w, h) = preprocessing.outputSize(width: image.width, height: image.height)
                        slots[i] = .ready(summary: image.summary, tensor: try preprocessing.tensor(image.rgb), w: w, h: h)
                    } catch {
                        slots[i] = .failed(String(describing: error))
                    }
                }
            }
            var ready: [(path: String, summary: String, tensor: [Float], w: Int, h: Int)] = []
            for (i, path) in chunk.enumerated() {
                switch slots[i]! {
                case .ready(let summary, let tensor, let w, let h): ready.append((path, summary, tensor, w, h))
                case .failed(let message): failures.append(Failure(image: path, error: message))
                }
            }
            if !ready.isEmpty {
                let logits = try withExitCode2 {
                    try loaded.outputs(for: ready.map { try FeatureMap(n: 1, c: 3, h: $0.h, w: $0.w, data: $0.tensor) },
                                       batchSize: batch)
                }
                for (row, item) in ready.enumerated() {
                    let result = Result(image: item.path, decoded: item.summary,
                                        top: Prediction.top(top, of: logits, row: row, labels: labels))
                    results.append(result)
                    if !json {
                        meter.clear()
                        print(result.text)
                    }
                }
                if saveLogits != nil {
                    logitRows += logits.values
                    rowImages += ready.map(\.path)
                }
            }
            meter.advance(by: chunk.count)
        }
        meter.finish()

        if !json { print("engine: \(loaded.engine.rawValue)") }
        if json {
            try printJSON(Report(model: model, architecture: loaded.architecture.description,
                                 engine: loaded.engine.rawValue, classes: classes,
                                 labels: .init(source: labels.source.rawValue, detail: labels.detail),
                                 preprocessing: .init(preprocessing), results: results, failures: failures))
        }
        if let saveLogits {
            try withExitCode2 {
                let data = try JSONSerialization.data(withJSONObject: rowImages)
                try SafeTensorsWriter.writeAtomically(
                    [.init(name: "logits", dtype: .float32, shape: [rowImages.count, classes],
                           bytes: logitRows.withUnsafeBytes { Array($0) })],
                    metadata: ["format": "pt", "torchport.model": model, "torchport.output": "logits",
                               "torchport.images": String(decoding: data, as: UTF8.self)],
                    to: saveLogits)
            }
        }
        if !failures.isEmpty {
            writeFailureSummary("\(failures.count) of \(total) image\(total == 1 ? "" : "s") could not be classified:",
                                failures.map { BatchFailure(name: $0.image, error: $0.error) })
            throw ExitCode(2)
        }
    }

    enum Prepared: Sendable {
        case ready(summary: String, tensor: [Float], w: Int, h: Int)
        case failed(String)
    }

    struct Failure: Encodable {
        let image: String
        let error: String
    }

    struct Result: Encodable {
        let image: String
        let decoded: String
        let top: [Prediction]

        var text: String {
            var lines = ["\(image)  (\(decoded))"]
            for p in top {
                let name = p.label == "class \(p.index)" ? p.label : "\(p.label) (\(p.index))"
                lines.append(String(format: "  %7.3f%%  ", p.probability * 100) + name)
            }
            return lines.joined(separator: "\n")
        }
    }

    struct Report: Encodable {
        struct Labels: Encodable {
            let source: String
            let detail: String?
        }
        struct PreprocessingInfo: Encodable {
            let resize: Int?
            let crop: Int?
            let interpolation: String
            let mean: [Double]
            let std: [Double]
            init(_ p: Preprocessing) {
                resize = p.resizeSize
                crop = p.cropSize
                interpolation = p.interpolation.rawValue
                mean = p.mean
                std = p.std
            }
        }
        let model: String
        let architecture: String
        /// The inference engine that ran (`packed`, `reference`).
        let engine: String
        let classes: Int
        let labels: Labels
        let preprocessing: PreprocessingInfo
        let results: [Result]
        let failures: [Failure]
    }
}

/// `--interpolation` choices (PIL's filters).
enum InterpolationChoice: String, ExpressibleByArgument, CaseIterable {
    case nearest, box, bilinear, hamming, bicubic, lanczos

    var interpolation: Interpolation { Interpolation(rawValue: rawValue)! }
}
