import CKernels
import StateDict
import TorchportCore

/// A torchvision ResNet bound to its weights, for CPU inference in float32: the one model type.
///
/// ```swift
/// let model = try ResNetModel(contentsOf: URL(fileURLWithPath: "resnet50.pth"))  // import Torchport
/// let output = try model(try FeatureMap(n: 1, c: 3, h: 224, w: 224, data: pixels))
/// let weight = model.parameter("layer1.0.conv1.weight")  // as loaded, by torchvision name
/// ```
///
/// The forward pass runs on ``engine``: the packed engine where the CPU has AVX-512 or AVX2 + FMA
/// (its weights are packed at bind time, with BatchNorm folded in), else the reference engine
/// (im2col + OpenBLAS). Whatever the engine, every bound parameter and buffer stays readable as
/// loaded, by torchvision name (``parameter(_:)``, ``parameters``): views of the file's bytes
/// (zero-copy where the stored layout allows), never the engine's folded or packed copies.
public struct ResNetModel: Sendable {
    /// The recognised (or forced) structure the weights were bound to.
    public let architecture: ResNetArchitecture
    /// How the file's tensor names were mapped to torchvision's (the decisions, the state dict).
    public let mapping: NameMapping
    /// The file the weights came from and its format, when they came from a file.
    public let source: WeightsSource?
    /// Bound parameters and buffers by torchvision name.
    private let parameterIndex: [String: TensorRecord]
    /// The stem: stride-2 convolution (7x7 in torchvision) fused with `bn1` and ReLU.
    package private(set) var conv1: Conv2d
    /// The four stages of residual blocks, in torchvision's order.
    package private(set) var layer1: [Block], layer2: [Block], layer3: [Block], layer4: [Block]
    /// nil for a headless backbone, which returns pooled features instead of logits.
    package let fc: Linear?
    /// The packed weights and plans, with ``InferenceEngine/packed``.
    private(set) var packed: PackedNet?
    /// The implementation that runs the forward pass.
    public var engine: InferenceEngine { packed == nil ? .reference : .packed }
    /// The threads that run the forward passes (``Executor/shared`` unless one was given).
    public let executor: Executor

    /// `[layer1, layer2, layer3, layer4]`.
    package var layers: [[Block]] { [layer1, layer2, layer3, layer4] }

    /// Binds a mapped state dict strictly: every expected key present with its shape, nothing
    /// unexpected. All problems are reported together in one `BindingError`. `engine` nil picks
    /// ``InferenceEngine/best``; an engine this CPU cannot run is refused
    /// (`BindingError.Kind.engineUnavailable`). With the packed engine, a model whose convolutions
    /// its kernels cannot run (group widths that do not tile its blocks) runs on the reference
    /// engine; ``engine`` says which one runs. `source` names the file, for errors and reports.
    /// Forward passes run on `executor`'s threads.
    public init(mapping: NameMapping, architecture forced: ResNetArchitecture? = nil, engine: InferenceEngine? = nil,
                source: WeightsSource? = nil, executor: Executor = .shared) throws(BindingError) {
        self.executor = executor
        let file = source?.file
        if let engine, !engine.isAvailable {
            throw BindingError(.engineUnavailable("the \(engine.rawValue) engine needs AVX-512 (F, VL, DQ, BW) or AVX2 + FMA, which this CPU or build lacks (or TORCHPORT_ISA forces another)"),
                               file: file)
        }
        // A forced architecture keeps the head the file has (a fine-tuned head of any size).
        let arch: ResNetArchitecture
        do {
            arch = try mapping.checkBinding(architecture: forced)
        } catch {
            throw error.with(file: file)
        }
        let t = mapping.tensors
        func floats(_ name: String) throws(BindingError) -> [Float] {
            guard let r = t[name] else {
                throw BindingError(.mismatch(missing: [name], unexpected: [], shapes: [], hints: [:]), file: file)
            }
            guard r.dtype.isFloatingPoint else { throw BindingError(.unsupportedDType(name: name, dtype: r.dtype), file: file) }
            return r.floats()
        }
        func bn(_ p: String) throws(BindingError) -> BatchNorm2d {
            BatchNorm2d(weight: try floats("\(p).weight"), bias: try floats("\(p).bias"),
                        runningMean: try floats("\(p).running_mean"), runningVar: try floats("\(p).running_var"))
        }
        func conv(_ name: String, bn bnName: String, stride: Int, groups: Int = 1) throws(BindingError) -> Conv2d {
            let shape = t[name + ".weight"]?.shape ?? []
            return Conv2d(name: name, weight: try floats(name + ".weight"), shape: shape, stride: stride, padding: shape[2] / 2,
                          groups: groups, bn: try bn(bnName))
        }
        conv1 = try conv("conv1", bn: "bn1", stride: 2)
        var stages: [[Block]] = []
        for (s, count) in arch.layers.enumerated() {
            var blocks: [Block] = []
            for i in 0..<count {
                let p = "layer\(s + 1).\(i)"
                let stride = (s > 0 && i == 0) ? 2 : 1
                let down = t["\(p).downsample.0.weight"] != nil
                    ? try conv("\(p).downsample.0", bn: "\(p).downsample.1", stride: stride) : nil
                switch arch.block {
                case .basic:
                    blocks.append(.basic(BasicBlock(conv1: try conv("\(p).conv1", bn: "\(p).bn1", stride: stride),
                                                    conv2: try conv("\(p).conv2", bn: "\(p).bn2", stride: 1),
                                                    downsample: down)))
                case .bottleneck:
                    blocks.append(.bottleneck(Bottleneck(conv1: try conv("\(p).conv1", bn: "\(p).bn1", stride: 1),
                                                         conv2: try conv("\(p).conv2", bn: "\(p).bn2", stride: stride, groups: arch.groups),
                                                         conv3: try conv("\(p).conv3", bn: "\(p).bn3", stride: 1),
                                                         downsample: down)))
                }
            }
            stages.append(blocks)
        }
        (layer1, layer2, layer3, layer4) = (stages[0], stages[1], stages[2], stages[3])
        if let classes = arch.numClasses {
            fc = Linear(weight: try floats("fc.weight"), bias: try floats("fc.bias"),
                        inFeatures: arch.featureWidth, outFeatures: classes)
        } else {
            fc = nil
        }
        architecture = arch
        self.mapping = mapping
        self.source = source
        parameterIndex = t
        packed = nil
        if (engine ?? .best) == .packed, let net = PackedNet(self) {
            packed = net
            // The packed copy is the one that runs: drop the reference weights.
            conv1 = conv1.withoutWeights()
            layer1 = layer1.map { $0.withoutWeights() }
            layer2 = layer2.map { $0.withoutWeights() }
            layer3 = layer3.map { $0.withoutWeights() }
            layer4 = layer4.map { $0.withoutWeights() }
            tp_trim_heap()  // the float32 copies just dropped
        }
    }

    // MARK: - Parameters

    /// The bound parameter or buffer named `name` as torchvision names it (`layer1.0.conv1.weight`,
    /// `bn1.running_var`, `fc.bias`), as loaded (its stored dtype; `floats()` widens to float32).
    public func parameter(_ name: String) -> TensorRecord? { parameterIndex[name] }

    /// Every bound parameter and buffer, under torchvision's names, in the file's order.
    public var parameters: [(name: String, tensor: TensorRecord)] { mapping.stateDict }

    /// The dtype most bound tensors were stored in (before they were widened to float32).
    public var storedDType: DType? {
        let counts = Dictionary(grouping: mapping.stateDict.map(\.tensor.dtype), by: { $0 })
        return counts.max { $0.value.count != $1.value.count ? $0.value.count < $1.value.count : $0.key.rawValue > $1.key.rawValue }?.key
    }

    // MARK: - Inference

    /// The layer4 feature map of a batch `[n, 3, h, w]`.
    public func featureMap(_ input: FeatureMap) throws(InputError) -> FeatureMap {
        try Self.checkInput(input)
        if let packed { return packed.featureMap(input, executor: executor) }
        var x = conv1(input, relu: true, executor: executor)
        x = maxPool3x3s2(x, executor: executor)
        for stage in layers {
            for block in stage { x = block(x, executor: executor) }
        }
        return x
    }

    static func checkInput(_ input: FeatureMap) throws(InputError) {
        guard input.c == 3 else { throw InputError(.channels(expected: 3, got: input.c)) }
        guard input.n > 0 else { throw InputError(.emptyBatch) }
        // The spatial size must stay >= 1 through the stem (/2), the pool (/2) and three stride-2 stages.
        var h = input.h, w = input.w
        for _ in 0..<5 { h = (h + 2 - 3) / 2 + 1; w = (w + 2 - 3) / 2 + 1 }
        guard input.h >= 1, input.w >= 1, h >= 1, w >= 1 else {
            throw InputError(.tooSmall(height: input.h, width: input.w))
        }
    }

    /// Pooled features `[n, C]` (AdaptiveAvgPool2d(1) + flatten).
    public func features(_ input: FeatureMap) throws(InputError) -> ModelOutput {
        let values: [Float]
        if let packed {
            try Self.checkInput(input)
            values = packed.features(input, executor: executor)
        } else {
            values = globalAveragePool(try featureMap(input))
        }
        return ModelOutput(unchecked: input.n, width: architecture.featureWidth, values: values)
    }

    /// Logits `[n, classes]`, or pooled features for a headless backbone.
    public func callAsFunction(_ input: FeatureMap) throws(InputError) -> ModelOutput {
        let f = try features(input)
        guard let fc else { return f }
        let logits = Profiler.timed("fc", flops: 2 * fc.inFeatures * fc.outFeatures * input.n) {
            fc(f.values, batch: input.n, executor: executor)
        }
        return ModelOutput(unchecked: input.n, width: fc.outFeatures, values: logits)
    }

    /// With the packed engine: bytes of the arena that holds every activation of a forward pass of
    /// `batch` images of `height` x `width` (planned once per size), and of the largest single
    /// activation; nil with the reference engine.
    public func activationMemory(batch: Int, height: Int, width: Int) -> (arena: Int, largest: Int)? {
        packed?.arenaBytes(n: batch, h: height, w: width, threads: executor.threads)
    }

    /// Bytes of the weights as the engine holds them: packed (BatchNorm folded, Winograd-transformed
    /// where used) with the packed engine, float32 arrays with the reference one; plus the head.
    public var weightBytes: Int {
        let head = fc.map { ($0.weight.count + $0.bias.count) * 4 } ?? 0
        if let packed { return packed.weightBytes + head }
        let convs = [conv1] + layers.joined().flatMap(\.convs)
        return convs.reduce(head) { $0 + ($1.weight.count + 2 * $1.bn.scale.count) * 4 }
    }

    /// Output width: classes, or feature channels for a headless backbone.
    public var outputWidth: Int { architecture.numClasses ?? architecture.featureWidth }

    /// Multiply-add FLOPs x 2 of one forward pass of one image of size h x w.
    public func flops(height h: Int, width w: Int) -> Int {
        var total = conv1.flops(h, w)
        var (ch, cw) = conv1.outputSize(h, w)
        (ch, cw) = ((ch - 1) / 2 + 1, (cw - 1) / 2 + 1)  // max pool
        for block in layers.joined() {
            if let down = block.downsample { total += down.flops(ch, cw) }
            for conv in block.mainPath {
                total += conv.flops(ch, cw)
                (ch, cw) = conv.outputSize(ch, cw)
            }
        }
        return total + 2 * (fc.map { $0.inFeatures * $0.outFeatures } ?? 0)
    }
}
