/// Element types of tensors and storages, named as torch names them.
public enum DType: String, Sendable, CaseIterable, Codable {
    /// Real types: IEEE floats of 32, 64 and 16 bits, bfloat16, signed integers of 64 to 8 bits,
    /// unsigned 8-bit, and `bool` (one byte).
    case float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool
    /// Complex numbers of two float32 (`complex64`) or two float64 (`complex128`) parts.
    case complex64, complex128

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float64, .int64, .complex64: 8
        case .float32, .int32: 4
        case .float16, .bfloat16, .int16: 2
        case .int8, .uint8, .bool: 1
        case .complex128: 16
        }
    }

    /// The unit that byte-swapping works on (a complex number swaps each half).
    package var swapUnit: Int {
        switch self {
        case .complex64: 4
        case .complex128: 8
        default: size
        }
    }

    /// True for the real floating-point types (float32, float64, float16, bfloat16); false for integers,
    /// `bool` and the complex types.
    public var isFloatingPoint: Bool { self == .float32 || self == .float64 || self == .float16 || self == .bfloat16 }

    /// The legacy typed storage classes (`torch.FloatStorage`, ...), as pickled by `torch.save`.
    package static let storageClasses: [String: DType] = [
        "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16,
        "BFloat16Storage": .bfloat16, "LongStorage": .int64, "IntStorage": .int32,
        "ShortStorage": .int16, "CharStorage": .int8, "ByteStorage": .uint8, "BoolStorage": .bool,
        "ComplexFloatStorage": .complex64, "ComplexDoubleStorage": .complex128,
        "UntypedStorage": .uint8,
    ]

    /// `torch.<name>` dtype globals.
    package static let torchNames: [String: DType] = [
        "float32": .float32, "float": .float32, "float64": .float64, "double": .float64,
        "float16": .float16, "half": .float16, "bfloat16": .bfloat16, "int64": .int64, "long": .int64,
        "int32": .int32, "int": .int32, "int16": .int16, "short": .int16, "int8": .int8, "uint8": .uint8,
        "bool": .bool, "complex64": .complex64, "cfloat": .complex64, "complex128": .complex128,
        "cdouble": .complex128,
    ]
}

/// The byte order of a checkpoint's storages (`byteorder` in a zip checkpoint, `little_endian` in a
/// legacy stream's system info).
public enum ByteOrder: String, Sendable, Codable, CaseIterable {
    /// Least significant byte first (every x86 and ARM machine torch runs on).
    case little
    /// Most significant byte first (s390x); swapped to little-endian on load.
    case big
}
