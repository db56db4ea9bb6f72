import TorchportCore
/// torchvision's BasicBlock: conv3x3 → bn → relu → conv3x3 → bn → (+ identity / downsample) → relu.
package struct BasicBlock: Sendable {
    /// The first 3x3 convolution (carries the stride), fused with `bn1` and ReLU.
    package let conv1: Conv2d   // with bn1
    /// The second 3x3 convolution, fused with `bn2`, the residual add and ReLU.
    package let conv2: Conv2d   // with bn2
    /// The 1x1 projection of the identity (`downsample.0` with `downsample.1`), when the block changes
    /// stride or width; nil otherwise.
    package let downsample: Conv2d?  // downsample.0 with downsample.1

    func callAsFunction(_ x: FeatureMap, executor: Executor) -> FeatureMap {
        let identity = downsample.map { $0(x, relu: false, executor: executor) } ?? x
        let y = conv1(x, relu: true, executor: executor)
        return conv2(y, residual: identity, relu: true, executor: executor)
    }
}

/// torchvision's Bottleneck (v1.5: the stride sits on the 3x3 conv): 1x1 → 3x3 (grouped) → 1x1,
/// each with its BatchNorm, then (+ identity / downsample) → relu.
package struct Bottleneck: Sendable {
    /// The 1x1 reduction to the inner width, fused with `bn1` and ReLU.
    package let conv1: Conv2d
    /// The 3x3 (grouped) convolution, which carries the stride, fused with `bn2` and ReLU.
    package let conv2: Conv2d
    /// The 1x1 expansion to `planes * 4` channels, fused with `bn3`, the residual add and ReLU.
    package let conv3: Conv2d
    /// The 1x1 projection of the identity (`downsample.0` with `downsample.1`), when the block changes
    /// stride or width; nil otherwise.
    package let downsample: Conv2d?

    func callAsFunction(_ x: FeatureMap, executor: Executor) -> FeatureMap {
        let identity = downsample.map { $0(x, relu: false, executor: executor) } ?? x
        let y1 = conv1(x, relu: true, executor: executor)
        let y2 = conv2(y1, relu: true, executor: executor)
        return conv3(y2, residual: identity, relu: true, executor: executor)
    }
}

/// One residual block of a stage: ``BasicBlock`` (ResNet-18/34) or ``Bottleneck`` (deeper ResNets,
/// ResNeXt, Wide ResNet).
package enum Block: Sendable {
    /// A torchvision BasicBlock.
    case basic(BasicBlock)
    /// A torchvision Bottleneck.
    case bottleneck(Bottleneck)

    func callAsFunction(_ x: FeatureMap, executor: Executor) -> FeatureMap {
        switch self {
        case .basic(let b): b(x, executor: executor)
        case .bottleneck(let b): b(x, executor: executor)
        }
    }

    func withoutWeights() -> Block {
        switch self {
        case .basic(let b):
            .basic(BasicBlock(conv1: b.conv1.withoutWeights(), conv2: b.conv2.withoutWeights(),
                              downsample: b.downsample?.withoutWeights()))
        case .bottleneck(let b):
            .bottleneck(Bottleneck(conv1: b.conv1.withoutWeights(), conv2: b.conv2.withoutWeights(),
                                   conv3: b.conv3.withoutWeights(), downsample: b.downsample?.withoutWeights()))
        }
    }

    /// The convolutions of the main path, in order; the last one takes the residual.
    var mainPath: [Conv2d] {
        switch self {
        case .basic(let b): [b.conv1, b.conv2]
        case .bottleneck(let b): [b.conv1, b.conv2, b.conv3]
        }
    }

    /// The projection of the identity, when the block has one.
    var downsample: Conv2d? {
        switch self {
        case .basic(let b): b.downsample
        case .bottleneck(let b): b.downsample
        }
    }

    var convs: [Conv2d] { mainPath + (downsample.map { [$0] } ?? []) }
}
