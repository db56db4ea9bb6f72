// MARK: - Float casts, as torch's CPU kernels do them
//
// `convert --dtype float16|bfloat16` must produce the bits `tensor.half()` / `tensor.bfloat16()`
// produce. Everything here works on bit patterns with integer arithmetic, so the result does not
// depend on the CPU, the compiler or the floating-point environment (no flush-to-zero surprises).
// `Fixtures/casts/` holds what torch 2.15 produced for thousands of edge cases; the tests compare.

/// Conversions between float32 and the two 16-bit float formats, bit-exact with torch.
///
/// | From → to | Rounding | Overflow | NaN |
/// |---|---|---|---|
/// | float32 → float16 | nearest, ties to even (subnormals too) | ±inf (from 65520) | sign and top 10 payload bits kept, quiet bit set (x86 `vcvtps2ph`, torch's kernel) |
/// | float32 → bfloat16 | nearest, ties to even (subnormals too) | ±inf | `0xFFFF` (torch's AVX2/AVX-512 kernel; from float16: `0x7FC0`) |
/// | float64 → either | first to float32 (nearest even), then as above: torch rounds twice too | | |
/// | float16 → float32 | exact | | payload kept, quiet bit set |
/// | bfloat16 → float32 | exact | | unchanged (the top half of the float32) |
public enum FloatCast {
    /// float32 → IEEE 754 binary16 bits.
    @inlinable
    public static func halfBits(_ value: Float) -> UInt16 {
        let x = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
        let a = x & 0x7FFF_FFFF
        if a > 0x7F80_0000 {  // NaN: quiet, keep the top payload bits
            return sign | 0x7E00 | UInt16(truncatingIfNeeded: (a >> 13) & 0x3FF)
        }
        if a >= 0x477F_F000 { return sign | 0x7C00 }  // >= 65520 (and inf) rounds to inf
        if a >= 0x3880_0000 {  // >= 2^-14: a normal half
            let r = a &- 0x3800_0000  // rebias the exponent: 127 - 15 = 112 = 0x38000000 >> 23
            return sign | UInt16(truncatingIfNeeded: (r &+ 0xFFF &+ ((r >> 13) & 1)) >> 13)
        }
        // A half subnormal (or zero): value / 2^-24, rounded to nearest even.
        let e = Int(a >> 23)
        if e < 102 { return sign }  // below 2^-25: rounds to zero
        let m = (a & 0x7F_FFFF) | 0x80_0000
        let shift = UInt32(126 - e)  // 14...24
        let q = m >> shift
        let rem = m & ((1 << shift) - 1)
        let halfway = UInt32(1) << (shift - 1)
        let up: UInt32 = rem > halfway || (rem == halfway && q & 1 == 1) ? 1 : 0
        return sign | UInt16(truncatingIfNeeded: q + up)
    }

    /// float32 → bfloat16 bits (the top half of a float32, rounded to nearest even). `nan` is what
    /// a NaN becomes: torch's float32 and float64 kernels write `0xFFFF`, its float16 one `0x7FC0`.
    @inlinable
    public static func bfloat16Bits(_ value: Float, nan: UInt16 = 0xFFFF) -> UInt16 {
        let x = value.bitPattern
        if x & 0x7FFF_FFFF > 0x7F80_0000 { return nan }
        return UInt16(truncatingIfNeeded: (x &+ 0x7FFF &+ ((x >> 16) & 1)) >> 16)
    }

    /// binary16 bits → float32, exactly.
    @inlinable
    public static func float(halfBits h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0x1F:
            return Float(bitPattern: mantissa == 0 ? sign | 0x7F80_0000 : sign | 0x7FC0_0000 | mantissa << 13)
        case 0:
            // Subnormal: mantissa x 2^-24, exact in float32 (10 bits).
            return Float(bitPattern: sign | (Float(mantissa) * 0x1p-24).bitPattern)
        default:
            return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }

    /// bfloat16 bits → float32, exactly.
    @inlinable
    public static func float(bfloat16Bits b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)  // NaNs too: torch does not quieten them
    }

    /// Whether ``cast(_:to:)`` converts `source` to `target`: float32, float64, float16 or
    /// bfloat16 to float32, float16 or bfloat16.
    public static func canCast(from source: DType, to target: DType) -> Bool {
        [.float32, .float64, .float16, .bfloat16].contains(source) && [.float32, .float16, .bfloat16].contains(target)
    }

    /// The tensor's values converted to `target`, little-endian and row-major: torch's
    /// `tensor.to(target)`. Returns nil when ``canCast(from:to:)`` is false (integer tensors are
    /// left to the caller, unchanged). The same dtype gives the bytes unchanged.
    public static func cast(_ tensor: TensorRecord, to target: DType) -> [UInt8]? {
        guard canCast(from: tensor.dtype, to: target) else { return nil }
        let n = tensor.numel
        let source = tensor.dtype
        if source == target { return tensor.contiguousBytes() }
        return tensor.withContiguousBytes { src -> [UInt8] in
            [UInt8](unsafeUninitializedCapacity: n * target.size) { out, initialized in
                let dst = UnsafeMutableRawBufferPointer(out)
                switch target {
                case .float16:
                    map(src, source, n) { dst.storeBytes(of: halfBits($1).littleEndian, toByteOffset: $0 * 2, as: UInt16.self) }
                case .bfloat16:
                    let nan: UInt16 = source == .float16 ? 0x7FC0 : 0xFFFF
                    map(src, source, n) { dst.storeBytes(of: bfloat16Bits($1, nan: nan).littleEndian, toByteOffset: $0 * 2, as: UInt16.self) }
                default:
                    map(src, source, n) { dst.storeBytes(of: $1.bitPattern.littleEndian, toByteOffset: $0 * 4, as: UInt32.self) }
                }
                initialized = n * target.size
            }
        }
    }

    /// Calls `store(i, x)` with each element of `src` (of dtype `source`) as a float32, with the
    /// dtype switch outside the loop.
    @inline(__always)
    private static func map(_ src: UnsafeRawBufferPointer, _ source: DType, _ n: Int, _ store: (Int, Float) -> Void) {
        switch source {
        case .float32:
            for i in 0..<n { store(i, Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))) }
        case .float64:
            for i in 0..<n { store(i, Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))) }
        case .float16:
            for i in 0..<n { store(i, float(halfBits: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))) }
        default:
            for i in 0..<n { store(i, float(bfloat16Bits: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))) }
        }
    }
}
