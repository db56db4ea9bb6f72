/// torchvision's BasicBlock: conv3x3 → bn → relu → conv3x3 → bn → (+ identity / downsample) → relu.
public struct BasicBlock: Sendable {
    public let conv1: Conv2d   // with bn1
    public let conv2: Conv2d   // with bn2
    public let downsample: Conv2d?  // downsample.0 with downsample.1

    func callAsFunction(_ x: FeatureMap, scratch: inout [Float]) -> FeatureMap {
        let identity = downsample.map { $0(x, relu: false, scratch: &scratch) } ?? x
        let y = conv1(x, relu: true, scratch: &scratch)
        return conv2(y, residual: identity, relu: true, scratch: &scratch)
    }
}

/// torchvision's Bottleneck (v1.5: the stride sits on the 3x3 conv): 1x1 → 3x3 (grouped) → 1x1,
/// each with its BatchNorm, then (+ identity / downsample) → relu.
public struct Bottleneck: Sendable {
    public let conv1: Conv2d
    public let conv2: Conv2d
    public let conv3: Conv2d
    public let downsample: Conv2d?

    func callAsFunction(_ x: FeatureMap, scratch: inout [Float]) -> FeatureMap {
        let identity = downsample.map { $0(x, relu: false, scratch: &scratch) } ?? x
        let y1 = conv1(x, relu: true, scratch: &scratch)
        let y2 = conv2(y1, relu: true, scratch: &scratch)
        return conv3(y2, residual: identity, relu: true, scratch: &scratch)
    }
}

public enum Block: Sendable {
    case basic(BasicBlock)
    case bottleneck(Bottleneck)

    func callAsFunction(_ x: FeatureMap, scratch: inout [Float]) -> FeatureMap {
        switch self {
        case .basic(let b): b(x, scratch: &scratch)
        case .bottleneck(let b): b(x, scratch: &scratch)
        }
    }

    var convs: [Conv2d] {
        switch self {
        case .basic(let b): [b.conv1, b.conv2] + (b.downsample.map { [$0] } ?? [])
        case .bottleneck(let b): [b.conv1, b.conv2, b.conv3] + (b.downsample.map { [$0] } ?? [])
        }
    }
}
