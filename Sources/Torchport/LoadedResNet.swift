import Conversion
import Foundation
import ResNet
import StateDict
import SafeTensors
import TorchCheckpoint

/// A model loaded from a file in one line: the checkpoint read (any `.pth`/`.pt`, or a converted
/// `.safetensors`), mapped to canonical names, and bound strictly.
///
/// ```swift
/// let resnet = try LoadedResNet(contentsOf: "resnet50.pth")
/// let logits = try resnet(batch)   // batch: FeatureMap [n, 3, h, w] -> [n * classes]
/// ```
public struct LoadedResNet: Sendable {
    /// The bound model.
    public let model: ResNetModel
    /// How the checkpoint's tensor names were mapped to canonical torchvision names.
    public let mapping: NameMapping
    /// `zip`, `legacy`, `torchscript` or `safetensors`.
    public let sourceFormat: String

    /// Reads the file at `path`, maps its names and binds the model, recognising the architecture
    /// from the shapes unless one is given, for `engine` (nil: the fastest this CPU runs), its
    /// forward passes on `executor`'s threads. Throws the reader's, mapping's or binding's error.
    public init(contentsOf path: String, architecture: ResNetArchitecture? = nil, options: ReaderOptions = .init(),
                engine: InferenceEngine? = nil, executor: Executor = .shared) throws {
        let (tensors, format) = try readTensors(path, options: options)
        mapping = try NameMapping.map(tensors)
        model = try ResNetModel(mapping: mapping, architecture: architecture, engine: engine, executor: executor)
        sourceFormat = format
        // The model holds its own copy of the weights: the file's pages go back to the kernel
        // (the records in `mapping` stay readable, from the file).
        var released = Set<ObjectIdentifier>()
        for t in mapping.stateDict where released.insert(ObjectIdentifier(t.tensor.storage.owner)).inserted {
            t.tensor.storage.owner.releaseResidentPages()
        }
    }

    /// Logits `[n * classes]` (row-major), or pooled features for a headless backbone.
    public func callAsFunction(_ batch: FeatureMap) throws -> [Float] { try model(batch) }
}
