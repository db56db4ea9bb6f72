import TorchportCore
/// BatchNorm2d in eval mode: `y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`,
/// applied as a per-channel `scale` and `shift` (computed in Double) in the epilogue of the
/// convolution before it. FrozenBatchNorm2d (detection backbones) has the same four buffers.
package struct BatchNorm2d: Sendable {
    /// Per-channel multiplier, `weight / sqrt(running_var + eps)`.
    package let scale: [Float]
    /// Per-channel offset, `bias - running_mean * scale`.
    package let shift: [Float]
    /// torch's default epsilon, 1e-5.
    package static let eps = 1e-5

    /// Folds the four BatchNorm2d buffers (one value per channel) into `scale` and `shift`.
    package init(weight: [Float], bias: [Float], runningMean: [Float], runningVar: [Float], eps: Double = BatchNorm2d.eps) {
        var scale = [Float](repeating: 0, count: weight.count)
        var shift = [Float](repeating: 0, count: weight.count)
        for i in weight.indices {
            let s = Double(weight[i]) / (Double(runningVar[i]) + eps).squareRoot()
            scale[i] = Float(s)
            shift[i] = Float(Double(bias[i]) - Double(runningMean[i]) * s)
        }
        self.scale = scale
        self.shift = shift
    }
}

/// Conv2d without bias (as in every torchvision ResNet), followed by its BatchNorm2d, an optional
/// residual add and ReLU, fused in one pass over the output. Weight layout `[out, in/groups, kh, kw]`
/// (torch's). Computed by im2col + sgemm per group; 1x1 stride-1 convolutions skip im2col.
package struct Conv2d: Sendable {
    /// The convolution weights, layout `[out, in/groups, kh, kw]`; empty in a model that runs on
    /// the packed engine, which holds its own packed copy (``ResNetModel/engine``).
    package let weight: [Float]
    /// Output and input channels, square kernel size, stride and padding (same in both dimensions) and groups.
    package let outChannels: Int, inChannels: Int, kernel: Int, stride: Int, padding: Int, groups: Int
    /// The batch normalisation fused after the convolution.
    package let bn: BatchNorm2d

    /// torchvision's name of the layer (`layer1.0.conv2`), for reports.
    package let name: String

    /// Creates a convolution from torch's weights; `shape` is `[out, in/groups, k, k]` (square kernels only).
    package init(name: String = "", weight: [Float], shape: [Int], stride: Int, padding: Int, groups: Int, bn: BatchNorm2d) {
        precondition(shape.count == 4 && shape[2] == shape[3])
        self.name = name
        self.weight = weight
        outChannels = shape[0]
        inChannels = shape[1] * groups
        kernel = shape[2]
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.bn = bn
    }

    /// This convolution with no weights (kept by the packed engine instead).
    func withoutWeights() -> Conv2d {
        Conv2d(name: name, weight: [], shape: [outChannels, inChannels / groups, kernel, kernel], stride: stride,
               padding: padding, groups: groups, bn: bn)
    }

    func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        ((h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1)
    }

    /// FLOPs (multiply-adds x 2) for one image of size h x w.
    func flops(_ h: Int, _ w: Int) -> Int {
        let (oh, ow) = outputSize(h, w)
        return 2 * outChannels * (inChannels / groups) * kernel * kernel * oh * ow
    }

    /// Runs the convolution with BN, residual and ReLU fused. Work is split across the threads of
    /// `executor`, each piece calling single-threaded OpenBLAS so no stage
    /// runs serially while other cores wait: by image when the batch has enough images; else by
    /// columns of output pixels when there are many; else (small late-stage maps) by output
    /// channels (or by groups for grouped convolutions) over one shared im2col.
    func callAsFunction(_ x: FeatureMap, residual: FeatureMap? = nil, relu: Bool, executor: Executor) -> FeatureMap {
        precondition(x.c == inChannels)
        return Profiler.timed(name, flops: flops(x.h, x.w) * x.n) { run(x, residual: residual, relu: relu, executor: executor) }
    }

    private func run(_ x: FeatureMap, residual: FeatureMap?, relu: Bool, executor: Executor) -> FeatureMap {
        let (oh, ow) = outputSize(x.h, x.w)
        var out = FeatureMap(n: x.n, c: outChannels, h: oh, w: ow)
        let npix = oh * ow
        let threads = executor.threads
        let outImage = outChannels * npix, inImage = x.imageSize
        let cinG = inChannels / groups, coutG = outChannels / groups
        let kdim = cinG * kernel * kernel
        let direct = kernel == 1 && stride == 1 && padding == 0
        x.data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                let res = residual?.data
                res.withOptionalPointer { resPtr in
                    let srcBase = src.baseAddress!, dstBase = dst.baseAddress!
                    func piece(_ b: Int, columns: Range<Int>, groups gr: Range<Int>, channels ch: Range<Int>, col: UnsafePointer<Float>?) {
                        run(srcBase + b * inImage, x.h, x.w, dst: dstBase + b * outImage, oh: oh, ow: ow, columns: columns,
                            groups: gr, channels: ch, sharedCol: col, residual: resPtr.map { $0 + b * outImage }, relu: relu)
                    }
                    if threads == 1 || x.n >= threads {
                        executor.forEach(min(threads, x.n)) { t in
                            var b = t
                            while b < x.n {
                                piece(b, columns: 0..<npix, groups: 0..<groups, channels: 0..<outChannels, col: nil)
                                b += threads
                            }
                        }
                    } else if npix >= 128 * threads {
                        executor.forEach(splitting: npix, threads: threads) { _, cols in
                            for b in 0..<x.n { piece(b, columns: cols, groups: 0..<groups, channels: 0..<outChannels, col: nil) }
                        }
                    } else if groups > 1 {
                        executor.forEach(splitting: groups, threads: threads) { _, gs in
                            for b in 0..<x.n {
                                piece(b, columns: 0..<npix, groups: gs, channels: (gs.lowerBound * coutG)..<(gs.upperBound * coutG), col: nil)
                            }
                        }
                    } else {
                        let col = direct ? nil : UnsafeMutablePointer<Float>.allocate(capacity: kdim * npix)
                        defer { col?.deallocate() }
                        for b in 0..<x.n {
                            if let col { im2col(srcBase + b * inImage, channels: cinG, h: x.h, w: x.w, oh: oh, ow: ow, columns: 0..<npix, into: col) }
                            executor.forEach(threads) { t in
                                // Split output channels in multiples of 16 (whole SIMD tiles of the sgemm kernel).
                                let blocks = (outChannels + 15) / 16
                                let lo = min(outChannels, 16 * (blocks * t / threads)), hi = min(outChannels, 16 * (blocks * (t + 1) / threads))
                                piece(b, columns: 0..<npix, groups: 0..<1, channels: lo..<hi, col: col.map { UnsafePointer($0) })
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// One image: output pixels `columns`, output channels `channels` (lying within `groups`):
    /// im2col of those columns (unless `sharedCol` holds all of them), sgemm per group, epilogue.
    private func run(_ image: UnsafePointer<Float>, _ h: Int, _ w: Int, dst: UnsafeMutablePointer<Float>, oh: Int, ow: Int,
                     columns: Range<Int>, groups groupRange: Range<Int>, channels: Range<Int>, sharedCol: UnsafePointer<Float>?,
                     residual: UnsafePointer<Float>?, relu: Bool) {
        guard !columns.isEmpty, !channels.isEmpty else { return }
        let cinG = inChannels / groups, coutG = outChannels / groups
        let kdim = cinG * kernel * kernel
        let npix = oh * ow, cols = columns.count
        let direct = kernel == 1 && stride == 1 && padding == 0
        let col = direct || sharedCol != nil ? nil : UnsafeMutablePointer<Float>.allocate(capacity: kdim * cols)
        defer { col?.deallocate() }
        weight.withUnsafeBufferPointer { wt in
            for g in groupRange {
                let groupImage = image + g * cinG * h * w
                let b: UnsafePointer<Float>, ldb: Int
                if let sharedCol {
                    (b, ldb) = (sharedCol, npix)
                } else if let col {
                    im2col(groupImage, channels: cinG, h: h, w: w, oh: oh, ow: ow, columns: columns, into: col)
                    (b, ldb) = (UnsafePointer(col), cols)
                } else {
                    (b, ldb) = (groupImage + columns.lowerBound, npix)
                }
                let c0 = max(channels.lowerBound, g * coutG), c1 = min(channels.upperBound, (g + 1) * coutG)
                guard c1 > c0 else { continue }
                BLAS.sgemm(m: c1 - c0, n: cols, k: kdim, a: wt.baseAddress! + c0 * kdim, lda: kdim,
                           b: b, ldb: ldb, c: dst + c0 * npix + columns.lowerBound, ldc: npix)
            }
        }
        // Epilogue: out = out * scale[c] + shift[c] (+ residual) (ReLU), on these columns only.
        bn.scale.withUnsafeBufferPointer { scale in
            bn.shift.withUnsafeBufferPointer { shift in
                for c in channels {
                    let s = scale[c], t = shift[c]
                    let o = dst + c * npix + columns.lowerBound
                    if let residual {
                        let r = residual + c * npix + columns.lowerBound
                        if relu { for i in 0..<cols { o[i] = max(o[i] * s + t + r[i], 0) } }
                        else { for i in 0..<cols { o[i] = o[i] * s + t + r[i] } }
                    } else {
                        if relu { for i in 0..<cols { o[i] = max(o[i] * s + t, 0) } }
                        else { for i in 0..<cols { o[i] = o[i] * s + t } }
                    }
                }
            }
        }
    }

    /// Unfolds `channels` planes into a `[channels * k * k, columns.count]` matrix (zero padding),
    /// for the output pixels `columns` (row-major over the `oh x ow` output).
    private func im2col(_ src: UnsafePointer<Float>, channels: Int, h: Int, w: Int, oh: Int, ow: Int,
                        columns: Range<Int>, into col: UnsafeMutablePointer<Float>) {
        let k = kernel, s = stride, p = padding
        let cols = columns.count
        var row = 0
        for c in 0..<channels {
            let plane = src + c * h * w
            for ky in 0..<k {
                for kx in 0..<k {
                    let dstRow = col + row * cols
                    var j = 0
                    var pix = columns.lowerBound
                    while pix < columns.upperBound {
                        let oy = pix / ow, ox0 = pix % ow
                        let run = min(ow - ox0, columns.upperBound - pix)
                        let d = dstRow + j
                        let iy = oy * s - p + ky
                        if iy < 0 || iy >= h {
                            d.update(repeating: 0, count: run)
                        } else {
                            let line = plane + iy * w
                            if s == 1 {
                                // ix = ox - p + kx: one contiguous run with zero borders.
                                let lo = max(ox0, p - kx), hi = min(ox0 + run, w + p - kx)
                                if hi > lo {
                                    if lo > ox0 { d.update(repeating: 0, count: lo - ox0) }
                                    (d + (lo - ox0)).update(from: line + (lo - p + kx), count: hi - lo)
                                    if ox0 + run > hi { (d + (hi - ox0)).update(repeating: 0, count: ox0 + run - hi) }
                                } else {
                                    d.update(repeating: 0, count: run)
                                }
                            } else {
                                // ix = ox * s - p + kx is inside [0, w) for ox in [first, last].
                                let first = max(ox0, ceilDiv(p - kx, s))
                                let last = min(ox0 + run - 1, floorDiv(w - 1 + p - kx, s))
                                if last >= first {
                                    if first > ox0 { d.update(repeating: 0, count: first - ox0) }
                                    var src = line + (first * s - p + kx)
                                    for i in (first - ox0)...(last - ox0) {
                                        d[i] = src.pointee
                                        src += s
                                    }
                                    if ox0 + run - 1 > last { (d + (last + 1 - ox0)).update(repeating: 0, count: ox0 + run - 1 - last) }
                                } else {
                                    d.update(repeating: 0, count: run)
                                }
                            }
                        }
                        j += run
                        pix += run
                    }
                    row += 1
                }
            }
        }
    }
}

/// Linear: `y = x Wᵀ + b`, weight `[out, in]` (torch's layout).
package struct Linear: Sendable {
    /// The weights, layout `[outFeatures, inFeatures]`.
    package let weight: [Float]
    /// The bias, `outFeatures` values.
    package let bias: [Float]
    /// Input and output features.
    package let inFeatures: Int, outFeatures: Int

    /// Creates a linear layer from torch's weight (`[outFeatures, inFeatures]`, row-major) and bias.
    package init(weight: [Float], bias: [Float], inFeatures: Int, outFeatures: Int) {
        self.weight = weight
        self.bias = bias
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    /// The threads of `executor` split the output features (each streams its share of the
    /// weights: at batch 1 the layer is a matrix-vector product bound by memory).
    func callAsFunction(_ x: [Float], batch: Int, executor: Executor) -> [Float] {
        var out = [Float](repeating: 0, count: batch * outFeatures)
        for b in 0..<batch { for o in 0..<outFeatures { out[b * outFeatures + o] = bias[o] } }
        let (k, n) = (inFeatures, outFeatures)
        x.withUnsafeBufferPointer { xp in
            weight.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { op in
                    let (a, w, c) = (xp.baseAddress!, wp.baseAddress!, op.baseAddress!)
                    executor.forEach(splitting: n, threads: executor.threads) { _, cols in
                        BLAS.sgemm(m: batch, n: cols.count, k: k, a: a, lda: k, b: w + cols.lowerBound * k, ldb: k,
                                   c: c + cols.lowerBound, ldc: n, beta: 1, transB: true)
                    }
                }
            }
        }
        return out
    }
}

/// MaxPool2d(kernel 3, stride 2, padding 1), padding never selected (−∞), as torch; planes are
/// split across the threads of `executor`. NaN propagates, as in torch.
func maxPool3x3s2(_ x: FeatureMap, executor: Executor) -> FeatureMap {
    let oh = (x.h + 2 - 3) / 2 + 1, ow = (x.w + 2 - 3) / 2 + 1
    var out = FeatureMap(n: x.n, c: x.c, h: oh, w: ow)
    let planes = x.n * x.c, h = x.h, w = x.w, inPlane = x.plane
    x.data.withUnsafeBufferPointer { src in
        out.data.withUnsafeMutableBufferPointer { dst in
            let srcBase = src.baseAddress!, dstBase = dst.baseAddress!
            executor.forEach(splitting: planes, threads: executor.threads) { _, range in
                for p in range {
                    let s = srcBase + p * inPlane
                    let d = dstBase + p * oh * ow
                    for oy in 0..<oh {
                        let y0 = max(0, 2 * oy - 1), y1 = min(h, 2 * oy + 2)
                        for ox in 0..<ow {
                            let x0 = max(0, 2 * ox - 1), x1 = min(w, 2 * ox + 2)
                            var m = -Float.infinity
                            for ky in y0..<y1 {
                                let row = s + ky * w
                                for kx in x0..<x1 {
                                    let v = row[kx]
                                    if !(v <= m) { m = v }  // v > m, or v is NaN
                                }
                            }
                            d[oy * ow + ox] = m
                        }
                    }
                }
            }
        }
    }
    return out
}

/// AdaptiveAvgPool2d(1) then flatten: `[n, c]`.
func globalAveragePool(_ x: FeatureMap) -> [Float] {
    var out = [Float](repeating: 0, count: x.n * x.c)
    x.data.withUnsafeBufferPointer { src in
        for p in 0..<(x.n * x.c) {
            var sum: Float = 0
            for i in (p * x.plane)..<((p + 1) * x.plane) { sum += src[i] }
            out[p] = sum / Float(x.plane)
        }
    }
    return out
}

@inline(__always) func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
@inline(__always) func ceilDiv(_ a: Int, _ b: Int) -> Int { -floorDiv(-a, b) }

extension Optional where Wrapped == [Float] {
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let a): a.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: body(nil)
        }
    }
}
