import Foundation
import Testing
import SafeTensors
import TorchportCore

/// `FloatCast` against what torch produced (`Fixtures/casts/torch-casts.safetensors`) and against
/// exhaustive properties of the formats.
@Suite("Float casts, bit-exact with torch")
struct FloatCastTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/casts/torch-casts.safetensors").path

    static func bits16(_ t: TensorRecord) -> [UInt16] {
        t.withContiguousBytes { b in (0..<t.numel).map { b.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self) } }
    }

    static func bits32(_ t: TensorRecord) -> [UInt32] {
        t.withContiguousBytes { b in (0..<t.numel).map { b.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self) } }
    }

    static func isNaN(_ bits: UInt32, width: Int) -> Bool {
        width == 32 ? Float(bitPattern: bits).isNaN
            : width == 16 ? bits & 0x7C00 == 0x7C00 && bits & 0x3FF != 0
            : bits & 0x7F80 == 0x7F80 && bits & 0x7F != 0  // bfloat16
    }

    @Test("Every cast torch made in the fixture, bit for bit (NaN bits where torch itself is consistent)",
          arguments: ["f32", "f64", "f16", "bf16"])
    func matchesTorch(_ source: String) throws {
        let file = try SafeTensorsFile(contentsOf: Self.fixture)
        let nanExact = Set((file.metadata["nan_exact"] ?? "").split(separator: ",").map(String.init))
        let input = try #require(file.tensor(named: source))
        var compared = 0
        for (target, dtype) in [("f32", DType.float32), ("f16", .float16), ("bf16", .bfloat16)] where target != source {
            let name = "\(source).to_\(target)"
            let expected = try #require(file.tensor(named: name))
            let ours = try #require(FloatCast.cast(input, to: dtype))
            let got = try #require(TensorRecord(dtype: dtype, shape: [input.numel], bytes: ByteSlice(owner: .owned(ours))))
            let (want, have, width): ([UInt32], [UInt32], Int) = dtype == .float32
                ? (Self.bits32(expected), Self.bits32(got), 32)
                : (Self.bits16(expected).map(UInt32.init), Self.bits16(got).map(UInt32.init), dtype == .float16 ? 16 : 8)
            #expect(want.count == input.numel)
            var mismatches: [String] = []
            for i in want.indices {
                let exact = nanExact.contains(name) || !Self.isNaN(want[i], width: width)
                let ok = exact ? want[i] == have[i] : Self.isNaN(have[i], width: width)
                if !ok { mismatches.append("#\(i): torch \(String(want[i], radix: 16)), ours \(String(have[i], radix: 16))") }
            }
            #expect(mismatches.isEmpty, "\(name): \(mismatches.count) mismatches, first \(mismatches.prefix(5))")
            compared += want.count
        }
        #expect(compared > 1000)
    }

    @Test("Special values: zeros, infinities, NaN, overflow threshold, subnormal ties")
    func specialValues() {
        let half: [(UInt32, UInt16)] = [
            (0x0000_0000, 0x0000), (0x8000_0000, 0x8000), (0x7F80_0000, 0x7C00), (0xFF80_0000, 0xFC00),
            (0x7FC0_0000, 0x7E00), (0xFFC0_0000, 0xFE00), (0x7F80_0001, 0x7E00), (0x7FFF_FFFF, 0x7FFF),
            (0x477F_E000, 0x7BFF),  // 65504, the largest half
            (0x477F_EFFF, 0x7BFF), (0x477F_F000, 0x7C00),  // 65520 rounds to inf
            (0x7F7F_FFFF, 0x7C00), (0x3880_0000, 0x0400),  // 2^-14, the smallest normal
            (0x3380_0000, 0x0001), (0x3300_0000, 0x0000), (0x3300_0001, 0x0001),  // 2^-24; 2^-25 ties to 0
            (0x33C0_0000, 0x0002), (0x3420_0000, 0x0002),  // 1.5 and 2.5 x 2^-24: ties to even
            (0x387F_C000, 0x03FF), (0x387F_E000, 0x0400),  // the largest subnormal; the tie above it goes to 2^-14
            (0x0000_0001, 0x0000), (0x3F80_1000, 0x3C00), (0x3F80_3000, 0x3C02),  // 1 + half an ulp: even
        ]
        for (input, expected) in half {
            #expect(FloatCast.halfBits(Float(bitPattern: input)) == expected, "half of \(String(input, radix: 16))")
        }
        let bf16: [(UInt32, UInt16)] = [
            (0x0000_0000, 0x0000), (0x8000_0000, 0x8000), (0x7F80_0000, 0x7F80), (0xFF80_0000, 0xFF80),
            (0x7FC0_0000, 0xFFFF), (0x7F80_0001, 0xFFFF), (0x3F80_8000, 0x3F80), (0x3F81_8000, 0x3F82),
            (0x3F80_8001, 0x3F81), (0x7F7F_FFFF, 0x7F80), (0x7F7F_7FFF, 0x7F7F), (0x0000_8000, 0x0000),
            (0x0001_8000, 0x0002), (0x0000_8001, 0x0001),
        ]
        for (input, expected) in bf16 {
            #expect(FloatCast.bfloat16Bits(Float(bitPattern: input)) == expected, "bfloat16 of \(String(input, radix: 16))")
        }
    }

    @Test("All 65536 float16 values widen exactly and round-trip; every tie between neighbours goes to even")
    func exhaustiveHalf() {
        for h in 0...UInt16.max {
            let f = FloatCast.float(halfBits: h)
            let expected = Float(Float16(bitPattern: h))
            if f.isNaN {
                #expect(expected.isNaN && h & 0x7C00 == 0x7C00 && h & 0x3FF != 0)
                #expect(FloatCast.halfBits(f) == h | 0x0200, "NaN \(h) comes back quiet with its payload")
                continue
            }
            #expect(f.bitPattern == expected.bitPattern, "\(h)")
            #expect(FloatCast.halfBits(f) == h, "\(h) round trip")
            // Midway to the next half up (same sign), and one float32 ulp either side.
            let magnitude = h & 0x7FFF
            guard magnitude < 0x7BFF else { continue }
            let next = FloatCast.float(halfBits: h + 1)
            let mid = Float((Double(f) + Double(next)) / 2)
            let even = h & 1 == 0 ? h : h + 1
            #expect(FloatCast.halfBits(mid) == even, "tie above \(h)")
            #expect(FloatCast.halfBits(Float(bitPattern: mid.bitPattern + 1)) == h + 1, "above the tie above \(h)")
            #expect(FloatCast.halfBits(Float(bitPattern: mid.bitPattern - 1)) == h, "below the tie above \(h)")
        }
    }

    @Test("All 65536 bfloat16 values widen exactly and round-trip; every tie goes to even")
    func exhaustiveBFloat16() {
        for b in 0...UInt16.max {
            let f = FloatCast.float(bfloat16Bits: b)
            #expect(f.bitPattern == UInt32(b) << 16)
            if f.isNaN {
                #expect(FloatCast.bfloat16Bits(f) == 0xFFFF)
                continue
            }
            #expect(FloatCast.bfloat16Bits(f) == b)
            guard b & 0x7FFF < 0x7F80 else { continue }
            let tie = UInt32(b) << 16 | 0x8000
            let even = b & 1 == 0 ? b : b + 1
            #expect(FloatCast.bfloat16Bits(Float(bitPattern: tie)) == even)
            #expect(FloatCast.bfloat16Bits(Float(bitPattern: tie - 1)) == b)
            #expect(FloatCast.bfloat16Bits(Float(bitPattern: tie + 1)) == b + 1)
        }
    }

    @Test("float32 -> float16 agrees with the platform's IEEE conversion across the float32 range")
    func agreesWithPlatform() {
        var checked = 0
        // A sweep of every 4099th bit pattern, plus a dense one over the float16 subnormal range.
        for bits in Array(stride(from: UInt32(0), to: UInt32.max - 4099, by: 4099))
            + Array(stride(from: UInt32(0x3300_0000), to: 0x3890_0000, by: 31)) {
            let f = Float(bitPattern: bits)
            guard !f.isNaN else { continue }
            #expect(FloatCast.halfBits(f) == Float16(f).bitPattern, "\(String(bits, radix: 16))")
            checked += 1
        }
        #expect(checked > 1_000_000)
    }

    @Test("Casting a tensor: float64 rounds through float32 as torch does; integers are not cast")
    func tensors() throws {
        // 1 + 2^-11 + 2^-40 is above the float16 tie, but rounds to the tie in float32 first.
        let value = 1 + 0x1p-11 + 0x1p-40
        let f64 = try #require(TensorRecord(dtype: .float64, shape: [1], bytes: ByteSlice(owner: .owned(withUnsafeBytes(of: value) { Array($0) }))))
        let half = try #require(FloatCast.cast(f64, to: .float16))
        #expect(half == [0x00, 0x3C])  // 1.0, not 1 + 2^-10
        let ints = try #require(TensorRecord(dtype: .int64, shape: [2], bytes: ByteSlice(owner: .owned([UInt8](repeating: 1, count: 16)))))
        #expect(FloatCast.cast(ints, to: .float16) == nil)
        let same = try #require(TensorRecord(dtype: .float16, shape: [1], bytes: ByteSlice(owner: .owned([0x01, 0x7C]))))
        #expect(FloatCast.cast(same, to: .float16) == [0x01, 0x7C], "the same dtype keeps even a signalling NaN")
    }
}
