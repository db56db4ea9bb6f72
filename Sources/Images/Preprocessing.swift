/// The image preprocessing of torchvision's ImageNet classification weights, every step
/// configurable. The default reproduces
///
/// ```python
/// transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
///                     transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
/// ```
///
/// applied to `PIL.Image.open(path).convert("RGB")`: the resize and crop work on 8-bit samples with
/// PIL's arithmetic (see ``RGBImage/resized(width:height:interpolation:)``), then the samples are
/// divided by 255 and normalised per channel in float32, as torchvision does.
///
/// ```swift
/// let image = try ImageDecoder().decode(contentsOf: "cat.jpg").rgb
/// let input = try Preprocessing.imageNet.tensor(image)   // [3, 224, 224], normalised
/// ```
///
/// The `IMAGENET1K_V2` weights of some torchvision ResNets were evaluated with `resizeSize: 232`;
/// set it to match the weights you use.
public struct Preprocessing: Sendable, Equatable {
    /// Target length of the shorter side (torchvision `Resize(int)`; the longer side keeps the
    /// aspect ratio, rounded down). `nil` skips resizing.
    public var resizeSize: Int?
    /// Side of the square centre crop (torchvision `CenterCrop(int)`). `nil` skips cropping.
    public var cropSize: Int?
    /// The resampling filter of the resize.
    public var interpolation: Interpolation
    /// Per-channel mean subtracted after scaling to [0, 1] (R, G, B).
    public var mean: [Double]
    /// Per-channel standard deviation divided by after subtracting the mean (R, G, B).
    public var std: [Double]

    /// ImageNet's mean, as torchvision's weights declare it.
    public static let imageNetMean: [Double] = [0.485, 0.456, 0.406]
    /// ImageNet's standard deviation, as torchvision's weights declare it.
    public static let imageNetStd: [Double] = [0.229, 0.224, 0.225]

    /// torchvision's standard ImageNet evaluation preprocessing: resize 256 (bilinear,
    /// antialiased), centre crop 224, ImageNet mean and std.
    public static let imageNet = Preprocessing()

    /// A pipeline with the given steps; the defaults are ``imageNet``'s.
    public init(resizeSize: Int? = 256, cropSize: Int? = 224, interpolation: Interpolation = .bilinear,
                mean: [Double] = Preprocessing.imageNetMean, std: [Double] = Preprocessing.imageNetStd) {
        self.resizeSize = resizeSize
        self.cropSize = cropSize
        self.interpolation = interpolation
        self.mean = mean
        self.std = std
    }

    /// Why this configuration cannot be used (a size below 1, not three means or stds, a zero std),
    /// or nil when it can.
    public var validationProblem: String? {
        if let r = resizeSize, r < 1 { return "resize size must be at least 1 (got \(r))" }
        if let c = cropSize, c < 1 { return "crop size must be at least 1 (got \(c))" }
        if mean.count != 3 { return "mean needs 3 values (R, G, B), got \(mean.count)" }
        if std.count != 3 { return "std needs 3 values (R, G, B), got \(std.count)" }
        if std.contains(where: { $0 == 0 || !$0.isFinite }) { return "std values must be finite and non-zero" }
        if mean.contains(where: { !$0.isFinite }) { return "mean values must be finite" }
        return nil
    }

    /// Throws ``ImageError/Kind/invalidArgument`` naming the ``validationProblem``, when there is one.
    public func validate() throws(ImageError) {
        if let problem = validationProblem { throw ImageError(.invalidArgument, "preprocessing: \(problem)") }
    }

    /// The size an image of `width` x `height` has after the resize step: torchvision's
    /// `_compute_resized_output_size` (shorter side to ``resizeSize``, longer side
    /// `int(resizeSize * long / short)`).
    public func resizedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        guard let size = resizeSize, width > 0, height > 0 else { return (width, height) }
        let (short, long) = width <= height ? (width, height) : (height, width)
        let newLong = Int(Double(size * long) / Double(short))
        return width <= height ? (size, newLong) : (newLong, size)
    }

    /// The size of the tensor an image of `width` x `height` becomes.
    public func outputSize(width: Int, height: Int) -> (width: Int, height: Int) {
        if let c = cropSize { return (c, c) }
        return resizedSize(width: width, height: height)
    }

    /// The resize and crop steps, on 8-bit samples (what PIL hands to `ToTensor`); throws
    /// ``ImageError/Kind/invalidArgument`` for an empty image or a preprocessing that cannot run
    /// (``validationProblem``).
    public func geometry(_ image: RGBImage) throws(ImageError) -> RGBImage {
        try validate()
        var out = image
        if resizeSize != nil {
            let (w, h) = resizedSize(width: image.width, height: image.height)
            if w != image.width || h != image.height {
                out = try out.resized(width: w, height: h, interpolation: interpolation)
            }
        }
        if let c = cropSize { out = try out.centerCropped(width: c, height: c) }
        return out
    }

    /// Resize and crop, then `ToTensor`: planar `[3, h, w]` floats in [0, 1], not normalised.
    public func unitPixels(_ image: RGBImage) throws(ImageError) -> [Float] {
        try geometry(image).planarUnitFloats()
    }

    /// The whole pipeline: planar `[3, h, w]` floats, `(x / 255 - mean) / std` per channel, in
    /// float32 like torchvision's `Normalize`.
    ///
    /// Throws as ``geometry(_:)`` does.
    public func tensor(_ image: RGBImage) throws(ImageError) -> [Float] {
        var out = try unitPixels(image)
        let plane = out.count / 3
        out.withUnsafeMutableBufferPointer { buf in
            for c in 0..<3 {
                let m = Float(mean[c]), s = Float(std[c])
                for i in (c * plane)..<((c + 1) * plane) { buf[i] = (buf[i] - m) / s }
            }
        }
        return out
    }
}
