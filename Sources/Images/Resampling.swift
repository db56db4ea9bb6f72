#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A resampling filter, with PIL's definitions (torchvision resizes PIL images with PIL).
public enum Interpolation: String, Sendable, CaseIterable, Equatable {
    /// The nearest source pixel (PIL `NEAREST`): no filtering at all.
    case nearest
    /// Area average (PIL `BOX`, support 0.5).
    case box
    /// Triangle filter (PIL `BILINEAR`, support 1), widened when downscaling: torchvision's default,
    /// and what "antialiased bilinear" means for PIL images.
    case bilinear
    /// Hamming-windowed sinc (PIL `HAMMING`, support 1).
    case hamming
    /// Cubic convolution with a = -0.5 (PIL `BICUBIC`, support 2).
    case bicubic
    /// Lanczos-windowed sinc (PIL `LANCZOS`, support 3).
    case lanczos
}

extension RGBImage {
    /// This image resampled to `width` x `height`, exactly as PIL's `Image.resize((width, height),
    /// filter)` does for an RGB image: a separable convolution whose support is scaled by the
    /// downscale factor (so downscaling is antialiased), 22-bit fixed-point weights, the horizontal
    /// pass first, rounding to 8 bits after each pass (`ImagingResample` in Pillow's `Resample.c`).
    ///
    /// Throws ``ImageError/Kind/invalidArgument`` unless `width` and `height` are positive and
    /// this image is not empty.
    public func resized(width newWidth: Int, height newHeight: Int, interpolation: Interpolation = .bilinear) throws(ImageError) -> RGBImage {
        guard newWidth > 0, newHeight > 0, width > 0, height > 0 else {
            throw ImageError(.invalidArgument, "resize of \(width)x\(height) to \(newWidth)x\(newHeight): an empty image")
        }
        if newWidth == width && newHeight == height { return self }
        if interpolation == .nearest { return nearest(width: newWidth, height: newHeight) }
        let filter = ResampleFilter(interpolation)
        let horizontal = Coefficients(inSize: width, outSize: newWidth, filter: filter)
        var vertical = Coefficients(inSize: height, outSize: newHeight, filter: filter)
        // Only the source rows the vertical pass reads are filtered horizontally.
        let firstRow = vertical.bounds[0]
        let lastRow = vertical.bounds[2 * newHeight - 2] + vertical.bounds[2 * newHeight - 1]
        var source = self
        if newWidth != width {
            for i in 0..<newHeight { vertical.bounds[2 * i] -= firstRow }
            source = resampleHorizontal(rows: firstRow..<lastRow, coefficients: horizontal)
        }
        if newHeight != height {
            return source.resampleVertical(outHeight: newHeight, coefficients: vertical)
        }
        return source
    }

    /// The centred `width` x `height` region, with torchvision's `CenterCrop` rounding:
    /// `top = round((height - cropHeight) / 2)` (Python's round half to even), same for `left`.
    /// A crop larger than the image first pads it with zeros on each side, as torchvision does.
    ///
    /// Throws ``ImageError/Kind/invalidArgument`` unless `width` and `height` are positive.
    public func centerCropped(width cropWidth: Int, height cropHeight: Int) throws(ImageError) -> RGBImage {
        guard cropWidth > 0, cropHeight > 0 else { throw ImageError(.invalidArgument, "crop to \(cropWidth)x\(cropHeight)") }
        var image = self
        if cropWidth > width || cropHeight > height {
            let left = cropWidth > width ? (cropWidth - width) / 2 : 0
            let top = cropHeight > height ? (cropHeight - height) / 2 : 0
            let right = cropWidth > width ? (cropWidth - width + 1) / 2 : 0
            let bottom = cropHeight > height ? (cropHeight - height + 1) / 2 : 0
            image = try padded(left: left, top: top, right: right, bottom: bottom)
            if image.width == cropWidth && image.height == cropHeight { return image }
        }
        let top = Int((Double(image.height - cropHeight) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(image.width - cropWidth) / 2).rounded(.toNearestOrEven))
        return try image.cropped(x: left, y: top, width: cropWidth, height: cropHeight)
    }

    /// The `width` x `height` region whose top-left pixel is (`x`, `y`).
    ///
    /// Throws ``ImageError/Kind/invalidArgument`` unless the region lies inside the image.
    public func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) throws(ImageError) -> RGBImage {
        guard x >= 0, y >= 0, cropWidth >= 0, cropHeight >= 0, cropWidth <= width - x, cropHeight <= height - y else {
            throw ImageError(.invalidArgument, "crop \(cropWidth)x\(cropHeight) at (\(x), \(y)) outside the \(width)x\(height) image")
        }
        var out = [UInt8](repeating: 0, count: cropWidth * cropHeight * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for row in 0..<cropHeight {
                    let s = ((y + row) * width + x) * 3
                    let d = row * cropWidth * 3
                    for i in 0..<(cropWidth * 3) { dst[d + i] = src[s + i] }
                }
            }
        }
        return RGBImage(unchecked: cropWidth, height: cropHeight, pixels: out)
    }

    /// This image with zero (black) borders of the given widths.
    /// Throws ``ImageError/Kind/invalidArgument`` for negative padding.
    public func padded(left: Int, top: Int, right: Int, bottom: Int) throws(ImageError) -> RGBImage {
        guard left >= 0, top >= 0, right >= 0, bottom >= 0 else {
            throw ImageError(.invalidArgument, "negative padding (\(left), \(top), \(right), \(bottom))")
        }
        var out = try RGBImage(width: width + left + right, height: height + top + bottom)
        let outWidth = out.width
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for row in 0..<height {
                    let s = row * width * 3
                    let d = ((row + top) * outWidth + left) * 3
                    for i in 0..<(width * 3) { dst[d + i] = src[s + i] }
                }
            }
        }
        return out
    }

    // MARK: - Passes

    private func resampleHorizontal(rows: Range<Int>, coefficients c: Coefficients) -> RGBImage {
        let outWidth = c.outSize, ksize = c.ksize
        var out = [UInt8](repeating: 0, count: outWidth * rows.count * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                c.weights.withUnsafeBufferPointer { kk in
                    c.bounds.withUnsafeBufferPointer { bounds in
                        for (yy, y) in rows.enumerated() {
                            let srcRow = y * width * 3
                            let dstRow = yy * outWidth * 3
                            for xx in 0..<outWidth {
                                let xmin = bounds[2 * xx], count = bounds[2 * xx + 1]
                                let k = xx * ksize
                                var s0: Int32 = half, s1: Int32 = half, s2: Int32 = half
                                for x in 0..<count {
                                    let p = srcRow + (x + xmin) * 3
                                    let w = kk[k + x]
                                    s0 &+= Int32(src[p]) &* w
                                    s1 &+= Int32(src[p + 1]) &* w
                                    s2 &+= Int32(src[p + 2]) &* w
                                }
                                dst[dstRow + xx * 3] = clip8(s0)
                                dst[dstRow + xx * 3 + 1] = clip8(s1)
                                dst[dstRow + xx * 3 + 2] = clip8(s2)
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(unchecked: outWidth, height: rows.count, pixels: out)
    }

    private func resampleVertical(outHeight: Int, coefficients c: Coefficients) -> RGBImage {
        let ksize = c.ksize, stride = width * 3
        var out = [UInt8](repeating: 0, count: stride * outHeight)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                c.weights.withUnsafeBufferPointer { kk in
                    c.bounds.withUnsafeBufferPointer { bounds in
                        var acc = [Int32](repeating: 0, count: stride)
                        acc.withUnsafeMutableBufferPointer { acc in
                            for yy in 0..<outHeight {
                                let ymin = bounds[2 * yy], count = bounds[2 * yy + 1]
                                let k = yy * ksize
                                for i in 0..<stride { acc[i] = half }
                                for y in 0..<count {
                                    let w = kk[k + y]
                                    let row = (y + ymin) * stride
                                    for i in 0..<stride { acc[i] &+= Int32(src[row + i]) &* w }
                                }
                                let d = yy * stride
                                for i in 0..<stride { dst[d + i] = clip8(acc[i]) }
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(unchecked: width, height: outHeight, pixels: out)
    }

    /// PIL's NEAREST resize: each output pixel takes the source pixel at `floor((x + 0.5) * scale)`.
    private func nearest(width newWidth: Int, height newHeight: Int) -> RGBImage {
        let sx = Double(width) / Double(newWidth), sy = Double(height) / Double(newHeight)
        var out = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
        let xs = (0..<newWidth).map { min(width - 1, Int((Double($0) + 0.5) * sx)) }
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for yy in 0..<newHeight {
                    let y = min(height - 1, Int((Double(yy) + 0.5) * sy))
                    for xx in 0..<newWidth {
                        let s = (y * width + xs[xx]) * 3, d = (yy * newWidth + xx) * 3
                        dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return RGBImage(unchecked: newWidth, height: newHeight, pixels: out)
    }
}

// MARK: - Pillow's coefficients

/// `PRECISION_BITS` of Pillow's 8-bit resampling.
private let precisionBits: Int32 = 32 - 8 - 2
private let half: Int32 = 1 << (precisionBits - 1)

@inline(__always) private func clip8(_ v: Int32) -> UInt8 {
    if v >= (1 << precisionBits) << 8 { return 255 }
    if v <= 0 { return 0 }
    return UInt8(truncatingIfNeeded: v >> precisionBits)
}

private struct ResampleFilter {
    let support: Double
    let kernel: (Double) -> Double

    init(_ interpolation: Interpolation) {
        switch interpolation {
        case .nearest, .bilinear:
            support = 1
            kernel = { x in let x = abs(x); return x < 1 ? 1 - x : 0 }
        case .box:
            support = 0.5
            kernel = { x in x > -0.5 && x <= 0.5 ? 1 : 0 }
        case .hamming:
            support = 1
            kernel = { x in
                var x = abs(x)
                if x == 0 { return 1 }
                if x >= 1 { return 0 }
                x *= Double.pi
                return sin(x) / x * (0.54 + 0.46 * cos(x))
            }
        case .bicubic:
            support = 2
            kernel = { x in
                let a = -0.5, x = abs(x)
                if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
                if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
                return 0
            }
        case .lanczos:
            support = 3
            kernel = { x in
                func sinc(_ x: Double) -> Double { x == 0 ? 1 : sin(x * Double.pi) / (x * Double.pi) }
                return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0
            }
        }
    }
}

/// `precompute_coeffs` + `normalize_coeffs_8bpc`: for each output index, the first input index,
/// the number of inputs, and their fixed-point weights.
private struct Coefficients {
    let outSize: Int
    let ksize: Int
    var bounds: [Int]
    let weights: [Int32]

    init(inSize: Int, outSize: Int, filter: ResampleFilter) {
        self.outSize = outSize
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds = [Int](repeating: 0, count: outSize * 2)
        var weights = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        let ss = 1 / filterScale
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            var xmin = Int(center - support + 0.5)
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            var ww = 0.0
            for x in 0..<ksize { k[x] = 0 }
            for x in 0..<xmax {
                let w = filter.kernel((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for x in 0..<xmax where ww != 0 { k[x] /= ww }
            for x in 0..<ksize {
                let v = k[x] * Double(1 << precisionBits)
                weights[xx * ksize + x] = Int32(k[x] < 0 ? (-0.5 + v).rounded(.towardZero) : (0.5 + v).rounded(.towardZero))
            }
            bounds[2 * xx] = xmin
            bounds[2 * xx + 1] = xmax
        }
        self.bounds = bounds
        self.weights = weights
    }
}
