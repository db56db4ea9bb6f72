import Foundation
@testable import Images
import TorchportCore

enum Fixtures {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/images")

    static func path(_ name: String) -> String { root.appendingPathComponent(name).path }

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: root.appendingPathComponent(name)))
    }

    struct Entry: Decodable {
        let file: String
        let pil_mode: String
        let format: String
        let width: Int
        let height: Int
        let decoded_fnv1a64: String
        let geometry_fnv1a64: String
        let licence: String
    }

    struct Manifest: Decodable {
        let images: [Entry]
    }

    static let manifest: Manifest = {
        let data = try! Data(contentsOf: root.appendingPathComponent("manifest.json"))
        return try! JSONDecoder().decode(Manifest.self, from: data)
    }()

    static var imageNames: [String] { manifest.images.map(\.file) }
}

/// FNV-1a 64, the digest `Fixtures/generate_images.py` records for PIL's bytes.
func fnv1a64(_ bytes: [UInt8]) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    let s = String(h, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

/// CRC-32 (PNG's), to build well-formed hostile PNG chunks.
func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c ^= UInt32(b)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    }
    return ~c
}

func bigEndian32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

/// A PNG chunk with a correct CRC.
func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let t = Array(type.utf8)
    return bigEndian32(UInt32(data.count)) + t + data + bigEndian32(crc32(t + data))
}

let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

/// A PNG whose IHDR declares `width` x `height` (8-bit RGB) followed by `idat` and IEND.
func pngWithHeader(width: UInt32, height: UInt32, colorType: UInt8 = 2, bitDepth: UInt8 = 8, idat: [UInt8] = []) -> [UInt8] {
    let ihdr = bigEndian32(width) + bigEndian32(height) + [bitDepth, colorType, 0, 0, 0]
    return pngSignature + pngChunk("IHDR", ihdr) + pngChunk("IDAT", idat) + pngChunk("IEND", [])
}
