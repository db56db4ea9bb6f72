import TorchportCore
/// An 8-bit RGB image: rows top to bottom, pixels left to right, `r g b` interleaved, the form PIL
/// gives after `Image.convert("RGB")` and the form torchvision's transforms start from.
public struct RGBImage: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `width * height * 3` samples, row-major, interleaved `r g b`.
    public internal(set) var pixels: [UInt8]

    /// Wraps `pixels` (`width * height * 3` interleaved RGB samples, row-major); throws
    /// ``ImageError/Kind/invalidArgument`` for a negative size or another sample count.
    public init(width: Int, height: Int, pixels: [UInt8]) throws(ImageError) {
        let (count, overflow) = Self.sampleCount(width, height)
        guard width >= 0, height >= 0, !overflow, pixels.count == count else {
            throw ImageError(.invalidArgument, "\(pixels.count) samples for \(width)x\(height)x3")
        }
        self.init(unchecked: width, height: height, pixels: pixels)
    }

    /// A `width` x `height` image with every sample set to `value`; throws for a negative size.
    public init(width: Int, height: Int, filledWith value: UInt8 = 0) throws(ImageError) {
        let (count, overflow) = Self.sampleCount(width, height)
        guard width >= 0, height >= 0, !overflow else { throw ImageError(.invalidArgument, "size \(width)x\(height)") }
        self.init(unchecked: width, height: height, pixels: [UInt8](repeating: value, count: count))
    }

    /// An image whose sizes the caller computed.
    init(unchecked width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    private static func sampleCount(_ width: Int, _ height: Int) -> (Int, Bool) {
        guard let n = Shape.elementCount([width, height], times: 3) else { return (0, true) }
        return (n, false)
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
