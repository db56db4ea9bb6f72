import TorchportCore

extension DType {
    /// The safetensors name of this dtype (`F32`, `BF16`, ...); nil for complex128, which
    /// safetensors cannot store.
    public var safetensorsName: String? {
        switch self {
        case .bool: "BOOL"
        case .uint8: "U8"
        case .int8: "I8"
        case .int16: "I16"
        case .float16: "F16"
        case .bfloat16: "BF16"
        case .int32: "I32"
        case .float32: "F32"
        case .complex64: "C64"
        case .float64: "F64"
        case .int64: "I64"
        case .complex128: nil
        }
    }

    /// The dtype of a safetensors name; nil when the name is unknown or unsupported (see
    /// ``SafeTensorsFormat/unsupportedDTypeNames``).
    public init?(safetensorsName name: String) {
        switch name {
        case "BOOL": self = .bool
        case "U8": self = .uint8
        case "I8": self = .int8
        case "I16": self = .int16
        case "F16": self = .float16
        case "BF16": self = .bfloat16
        case "I32": self = .int32
        case "F32": self = .float32
        case "C64": self = .complex64
        case "F64": self = .float64
        case "I64": self = .int64
        default: return nil
        }
    }

    /// Rank of the dtype in the Rust library's `Dtype` enum (declaration order). Its writer sorts
    /// tensors by this rank, descending, then by name; matching it makes byte-identical files.
    var safetensorsRank: Int {
        switch self {
        case .bool: 0
        case .uint8: 4
        case .int8: 5
        case .int16: 9
        case .float16: 11
        case .bfloat16: 12
        case .int32: 13
        case .float32: 15
        case .complex64: 16
        case .float64: 17
        case .int64: 18
        case .complex128: 19  // never written: refused before sorting
        }
    }
}

/// Constants of the safetensors format.
public enum SafeTensorsFormat {
    /// The reference implementation's cap on the header length (100 MB).
    public static let defaultMaxHeaderBytes = 100_000_000
    /// The key of the optional string-to-string metadata object.
    public static let metadataKey = "__metadata__"
    /// The header is padded with spaces so the data buffer starts at a multiple of this.
    public static let headerAlignment = 8
    /// Deepest nesting of arrays and objects the header parser accepts (a valid header needs 3).
    public static let maxJSONDepth = 64
    /// Dtypes the safetensors format defines that Torchport has no `DType` for: refused with
    /// ``SafeTensorsError/Kind/unsupportedDType(key:dtype:)`` rather than `unknownDType`.
    public static let unsupportedDTypeNames: Set<String> = [
        "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
    ]
}
