import Foundation
import TorchportCore
import CJPEG
import CPNG
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An image as decoded from a file, converted to 8-bit RGB the way PIL's `Image.convert("RGB")`
/// does, plus what the file held before the conversion.
public struct DecodedImage: Sendable {
    /// The container a decoded image came from.
    public enum Format: String, Sendable, Equatable {
        /// JPEG (JFIF, EXIF or Adobe), baseline or progressive.
        case jpeg
        /// PNG, any colour type and bit depth, interlaced or not.
        case png
    }

    /// How the file stored its pixels, before conversion to RGB.
    public enum ColorModel: String, Sendable, Equatable {
        /// One gray channel.
        case grayscale
        /// Gray plus alpha (alpha dropped on conversion, as PIL does).
        case grayscaleAlpha = "grayscale+alpha"
        /// Red, green, blue.
        case rgb
        /// RGB plus alpha (alpha dropped on conversion, as PIL does).
        case rgba
        /// Indices into a palette (looked up on conversion; transparency dropped).
        case palette
        /// Cyan, magenta, yellow, black (JPEG only; converted with PIL's formula).
        case cmyk
    }

    /// The file's container format.
    public let format: Format
    /// The file's colour model.
    public let colorModel: ColorModel
    /// Bits per sample in the file (1, 2, 4, 8 or 16).
    public let bitDepth: Int
    /// The pixels, converted to 8-bit RGB.
    public let rgb: RGBImage

    /// Width in pixels.
    public var width: Int { rgb.width }
    /// Height in pixels.
    public var height: Int { rgb.height }

    /// A short description such as `PNG 16-bit grayscale 128x128`.
    public var summary: String {
        "\(format.rawValue.uppercased()) \(bitDepth)-bit \(colorModel.rawValue) \(width)x\(height)"
    }
}

/// Decodes JPEG (through the system's libjpeg-turbo) and PNG (through libpng) into ``RGBImage``,
/// following PIL's `Image.open(path).convert("RGB")` sample for sample:
///
/// - grayscale is replicated to three channels; alpha is dropped (not composited), as is a PNG
///   `tRNS` transparency; a palette is looked up;
/// - 16-bit PNG samples keep their high byte, except 16-bit grayscale, which PIL opens as `I;16`
///   and *clips* to 255 when converting (so 10-bit data stored in 16 bits is not rescaled);
/// - CMYK JPEGs are read as Adobe-inverted and converted with PIL's `cmyk2rgb`;
/// - no gamma, colour profile or EXIF orientation is applied (PIL applies none of them either).
///
/// Hostile input is refused with an ``ImageError``: sizes beyond ``Limits`` before any pixel
/// memory is allocated, truncated and corrupt data with the decoder's message.
///
/// ```swift
/// let image = try ImageDecoder().decode(contentsOf: "cat.jpg")
/// print(image.summary)           // JPEG 8-bit rgb 451x300
/// let rgb: RGBImage = image.rgb
/// ```
public struct ImageDecoder: Sendable {
    /// Bounds checked against a file's declared header before decoding it.
    public struct Limits: Sendable, Equatable {
        /// Most pixels (width x height) an image may declare. The default is PIL's
        /// decompression-bomb error threshold, `2 * Image.MAX_IMAGE_PIXELS`.
        public var maxPixels: Int
        /// Longest side in pixels (libjpeg's own limit is 65,500).
        public var maxDimension: Int
        /// Largest file read from disk, in bytes.
        public var maxFileBytes: Int
        /// Most scans a progressive JPEG may have (each costs a pass over the whole image).
        public var maxProgressiveScans: Int

        /// Limits with PIL-like defaults: 178,956,970 pixels, 65,500 per side, 1 GiB files,
        /// 1,000 progressive scans.
        public init(maxPixels: Int = 178_956_970, maxDimension: Int = 65_500,
                    maxFileBytes: Int = 1 << 30, maxProgressiveScans: Int = 1000) {
            self.maxPixels = maxPixels
            self.maxDimension = maxDimension
            self.maxFileBytes = maxFileBytes
            self.maxProgressiveScans = maxProgressiveScans
        }
    }

    /// The limits this decoder enforces.
    public var limits: Limits

    /// A decoder enforcing `limits`.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// The format the bytes' signature announces, or nil for anything else.
    public static func format(of bytes: some Collection<UInt8>) -> DecodedImage.Format? {
        let head = Array(bytes.prefix(8))
        if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
        if head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        return nil
    }

    /// Reads and decodes the file at `url`; errors carry its path.
    public func decode(contentsOf url: URL) throws(ImageError) -> DecodedImage { try decode(contentsOf: url.path) }

    /// Decodes the image file at `path`; see ``decode(contentsOf:)-(URL)``.
    public func decode(contentsOf path: String) throws(ImageError) -> DecodedImage {
        let bytes = try readFile(path)
        do {
            return try decode(bytes)
        } catch {
            var e = error
            e.file = path
            throw e
        }
    }

    /// Decodes a whole JPEG or PNG file held in memory, recognised by its signature.
    public func decode(_ bytes: [UInt8]) throws(ImageError) -> DecodedImage {
        guard !bytes.isEmpty else { throw ImageError(.empty, "no bytes") }
        switch Self.format(of: bytes) {
        case .jpeg: return try decodeJPEG(bytes)
        case .png: return try decodePNG(bytes)
        case nil:
            throw ImageError(.unrecognizedFormat, "starts with " + bytes.prefix(8).map { Hex.byte($0) }.joined(separator: " "))
        }
    }

    // MARK: - JPEG

    private func decodeJPEG(_ bytes: [UInt8]) throws(ImageError) -> DecodedImage {
        var image = tp_jpeg_image()
        let status = bytes.withUnsafeBufferPointer { buf in
            tp_jpeg_decode(buf.baseAddress, UInt(buf.count), UInt64(clamping: limits.maxPixels),
                           UInt32(clamping: limits.maxDimension), Int32(clamping: limits.maxProgressiveScans), &image)
        }
        defer { tp_jpeg_free(&image) }
        let message = cString(&image.message)
        let width = Int(image.width), height = Int(image.height)
        switch Int(status) {
        case Int(TP_JPEG_OK): break
        case Int(TP_JPEG_TRUNCATED): throw ImageError(.truncated, message)
        case Int(TP_JPEG_TOO_LARGE): throw ImageError(.tooLarge(width: width, height: height), message)
        case Int(TP_JPEG_UNSUPPORTED): throw ImageError(.unsupported, message)
        default: throw ImageError(.corrupt, message.isEmpty ? "libjpeg failed" : message)
        }
        let count = width * height
        let src = UnsafeBufferPointer(start: image.pixels, count: count * Int(image.components))
        var rgb = [UInt8](repeating: 0, count: count * 3)
        let model: DecodedImage.ColorModel
        rgb.withUnsafeMutableBufferPointer { out in
            switch image.components {
            case 1:
                for i in 0..<count { let v = src[i]; out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v }
            case 3:
                _ = out.initialize(from: src)
            default:
                // PIL reads every 4-component JPEG as "CMYK;I" (Adobe's inverted convention),
                // then cmyk2rgb: channel = nk - nk * c / 255 (rounded as MULDIV255), nk = 255 - k.
                for i in 0..<count {
                    let nk = Int(src[4 * i + 3])  // inverted k == 255 - k
                    for c in 0..<3 {
                        let v = 255 - Int(src[4 * i + c])
                        out[3 * i + c] = UInt8(clamping: nk - mulDiv255(v, nk))
                    }
                }
            }
        }
        switch image.components {
        case 1: model = .grayscale
        case 3: model = .rgb
        default: model = .cmyk
        }
        return DecodedImage(format: .jpeg, colorModel: model, bitDepth: 8,
                            rgb: RGBImage(unchecked: width, height: height, pixels: rgb))
    }

    // MARK: - PNG

    private func decodePNG(_ bytes: [UInt8]) throws(ImageError) -> DecodedImage {
        var image = tp_png_image()
        let status = bytes.withUnsafeBufferPointer { buf in
            tp_png_decode(buf.baseAddress, buf.count, UInt64(clamping: limits.maxPixels),
                          UInt32(clamping: limits.maxDimension), &image)
        }
        defer { tp_png_free(&image) }
        let message = cString(&image.message)
        let width = Int(image.width), height = Int(image.height)
        switch Int(status) {
        case Int(TP_PNG_OK): break
        case Int(TP_PNG_TRUNCATED): throw ImageError(.truncated, message)
        case Int(TP_PNG_TOO_LARGE): throw ImageError(.tooLarge(width: width, height: height), message)
        default: throw ImageError(.corrupt, message.isEmpty ? "libpng failed" : message)
        }
        let channels = Int(image.channels)
        let wide = image.bit_depth == 16
        let count = width * height
        let src = UnsafeBufferPointer(start: image.pixels, count: count * channels * (wide ? 2 : 1))
        let colorType = image.color_type
        // PIL opens 16-bit grayscale (no alpha) as "I;16" and converts to RGB by clipping.
        let clip16 = wide && colorType == PNG_COLOR_TYPE_GRAY
        var rgb = [UInt8](repeating: 0, count: count * 3)
        rgb.withUnsafeMutableBufferPointer { out in
            @inline(__always) func sample(_ i: Int) -> UInt8 {
                guard wide else { return src[i] }
                let hi = src[2 * i], lo = src[2 * i + 1]
                if clip16 { return hi == 0 ? lo : 255 }
                return hi
            }
            switch channels {
            case 1, 2:
                for p in 0..<count { let v = sample(p * channels); out[3 * p] = v; out[3 * p + 1] = v; out[3 * p + 2] = v }
            default:
                for p in 0..<count {
                    out[3 * p] = sample(p * channels)
                    out[3 * p + 1] = sample(p * channels + 1)
                    out[3 * p + 2] = sample(p * channels + 2)
                }
            }
        }
        let model: DecodedImage.ColorModel
        switch Int32(colorType) {
        case PNG_COLOR_TYPE_GRAY: model = .grayscale
        case PNG_COLOR_TYPE_GRAY_ALPHA: model = .grayscaleAlpha
        case PNG_COLOR_TYPE_PALETTE: model = .palette
        case PNG_COLOR_TYPE_RGB_ALPHA: model = .rgba
        default: model = .rgb
        }
        return DecodedImage(format: .png, colorModel: model, bitDepth: Int(image.source_bit_depth),
                            rgb: RGBImage(unchecked: width, height: height, pixels: rgb))
    }

    // MARK: - Files

    private func readFile(_ path: String) throws(ImageError) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ImageError(.unreadable, String(cString: strerror(errno)), file: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ImageError(.unreadable, String(cString: strerror(errno)), file: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ImageError(.unreadable, "not a regular file", file: path) }
        let size = Int(st.st_size)
        guard size > 0 else { throw ImageError(.empty, "0 bytes", file: path) }
        guard size <= limits.maxFileBytes else {
            throw ImageError(.unreadable, "\(size) bytes exceeds the \(limits.maxFileBytes)-byte limit", file: path)
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        let failure: Int32? = bytes.withUnsafeMutableBytes { buf in
            while done < size {
                let n = read(fd, buf.baseAddress! + done, size - done)
                if n < 0 { if errno == EINTR { continue }; return errno }
                if n == 0 { break }
                done += n
            }
            return nil
        }
        if let failure { throw ImageError(.unreadable, String(cString: strerror(failure)), file: path) }
        return done == size ? bytes : Array(bytes.prefix(done))
    }
}

/// PIL's `MULDIV255(a, b)`: `a * b / 255` rounded, in integers.
@inline(__always) private func mulDiv255(_ a: Int, _ b: Int) -> Int {
    let t = a * b + 128
    return ((t >> 8) + t) >> 8
}

private func cString<T>(_ tuple: inout T) -> String {
    withUnsafeBytes(of: &tuple) { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
