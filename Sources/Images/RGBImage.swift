/// An 8-bit RGB image: rows top to bottom, pixels left to right, `r g b` interleaved, the form PIL
/// gives after `Image.convert("RGB")` and the form torchvision's transforms start from.
public struct RGBImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `width * height * 3` samples, row-major, interleaved `r g b`.
    public internal(set) var pixels: [UInt8]

    /// Wraps `pixels` (`width * height * 3` interleaved RGB samples, row-major).
    /// - Precondition: the sizes are non-negative and `pixels.count == width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage: \(pixels.count) samples for \(width)x\(height)x3")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A `width` x `height` image with every sample set to `value`.
    public init(width: Int, height: Int, filledWith value: UInt8 = 0) {
        self.init(width: width, height: height, pixels: [UInt8](repeating: value, count: width * height * 3))
    }

    /// The `(r, g, b)` samples of the pixel in column `x`, row `y`.
    public subscript(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// The samples as planar float channels `[3, height, width]` scaled to [0, 1] (`value / 255`),
    /// exactly torchvision's `ToTensor` of a PIL RGB image.
    public func planarUnitFloats() -> [Float] {
        let plane = width * height
        var out = [Float](repeating: 0, count: plane * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<plane {
                    dst[i] = Float(src[i * 3]) / 255
                    dst[plane + i] = Float(src[i * 3 + 1]) / 255
                    dst[2 * plane + i] = Float(src[i * 3 + 2]) / 255
                }
            }
        }
        return out
    }
}
