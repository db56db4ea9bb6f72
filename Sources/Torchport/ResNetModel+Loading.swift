import Conversion
import Foundation
import ResNet
import StateDict
import TorchCheckpoint
import TorchportCore

extension ResNetModel {
    /// Loads a model in one line: reads the file (`.pth`/`.pt` of any `torch.save` or
    /// `torch.jit.save` format, or a `.safetensors`, recognised by content), maps its names to
    /// torchvision's (the caller's `rules`, then `sanitize`, then the built-in mapping, all
    /// recorded in `mapping`), and binds strictly, recognising the architecture from the shapes
    /// unless one is given, for `engine` (nil: the fastest this CPU runs), its forward passes on
    /// `executor`'s threads.
    ///
    /// ```swift
    /// let model = try ResNetModel(contentsOf: URL(fileURLWithPath: "resnet50.pth"))
    /// let custom = try ResNetModel(contentsOf: url, rules: [.stripPrefix("encoder.")])
    /// ```
    ///
    /// Throws the reader's error (`CheckpointError`, `SafeTensorsError`) or a `BindingError`
    /// naming the file.
    public init(contentsOf url: URL, architecture: ResNetArchitecture? = nil, engine: InferenceEngine? = nil,
                rules: [MappingRule] = [], sanitize: MappingSanitizer? = nil, options: ReaderOptions = .init(),
                executor: Executor = .shared) throws {
        let (tensors, format) = try readTensors(url, options: options)
        let mapping: NameMapping
        do {
            mapping = try NameMapping.map(tensors, rules: rules, sanitize: sanitize)
        } catch {
            throw error.with(file: url.path)
        }
        try self.init(mapping: mapping, architecture: architecture, engine: engine,
                      source: WeightsSource(url: url, format: format), executor: executor)
        // The engine holds its own copy of the weights: the file's pages go back to the kernel
        // (``parameter(_:)`` still reads them, from the file).
        var released = Set<ObjectIdentifier>()
        for t in mapping.stateDict where released.insert(ObjectIdentifier(t.tensor.storage.owner)).inserted {
            t.tensor.storage.owner.releaseResidentPages()
        }
    }

    /// Loads the model at `path`; see ``init(contentsOf:architecture:engine:rules:sanitize:options:executor:)-(URL,_,_,_,_,_,_)``.
    public init(contentsOf path: String, architecture: ResNetArchitecture? = nil, engine: InferenceEngine? = nil,
                rules: [MappingRule] = [], sanitize: MappingSanitizer? = nil, options: ReaderOptions = .init(),
                executor: Executor = .shared) throws {
        try self.init(contentsOf: URL(fileURLWithPath: path), architecture: architecture, engine: engine,
                      rules: rules, sanitize: sanitize, options: options, executor: executor)
    }
}
