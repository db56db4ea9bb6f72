import Foundation
import Testing
@testable import Images
import TorchportCore

@Suite("Decoding every fixture exactly as PIL's Image.open(p).convert(\"RGB\")")
struct FixtureDecodingTests {
    @Test("Decoded RGB bytes are identical to PIL's", arguments: Fixtures.imageNames)
    func decodesLikePIL(_ name: String) throws {
        let entry = try #require(Fixtures.manifest.images.first { $0.file == name })
        let image = try ImageDecoder().decode(contentsOf: Fixtures.path(name))
        #expect(image.width == entry.width && image.height == entry.height)
        #expect(image.format.rawValue.uppercased() == entry.format)
        let expectedModel: DecodedImage.ColorModel = switch entry.pil_mode {
        case "L", "1", "I;16": .grayscale
        case "LA": .grayscaleAlpha
        case "P": .palette
        case "RGBA": .rgba
        case "CMYK": .cmyk
        default: .rgb
        }
        #expect(image.colorModel == expectedModel, "\(image.summary)")
        #expect(fnv1a64(image.rgb.pixels) == entry.decoded_fnv1a64, "\(name): \(image.summary) differs from PIL's decode")
    }

    @Test("Resize(256) + CenterCrop(224) on 8-bit samples is byte-identical to torchvision on PIL", arguments: Fixtures.imageNames)
    func geometryLikeTorchvision(_ name: String) throws {
        let entry = try #require(Fixtures.manifest.images.first { $0.file == name })
        let image = try ImageDecoder().decode(contentsOf: Fixtures.path(name)).rgb
        let out = try Preprocessing.imageNet.geometry(image)
        #expect(out.width == 224 && out.height == 224)
        #expect(fnv1a64(out.pixels) == entry.geometry_fnv1a64, "\(name): resize+crop differs from torchvision's")
    }

    @Test("Every fixture image records a licence")
    func licences() throws {
        // The parameterised tests above run over these images: the list must not be empty.
        #expect(Fixtures.imageNames.count >= 10)
        for entry in Fixtures.manifest.images { #expect(!entry.licence.isEmpty, "\(entry.file)") }
    }
}

@Suite("Decoder edge cases: every bad input is a typed error, never a crash")
struct DecoderEdgeCaseTests {
    let decoder = ImageDecoder()

    func kind(of bytes: [UInt8], decoder: ImageDecoder = ImageDecoder()) -> ImageError.Kind? {
        do {
            _ = try decoder.decode(bytes)
            return nil
        } catch {
            return error.kind
        }
    }

    @Test("Empty input and a zero-byte file")
    func empty() throws {
        #expect(kind(of: []) == .empty)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("empty-\(UUID().uuidString).png")
        try Data().write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let error = caught { _ = try decoder.decode(contentsOf: url.path) }
        #expect(error?.kind == .empty)
        #expect(error?.file == url.path)
    }

    @Test("Missing files and directories are unreadable; errors name the file")
    func unreadable() throws {
        let missing = caught { _ = try decoder.decode(contentsOf: "/nonexistent/cat.jpg") }
        #expect(missing?.kind == .unreadable)
        #expect(missing?.description.contains("/nonexistent/cat.jpg") == true)
        #expect(missing?.localizedDescription.contains("cannot read file") == true)
        #expect(caught { _ = try decoder.decode(contentsOf: NSTemporaryDirectory()) }?.kind == .unreadable)
    }

    @Test("Unknown signatures: text, GIF, a lone JPEG SOI")
    func unrecognized() throws {
        #expect(kind(of: Array("hello, world".utf8)) == .unrecognizedFormat)
        #expect(kind(of: Array("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8)) == .unrecognizedFormat)
        #expect(kind(of: [0xFF, 0xD8]) == .unrecognizedFormat)
        #expect(ImageDecoder.format(of: [0xFF, 0xD8, 0xFF, 0xE0]) == .jpeg)
        #expect(ImageDecoder.format(of: pngSignature) == .png)
    }

    @Test("Truncated JPEGs (baseline, progressive, grayscale, CMYK) are reported as truncated",
          arguments: ["rocket.jpg", "coffee-progressive.jpg", "chelsea-gray.jpg", "rocket-cmyk.jpg"])
    func truncatedJPEG(_ name: String) throws {
        let bytes = try Fixtures.bytes(name)
        for fraction in [0.9, 0.5, 0.1] {
            let cut = Array(bytes.prefix(Int(Double(bytes.count) * fraction)))
            #expect(kind(of: cut) == .truncated, "\(name) cut to \(cut.count) bytes")
        }
        // Cut inside the header: still a typed error.
        let k = kind(of: Array(bytes.prefix(20)))
        #expect(k == .truncated || k == .corrupt)
    }

    @Test("Truncated PNGs (plain, interlaced, 16-bit, palette) are reported as truncated",
          arguments: ["chelsea.png", "coffee-interlaced.png", "astronaut-16bit.png", "coffee-palette.png"])
    func truncatedPNG(_ name: String) throws {
        let bytes = try Fixtures.bytes(name)
        for fraction in [0.9, 0.5, 0.1] {
            let cut = Array(bytes.prefix(Int(Double(bytes.count) * fraction)))
            #expect(kind(of: cut) == .truncated, "\(name) cut to \(cut.count) bytes")
        }
        #expect(kind(of: Array(bytes.prefix(12))) == .truncated)
    }

    @Test("A PNG that loses only its IEND chunk still decodes (the pixels are complete)")
    func missingIEND() throws {
        let bytes = try Fixtures.bytes("coffee-interlaced.png")
        let full = try decoder.decode(bytes)
        let cut = try decoder.decode(Array(bytes.dropLast(12)))
        #expect(cut.rgb == full.rgb)
    }

    @Test("Corrupt data: bad CRC, bad IHDR, garbage after the JPEG SOI, zero-sized images")
    func corrupt() throws {
        var png = try Fixtures.bytes("chelsea-1bit.png")
        png[29] ^= 0xFF  // IHDR CRC
        #expect(kind(of: png) == .corrupt)
        #expect(kind(of: pngWithHeader(width: 0, height: 10)) == .corrupt)
        #expect(kind(of: pngWithHeader(width: 10, height: 0)) == .corrupt)
        #expect(kind(of: pngWithHeader(width: 4, height: 4, colorType: 7)) == .corrupt)
        #expect(kind(of: pngWithHeader(width: 4, height: 4, idat: [1, 2, 3, 4])) == .corrupt)
        #expect(kind(of: [0xFF, 0xD8, 0xFF] + [UInt8](repeating: 0x41, count: 100)) != nil)

        var jpeg = try Fixtures.bytes("chelsea-gray.jpg")
        let sof = try #require(markerOffset(jpeg, 0xC0))
        jpeg[sof + 5] = 0; jpeg[sof + 6] = 0   // height 0
        #expect(kind(of: jpeg) == .corrupt)
    }

    @Test("Huge declared dimensions are refused before any pixel memory is allocated")
    func tooLarge() throws {
        // A PNG header declaring 100000 x 100000 with no data behind it.
        #expect(kind(of: pngWithHeader(width: 100_000, height: 100_000)) == .tooLarge(width: 100_000, height: 100_000))
        #expect(kind(of: pngWithHeader(width: 0x7FFF_FFFF, height: 1)) == .tooLarge(width: 0x7FFF_FFFF, height: 1))
        // A real JPEG patched to declare 60000 x 60000.
        var jpeg = try Fixtures.bytes("rocket.jpg")
        let sof = try #require(markerOffset(jpeg, 0xC0))
        jpeg[sof + 5] = 0xEA; jpeg[sof + 6] = 0x60; jpeg[sof + 7] = 0xEA; jpeg[sof + 8] = 0x60
        #expect(kind(of: jpeg) == .tooLarge(width: 60_000, height: 60_000))
        // Limits are configurable: a 10,000-pixel budget refuses the photos.
        let strict = ImageDecoder(limits: .init(maxPixels: 10_000))
        #expect(kind(of: try Fixtures.bytes("chelsea.png"), decoder: strict) == .tooLarge(width: 451, height: 300))
        #expect(kind(of: try Fixtures.bytes("rocket.jpg"), decoder: strict) == .tooLarge(width: 640, height: 427))
        let narrow = ImageDecoder(limits: .init(maxDimension: 400))
        #expect(kind(of: try Fixtures.bytes("coffee.png"), decoder: narrow) == .tooLarge(width: 600, height: 400))
        #expect(kind(of: try Fixtures.bytes("camera-16bit.png"), decoder: narrow) == nil)
        let small = ImageDecoder(limits: .init(maxFileBytes: 1000))
        #expect(caught { _ = try small.decode(contentsOf: Fixtures.path("rocket.jpg")) }?.kind == .unreadable)
    }

    @Test("Deterministic byte mutations of small fixtures never crash the decoders")
    func mutations() throws {
        var rng = SplitMix(seed: 42)
        var outcomes = [String: Int]()
        for name in ["chelsea-gray.jpg", "coffee-progressive.jpg", "rocket-cmyk.jpg", "chelsea-1bit.png",
                     "camera-16bit.png", "coffee-palette.png", "coffee-interlaced.png"] {
            let original = try Fixtures.bytes(name)
            for _ in 0..<12 {
                var bytes = original
                for _ in 0..<(1 + Int(rng.next() % 8)) {
                    let at = Int(rng.next() % UInt64(min(bytes.count, 2048)))
                    bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                }
                switch kind(of: bytes) {
                case nil: outcomes["decoded", default: 0] += 1
                case let k?: outcomes["\(k)", default: 0] += 1
                }
            }
        }
        #expect(outcomes.values.reduce(0, +) == 84)
    }

    /// Offset of the first `FF <marker>` segment.
    func markerOffset(_ bytes: [UInt8], _ marker: UInt8) -> Int? {
        var i = 2
        while i + 3 < bytes.count {
            guard bytes[i] == 0xFF else { return nil }
            if bytes[i + 1] == marker { return i }
            i += 2 + Int(bytes[i + 2]) << 8 + Int(bytes[i + 3])
        }
        return nil
    }
}

@Suite("PIL's conversion rules, on hand-made images")
struct ConversionRuleTests {
    /// An 8-bit-per-sample (or 16-bit) PNG of one row, no filtering.
    func onePixelRow(colorType: UInt8, bitDepth: UInt8, samples: [UInt8], width: UInt32, extra: [[UInt8]] = []) -> [UInt8] {
        var idat = [UInt8]()
        idat.append(0)  // filter: none
        idat += samples
        let ihdr = bigEndian32(width) + bigEndian32(1) + [bitDepth, colorType, 0, 0, 0]
        var png = pngSignature + pngChunk("IHDR", ihdr)
        for chunk in extra { png += chunk }
        return png + pngChunk("IDAT", zlibStored(idat)) + pngChunk("IEND", [])
    }

    /// A zlib stream with one stored block.
    func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var a: UInt32 = 1, b: UInt32 = 0
        for x in data { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        let n = UInt16(data.count)
        return [0x78, 0x01, 0x01, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8(~n >> 8)] + data + bigEndian32(b << 16 | a)
    }

    @Test("16-bit grayscale clips above 255 (PIL's I;16 -> RGB); 16-bit RGB keeps the high byte")
    func sixteenBit() throws {
        let gray = onePixelRow(colorType: 0, bitDepth: 16, samples: [0, 0, 0, 100, 0, 255, 1, 0, 255, 255], width: 5)
        let g = try ImageDecoder().decode(gray).rgb
        #expect(g.pixels == [0, 0, 0, 100, 100, 100, 255, 255, 255, 255, 255, 255, 255, 255, 255])
        let rgb = onePixelRow(colorType: 2, bitDepth: 16, samples: [0x12, 0xFF, 0x34, 0x00, 0xFF, 0x80], width: 1)
        #expect(try ImageDecoder().decode(rgb).rgb.pixels == [0x12, 0x34, 0xFF])
    }

    @Test("Alpha is dropped, not composited; tRNS is ignored; palettes are looked up")
    func alphaAndPalette() throws {
        let rgba = onePixelRow(colorType: 6, bitDepth: 8, samples: [200, 100, 50, 0, 10, 20, 30, 128], width: 2)
        #expect(try ImageDecoder().decode(rgba).rgb.pixels == [200, 100, 50, 10, 20, 30])
        let la = onePixelRow(colorType: 4, bitDepth: 8, samples: [77, 0], width: 1)
        #expect(try ImageDecoder().decode(la).rgb.pixels == [77, 77, 77])
        let palette = pngChunk("PLTE", [255, 0, 0, 0, 255, 0, 0, 0, 255])
        let trns = pngChunk("tRNS", [0, 128])
        let p = onePixelRow(colorType: 3, bitDepth: 8, samples: [2, 1, 0], width: 3, extra: [palette, trns])
        let decoded = try ImageDecoder().decode(p)
        #expect(decoded.colorModel == .palette)
        #expect(decoded.rgb.pixels == [0, 0, 255, 0, 255, 0, 255, 0, 0])
        // 2-bit grayscale scales by 85, like PIL's L;2.
        let g2 = onePixelRow(colorType: 0, bitDepth: 2, samples: [0b00_01_10_11], width: 4)
        #expect(try ImageDecoder().decode(g2).rgb.pixels == [0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255])
    }
}

/// The ``ImageError`` `body` throws, or nil when it returns (or throws anything else).
func caught(_ body: () throws -> Void) -> ImageError? {
    do {
        try body()
        return nil
    } catch {
        return error as? ImageError
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
