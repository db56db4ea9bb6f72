import TorchportCore
/// The structure of a ResNet, recognised from a state dict's shapes alone: block type, blocks per
/// stage, groups and width per group, stage widths, stem width and head size.
public struct ResNetArchitecture: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The residual block type: `basic` (two 3x3 convolutions; ResNet-18/34) or `bottleneck`
    /// (1x1, 3x3, 1x1 with 4x expansion; ResNet-50 and deeper, ResNeXt, Wide ResNet).
    public enum BlockKind: String, Sendable, Codable {
        /// Two 3x3 convolutions (torchvision's `BasicBlock`).
        case basic
        /// 1x1, 3x3 (grouped for ResNeXt), 1x1 with 4x expansion (torchvision's `Bottleneck`).
        case bottleneck
    }

    /// The residual block type of every stage.
    public var block: BlockKind
    /// Number of blocks in each of the four stages (`[3, 4, 6, 3]` for ResNet-50).
    public var layers: [Int]
    /// Groups of each bottleneck's 3x3 convolution (1 for ResNet, 32 or 64 for ResNeXt).
    public var groups: Int
    /// torchvision's `width_per_group` (64 by default; 4 or 8 for ResNeXt, 128 for Wide ResNet).
    public var widthPerGroup: Int
    /// `planes` of each stage (torchvision: 64, 128, 256, 512).
    public var stageWidths: [Int]
    /// Output channels of the stem convolution (`conv1`; 64 in torchvision).
    public var stemWidth: Int
    /// Width of each stage's 3x3 convolution when read from a state dict (torchvision computes
    /// `int(planes * width_per_group / 64) * groups`, which `widthPerGroup` alone cannot always undo).
    public var innerWidths: [Int]?
    /// nil for a headless backbone.
    public var numClasses: Int?

    /// Ratio of a block's output channels to its `planes`: 1 for basic blocks, 4 for bottlenecks.
    public var expansion: Int { block == .basic ? 1 : 4 }
    /// Channels of the pooled features that feed the classifier head (last stage width times `expansion`).
    public var featureWidth: Int { (stageWidths.last ?? 0) * expansion }

    /// torchvision's name when the structure is one of its ten ResNets (any head size).
    public var torchvisionName: String? {
        guard stemWidth == 64, stageWidths == [64, 128, 256, 512] else { return nil }
        return Self.named.first { $0.value.block == block && $0.value.layers == layers && $0.value.groups == groups
            && $0.value.widthPerGroup == widthPerGroup }?.key
    }

    /// `resnet50`, or a structural description for custom networks.
    public var description: String {
        if let name = torchvisionName { return name }
        var s = "resnet(\(block.rawValue), layers \(layers), widths \(stageWidths), stem \(stemWidth)"
        if groups != 1 || widthPerGroup != 64 { s += ", groups \(groups), width/group \(widthPerGroup)" }
        return s + ")"
    }

    /// torchvision's ten ResNet structures by name (`resnet18` … `wide_resnet101_2`), with a 1000-class head.
    public static let named: [String: ResNetArchitecture] = [
        "resnet18": .init(block: .basic, layers: [2, 2, 2, 2]),
        "resnet34": .init(block: .basic, layers: [3, 4, 6, 3]),
        "resnet50": .init(block: .bottleneck, layers: [3, 4, 6, 3]),
        "resnet101": .init(block: .bottleneck, layers: [3, 4, 23, 3]),
        "resnet152": .init(block: .bottleneck, layers: [3, 8, 36, 3]),
        "resnext50_32x4d": .init(block: .bottleneck, layers: [3, 4, 6, 3], groups: 32, widthPerGroup: 4),
        "resnext101_32x8d": .init(block: .bottleneck, layers: [3, 4, 23, 3], groups: 32, widthPerGroup: 8),
        "resnext101_64x4d": .init(block: .bottleneck, layers: [3, 4, 23, 3], groups: 64, widthPerGroup: 4),
        "wide_resnet50_2": .init(block: .bottleneck, layers: [3, 4, 6, 3], widthPerGroup: 128),
        "wide_resnet101_2": .init(block: .bottleneck, layers: [3, 4, 23, 3], widthPerGroup: 128),
    ]

    /// Creates an architecture; the defaults are torchvision's (64-channel stem, stage widths
    /// 64/128/256/512, 1000 classes). Pass `numClasses: nil` for a headless backbone.
    public init(block: BlockKind, layers: [Int], groups: Int = 1, widthPerGroup: Int = 64,
                stageWidths: [Int] = [64, 128, 256, 512], stemWidth: Int = 64, numClasses: Int? = 1000) {
        self.block = block
        self.layers = layers
        self.groups = groups
        self.widthPerGroup = widthPerGroup
        self.stageWidths = stageWidths
        self.stemWidth = stemWidth
        self.numClasses = numClasses
    }

    /// Width of the 3x3 convolution of a bottleneck stage: `planes * (width_per_group / 64) * groups`.
    func innerWidth(stage: Int) -> Int {
        if block == .basic { return stageWidths[stage] }
        if let w = innerWidths, stage < w.count { return w[stage] }
        return stageWidths[stage] * widthPerGroup / 64 * groups
    }

    /// Every state-dict key this architecture expects, with its shape (canonical torchvision names).
    public var expectedShapes: [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = []
        func bn(_ p: String, _ c: Int) {
            for s in ["weight", "bias", "running_mean", "running_var"] { out.append(("\(p).\(s)", [c])) }
        }
        out.append(("conv1.weight", [stemWidth, 3, 7, 7]))
        bn("bn1", stemWidth)
        var inplanes = stemWidth
        for (stage, count) in layers.enumerated() {
            let planes = stageWidths[stage]
            let width = innerWidth(stage: stage)
            let outC = planes * expansion
            for i in 0..<count {
                let p = "layer\(stage + 1).\(i)"
                if block == .basic {
                    out.append(("\(p).conv1.weight", [planes, inplanes, 3, 3])); bn("\(p).bn1", planes)
                    out.append(("\(p).conv2.weight", [planes, planes, 3, 3])); bn("\(p).bn2", planes)
                } else {
                    out.append(("\(p).conv1.weight", [width, inplanes, 1, 1])); bn("\(p).bn1", width)
                    out.append(("\(p).conv2.weight", [width, width / groups, 3, 3])); bn("\(p).bn2", width)
                    out.append(("\(p).conv3.weight", [outC, width, 1, 1])); bn("\(p).bn3", outC)
                }
                if i == 0 && (stage > 0 || inplanes != outC) {
                    out.append(("\(p).downsample.0.weight", [outC, inplanes, 1, 1])); bn("\(p).downsample.1", outC)
                }
                inplanes = outC
            }
        }
        if let c = numClasses {
            out.append(("fc.weight", [c, inplanes]))
            out.append(("fc.bias", [c]))
        }
        return out
    }

    /// Recognises the structure from canonical names and shapes. Returns nil when the tensors do
    /// not describe a torchvision-style ResNet (no stem, no stages).
    public static func recognise(_ shapes: [String: [Int]]) -> ResNetArchitecture? {
        guard let stem = shapes["conv1.weight"], stem.count == 4, stem[1] == 3, stem[0] > 0 else { return nil }
        let bottleneck = shapes["layer1.0.conv3.weight"] != nil
        var layers: [Int] = []
        var widths: [Int] = []
        var groups = 1, innerOverPlanes = 1.0
        var inner: [Int] = []
        for stage in 1...4 {
            var n = 0
            while shapes["layer\(stage).\(n).conv1.weight"] != nil { n += 1 }
            guard n > 0 else { break }
            layers.append(n)
            if bottleneck {
                guard let c3 = shapes["layer\(stage).0.conv3.weight"], let c2 = shapes["layer\(stage).0.conv2.weight"],
                      c3.count == 4, c2.count == 4, c2[1] > 0, c3[0] >= 4, c2[0] >= c2[1] else { return nil }
                let planes = c3[0] / 4
                widths.append(planes)
                groups = c2[0] / c2[1]  // >= 1: zero-size shapes of a hostile file are not a ResNet
                inner.append(c2[0])
                innerOverPlanes = Double(c2[0]) / Double(planes)
            } else {
                guard let c1 = shapes["layer\(stage).0.conv1.weight"], c1.count == 4, c1[0] > 0 else { return nil }
                widths.append(c1[0])
            }
        }
        guard layers.count == 4 else { return nil }
        // width = planes * wpg / 64 * groups  =>  wpg = 64 * (width / planes) / groups
        let ratio = (64 * innerOverPlanes / Double(groups)).rounded()
        guard ratio.isFinite, ratio >= 1, ratio <= Double(Int32.max) else { return nil }
        let wpg = bottleneck ? Int(ratio) : 64
        let classes = shapes["fc.weight"].flatMap { $0.count == 2 ? $0[0] : nil }
        var arch = ResNetArchitecture(block: bottleneck ? .bottleneck : .basic, layers: layers, groups: groups,
                                      widthPerGroup: wpg, stageWidths: widths, stemWidth: stem[0], numClasses: classes)
        if bottleneck && (0..<4).contains(where: { arch.innerWidth(stage: $0) != inner[$0] }) { arch.innerWidths = inner }
        return arch
    }
}
