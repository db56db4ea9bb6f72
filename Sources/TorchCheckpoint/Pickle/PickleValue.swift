/// A value produced by the restricted unpickler. Scalars are held inline; every container is an
/// index into the ``PickleGraph`` arena, so values never nest recursively: cycles (a list appended
/// to itself) and millions of nested lists cost no recursion to build, walk or free.
public enum PickleValue: Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer beyond 64 bits (LONG1/LONG4), as little-endian two's-complement bytes.
    case bigInt(PickleBigInt)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list(Int)
    case tuple(Int)
    case set(Int)
    case dict(Int)
    /// A harmless object kept as an inert record (`argparse.Namespace`, `__torch__.*`, ...).
    case object(Int)
    /// A reference to an allowlisted global (a class or function that is never called).
    case global(Int)
    case tensor(Int)
    case storage(Int)
    case dtype(DType)
    case device(String)

    var kindName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int, .bigInt: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .list: "list"
        case .tuple: "tuple"
        case .set: "set"
        case .dict: "dict"
        case .object: "object"
        case .global: "global"
        case .tensor: "tensor"
        case .storage: "storage"
        case .dtype: "dtype"
        case .device: "device"
        }
    }
}

/// An integer too large for `Int`, kept as its little-endian two's-complement bytes.
public struct PickleBigInt: Sendable, Equatable, CustomStringConvertible {
    public let bytes: [UInt8]

    public var isNegative: Bool { (bytes.last ?? 0) & 0x80 != 0 }

    /// Decimal digits (for numbers up to 4096 bytes; larger ones are summarised).
    public var description: String {
        guard bytes.count <= 4096 else { return "<\(bytes.count)-byte integer>" }
        // Magnitude as little-endian UInt32 limbs.
        var mag = bytes
        if isNegative {  // two's complement negate
            var carry = 1
            for i in mag.indices {
                let v = Int(~mag[i]) + carry
                mag[i] = UInt8(v & 0xFF)
                carry = v >> 8
            }
        }
        var limbs: [UInt32] = stride(from: 0, to: mag.count, by: 4).map { i in
            var v: UInt32 = 0
            for j in (i..<min(i + 4, mag.count)).reversed() { v = v << 8 | UInt32(mag[j]) }
            return v
        }
        var chunks: [UInt32] = []
        while limbs.contains(where: { $0 != 0 }) {
            var rem: UInt64 = 0
            for i in limbs.indices.reversed() {
                let cur = rem << 32 | UInt64(limbs[i])
                limbs[i] = UInt32(cur / 1_000_000_000)
                rem = cur % 1_000_000_000
            }
            chunks.append(UInt32(rem))
        }
        guard let top = chunks.last else { return "0" }
        var s = isNegative ? "-" : ""
        s += String(top)
        for c in chunks.dropLast().reversed() {
            let d = String(c)
            s += String(repeating: "0", count: 9 - d.count) + d
        }
        return s
    }
}

/// A pickled dict (or `OrderedDict`): ordered pairs with Python's replace-on-duplicate semantics,
/// plus attributes set by BUILD (a `state_dict`'s `_metadata`).
public struct PickleDict: Sendable {
    public internal(set) var keys: [PickleValue] = []
    public internal(set) var values: [PickleValue] = []
    public internal(set) var attributes: [(name: String, value: PickleValue)] = []
    public let isOrdered: Bool
    private var lookup: [DictKey: Int] = [:]

    init(ordered: Bool) { isOrdered = ordered }

    mutating func set(_ key: PickleValue, _ value: PickleValue) {
        let k = DictKey(key)
        if let i = lookup[k] {
            values[i] = value
        } else {
            lookup[k] = keys.count
            keys.append(key)
            values.append(value)
        }
    }

    public subscript(key: String) -> PickleValue? {
        lookup[.string(key)].map { values[$0] }
    }

    public var count: Int { keys.count }
}

/// Hashable identity of a dict key: scalars by value, containers by arena identity.
enum DictKey: Hashable {
    case none, bool(Bool), int(Int), big([UInt8]), float(UInt64), string(String), bytes([UInt8])
    case ref(String, Int), dtype(String), device(String)

    init(_ v: PickleValue) {
        switch v {
        case .none: self = .none
        case .bool(let b): self = .int(b ? 1 : 0)  // Python: True == 1
        case .int(let i): self = .int(i)
        case .bigInt(let b): self = .big(b.bytes)
        case .float(let d): self = d == d.rounded() && abs(d) < 9e15 ? .int(Int(d)) : .float(d.bitPattern)
        case .string(let s): self = .string(s)
        case .bytes(let b): self = .bytes(b)
        case .list(let i), .tuple(let i), .set(let i), .dict(let i), .object(let i), .global(let i),
             .tensor(let i), .storage(let i):
            self = .ref(v.kindName, i)
        case .dtype(let d): self = .dtype(d.rawValue)
        case .device(let s): self = .device(s)
        }
    }
}

/// An object Torchport does not interpret, kept as data: its class, constructor arguments, and
/// whatever BUILD / SETITEMS / APPENDS gave it. Nothing about it is ever called.
public struct InertObject: Sendable {
    public let module: String
    public let name: String
    public var args: [PickleValue]
    public var state: PickleValue?
    public var attributes: [(name: String, value: PickleValue)] = []
    public var items: [PickleValue] = []
    public var entries: [(key: PickleValue, value: PickleValue)] = []

    public var qualifiedName: String { "\(module).\(name)" }
}

/// What a global means to Torchport. Anything not listed here is refused unless the caller
/// explicitly allows unknown globals, in which case it becomes an inert class.
public enum GlobalRole: Sendable, Equatable {
    case rebuildTensor, rebuildTensorV2, rebuildTensorV3, rebuildParameter, rebuildParameterWithState
    case rebuildFromTypeV2
    case tensorType
    case storageType(DType)
    case orderedDict, torchSize, torchDevice
    case dtype(DType)
    case codecsEncode
    case set, frozenset, bytearray, slice
    case reconstructor, newObject
    /// TorchScript's `torch.jit._pickle.build_intlist` & co. and `restore_type_tag`: return argument 0.
    case passThrough
    /// A class kept as an inert record (`argparse.Namespace`, `__torch__.*`, numpy scalars).
    case inertClass
    /// A global outside every allowlist, admitted only because the caller asked for it.
    case unknown
}

public struct PickleGlobal: Sendable {
    public let module: String
    public let name: String
    public let role: GlobalRole
    public var qualifiedName: String { "\(module).\(name)" }
}

/// A storage named by a persistent id: `('storage', <class>, key, location, numel)`, plus the legacy
/// format's optional view `(view_key, offset, size)`.
public struct StorageRef: Sendable, Equatable {
    public let key: String
    public let dtype: DType
    public let numel: Int
    public let location: String
    /// For a legacy view storage: the element offset into the root storage `key`, and the view's own key.
    public var viewOffset: Int = 0
    public var viewKey: String?
}
