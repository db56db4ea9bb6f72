import TorchportCore

extension ResNetModel {
    /// The forward pass of `input` with every point the engine computes recorded, in forward
    /// order, each named after the torchvision module whose output it equals, for a per-layer
    /// comparison with a golden's `intermediates` (`LayerReport` in Verification).
    ///
    /// - The reference engine records every module: `conv1`, `bn1`, `relu`, `maxpool`, and in
    ///   each block `conv1`, `bn1`, `conv2`, `bn2` (, `conv3`, `bn3`), `downsample.0`,
    ///   `downsample.1`, `downsample`, the block, then each stage, `avgpool` and `fc`. (For this
    ///   pass the convolution and its BatchNorm run one after the other instead of fused.)
    /// - The packed engine folds each BatchNorm into its convolution and fuses the ReLU after it:
    ///   it records `relu` (the stem), `maxpool`, each inner convolution's BatchNorm output after
    ///   ReLU (`layer1.0.bn1` with ``TracedOutput/appliesReLU``), `downsample.1`, each block and
    ///   stage, `avgpool` and `fc`; convolution outputs before their BatchNorm do not exist there.
    public func trace(_ input: FeatureMap) throws(InputError) -> [TracedOutput] {
        try Self.checkInput(input)
        var out: [TracedOutput]
        var x: FeatureMap
        if let packed {
            out = []
            // Each stage's output is its last block's (the packed plan has no step of its own for it).
            let lastBlocks = Set(layers.enumerated().map { "layer\($0.offset + 1).\($0.element.count - 1)" })
            for t in packed.trace(input, executor: executor) {
                out.append(t)
                if lastBlocks.contains(t.module), let stage = t.module.split(separator: ".").first {
                    out.append(TracedOutput(module: String(stage), shape: t.shape, values: t.values))
                }
            }
            // layer4's output, from the trace itself (no second forward pass).
            guard let last = out.last, last.shape.count == 4 else { return out }
            x = FeatureMap(unchecked: last.shape[0], c: last.shape[1], h: last.shape[2], w: last.shape[3], data: last.values)
        } else {
            (out, x) = referenceTrace(input)
        }
        let pooled = globalAveragePool(x)
        out.append(TracedOutput(module: "avgpool", shape: [x.n, x.c, 1, 1], values: pooled))
        if let fc {
            out.append(TracedOutput(module: "fc", shape: [x.n, fc.outFeatures], values: fc(pooled, batch: x.n, executor: executor)))
        }
        return out
    }

    /// The reference engine's trace up to layer4, and layer4's output.
    private func referenceTrace(_ input: FeatureMap) -> ([TracedOutput], FeatureMap) {
        var out: [TracedOutput] = []
        func record(_ module: String, _ m: FeatureMap) { out.append(TracedOutput(module: module, shape: m.shape, values: m.data)) }
        /// Convolution, then BatchNorm: both recorded; the BatchNorm's output returned.
        func convBN(_ c: Conv2d, _ x: FeatureMap, conv: String, bn: String) -> FeatureMap {
            let plain = Conv2d(name: c.name, weight: c.weight, shape: [c.outChannels, c.inChannels / c.groups, c.kernel, c.kernel],
                               stride: c.stride, padding: c.padding, groups: c.groups, bn: .identity(c.outChannels))
            let y = plain(x, relu: false, executor: executor)
            record(conv, y)
            var z = y
            let plane = z.plane
            for n in 0..<z.n {
                for ch in 0..<z.c {
                    let base = (n * z.c + ch) * plane, s = c.bn.scale[ch], t = c.bn.shift[ch]
                    for i in base..<(base + plane) { z.data[i] = y.data[i] * s + t }
                }
            }
            record(bn, z)
            return z
        }
        func relu(_ m: FeatureMap) -> FeatureMap {
            var r = m
            for i in r.data.indices where !(r.data[i] > 0) && !r.data[i].isNaN { r.data[i] = 0 }
            return r
        }
        var x = relu(convBN(conv1, input, conv: "conv1", bn: "bn1"))
        record("relu", x)
        x = maxPool3x3s2(x, executor: executor)
        record("maxpool", x)
        for (s, stage) in layers.enumerated() {
            for (b, block) in stage.enumerated() {
                let p = "layer\(s + 1).\(b)"
                var y = x
                let main = block.mainPath
                for (j, c) in main.enumerated() {
                    y = convBN(c, y, conv: "\(p).conv\(j + 1)", bn: "\(p).bn\(j + 1)")
                    if j < main.count - 1 { y = relu(y) }
                }
                var identity = x
                if let d = block.downsample {
                    identity = convBN(d, x, conv: "\(p).downsample.0", bn: "\(p).downsample.1")
                    record("\(p).downsample", identity)
                }
                for i in y.data.indices { y.data[i] += identity.data[i] }
                x = relu(y)
                record(p, x)
            }
            record("layer\(s + 1)", x)
        }
        return (out, x)
    }
}

extension BatchNorm2d {
    /// A BatchNorm that changes nothing (scale 1, shift 0), for a convolution's own output.
    static func identity(_ channels: Int) -> BatchNorm2d {
        BatchNorm2d(weight: [Float](repeating: 1, count: channels), bias: [Float](repeating: 0, count: channels),
                    runningMean: [Float](repeating: 0, count: channels), runningVar: [Float](repeating: 1, count: channels), eps: 0)
    }
}
