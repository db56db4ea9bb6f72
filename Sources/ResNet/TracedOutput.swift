import TorchportCore

/// One point of a forward pass where the model's output is recorded (``ResNetModel/trace(_:)``),
/// named after the torchvision module whose output it equals.
///
/// An engine that fuses a ReLU into the layer before it records that layer's output after the
/// ReLU: `module` is then the layer's name (`layer1.0.bn1`) and ``appliesReLU`` is true, so a
/// comparison applies `relu` to the module's own output before comparing. Nothing is renamed:
/// what is compared is said.
public struct TracedOutput: Sendable {
    /// The torchvision module (as `named_modules()` names it) whose output this is.
    public let module: String
    /// Whether the engine's value is `relu(module output)` (a ReLU fused after the module).
    public let appliesReLU: Bool
    /// `[N, C, H, W]` for a map, `[N, C]` after pooling or `fc`.
    public let shape: [Int]
    /// The values, row-major (NCHW for a map).
    public let values: [Float]
    /// The torchvision modules computed together to reach this point since the one recorded
    /// before it (the packed engine's `layer1.0.bn1` + relu covers `layer1.0.conv1` and
    /// `layer1.0.bn1`): where a fault first seen here can lie.
    public let covers: [String]

    /// A recorded output; `covers` defaults to `[module]`.
    public init(module: String, appliesReLU: Bool = false, shape: [Int], values: [Float], covers: [String]? = nil) {
        self.module = module
        self.appliesReLU = appliesReLU
        self.shape = shape
        self.values = values
        self.covers = covers ?? [module]
    }

    /// `layer1.0.bn1`, or `layer1.0.bn1 + relu` when the engine fused the ReLU.
    public var label: String { appliesReLU ? "\(module) + relu" : module }
}
