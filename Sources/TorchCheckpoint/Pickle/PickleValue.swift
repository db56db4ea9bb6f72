import TorchportCore
/// A value produced by the restricted unpickler. Scalars are held inline; every container is an
/// index into the ``PickleGraph`` arena, so values never nest recursively: cycles (a list appended
/// to itself) and millions of nested lists cost no recursion to build, walk or free.
public enum PickleValue: Sendable, Equatable {
    /// Python's `None`.
    case none
    /// A Python `bool`.
    case bool(Bool)
    /// A Python `int` that fits in 64 bits.
    case int(Int)
    /// An integer beyond 64 bits (LONG1/LONG4), as little-endian two's-complement bytes.
    case bigInt(PickleBigInt)
    /// A Python `float` (IEEE double).
    case float(Double)
    /// A Python `str`.
    case string(String)
    /// A Python `bytes` (or `bytearray`).
    case bytes([UInt8])
    /// A list: index into ``PickleGraph/lists``.
    case list(Int)
    /// A tuple: index into ``PickleGraph/tuples``.
    case tuple(Int)
    /// A set or frozenset: index into ``PickleGraph/sets``.
    case set(Int)
    /// A dict or `OrderedDict`: index into ``PickleGraph/dicts``.
    case dict(Int)
    /// A harmless object kept as an inert record (`argparse.Namespace`, `__torch__.*`, ...).
    case object(Int)
    /// A reference to an allowlisted global (a class or function that is never called).
    case global(Int)
    /// A tensor: index into ``PickleGraph/tensors``.
    case tensor(Int)
    /// A storage: index into ``PickleGraph/storages``.
    case storage(Int)
    /// A `torch.dtype` such as `torch.float32`.
    case dtype(DType)
    /// A `torch.device`, by its string (`cpu`, `cuda:0`).
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
    /// The value's two's-complement bytes, least significant first.
    public let bytes: [UInt8]

    /// True when the most significant bit of the last byte is set.
    public var isNegative: Bool { (bytes.last ?? 0) & 0x80 != 0 }

    /// Decimal digits (for numbers up to 4096 bytes; larger ones are summarised).
    public var description: String {
        // Decimal conversion is quadratic in the size: past 512 bytes (1,233 digits, far beyond any
        // key a real checkpoint holds) the integer is only described.
        guard bytes.count <= 512 else { return "<\(bytes.count)-byte integer>" }
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
    /// The keys, in insertion order (a duplicate key keeps its first position).
    public internal(set) var keys: [PickleValue] = []
    /// The values, parallel to ``keys`` (a duplicate key's last value wins).
    public internal(set) var values: [PickleValue] = []
    /// Attributes set by BUILD (a `state_dict`'s `_metadata`), in order.
    public internal(set) var attributes: [(name: String, value: PickleValue)] = []
    /// True for an `OrderedDict`, false for a plain dict.
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

    /// The value of a string key, or nil when absent.
    public subscript(key: String) -> PickleValue? {
        lookup[.string(key)].map { values[$0] }
    }

    /// Number of key-value pairs.
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
    /// The class's module (`argparse`, `__torch__.torchvision.models.resnet`).
    public let module: String
    /// The class's name (`Namespace`, `ResNet`).
    public let name: String
    /// The constructor arguments (REDUCE or NEWOBJ).
    public var args: [PickleValue]
    /// The state given by BUILD, as pickled.
    public var state: PickleValue?
    /// The string-keyed entries of the BUILD state, in order.
    public var attributes: [(name: String, value: PickleValue)] = []
    /// Items appended by APPEND / APPENDS.
    public var items: [PickleValue] = []
    /// Pairs set by SETITEM / SETITEMS.
    public var entries: [(key: PickleValue, value: PickleValue)] = []

    /// `module.name`.
    public var qualifiedName: String { "\(module).\(name)" }
}

/// What a global means to Torchport. Anything not listed here is refused unless the caller
/// explicitly allows unknown globals, in which case it becomes an inert class.
public enum GlobalRole: Sendable, Equatable {
    /// The tensor rebuild functions of `torch._utils` (`_rebuild_tensor`, `_v2`, `_v3`, `_rebuild_parameter`
    /// and `_rebuild_parameter_with_state`).
    case rebuildTensor, rebuildTensorV2, rebuildTensorV3, rebuildParameter, rebuildParameterWithState
    /// `torch._tensor._rebuild_from_type_v2`: a tensor subclass rebuilt as a plain tensor.
    case rebuildFromTypeV2
    /// `torch.Tensor` and `torch.nn.Parameter` as classes.
    case tensorType
    /// A legacy typed storage class (`torch.FloatStorage`, ...) and its element type.
    case storageType(DType)
    /// `collections.OrderedDict`, `torch.Size` and `torch.device`.
    case orderedDict, torchSize, torchDevice
    /// A `torch.<dtype>` global (`torch.float32`, `torch.half`, ...).
    case dtype(DType)
    /// `_codecs.encode`, which protocol 2 uses to pickle `bytes`.
    case codecsEncode
    /// The builtins `set`, `frozenset`, `bytearray` and `slice`.
    case set, frozenset, bytearray, slice
    /// `copyreg._reconstructor` and `copyreg.__newobj__`, which create objects of a class.
    case reconstructor, newObject
    /// TorchScript's `torch.jit._pickle.build_intlist` & co. and `restore_type_tag`: return argument 0.
    case passThrough
    /// A class kept as an inert record (`argparse.Namespace`, `__torch__.*`, numpy scalars).
    case inertClass
    /// A module class of torch or torchvision (`torch.nn.modules.conv.Conv2d`,
    /// `torchvision.models.resnet.ResNet`), as a whole-model pickle (`torch.save(model)`) names
    /// them: an inert record here; `torch.load` would import torch's own module for it.
    case moduleClass
    /// A global outside every allowlist, admitted only because the caller asked for it.
    case unknown
}

/// A global referenced by the pickle (GLOBAL / STACK_GLOBAL), with the meaning Torchport gives it.
public struct PickleGlobal: Sendable {
    /// The module part of the name (`torch._utils`).
    public let module: String
    /// The name within the module (`_rebuild_tensor_v2`).
    public let name: String
    /// What the global means to Torchport.
    public let role: GlobalRole
    /// `module.name`.
    public var qualifiedName: String { "\(module).\(name)" }
}

/// A storage named by a persistent id: `('storage', <class>, key, location, numel)`, plus the legacy
/// format's optional view `(view_key, offset, size)`.
public struct StorageRef: Sendable, Equatable {
    /// The storage's key (`data/<key>` in a zip, the storage id in a legacy stream).
    public let key: String
    /// The element type of the storage.
    public let dtype: DType
    /// Number of elements in the storage.
    public let numel: Int
    /// Where the storage lived when saved (`cpu`, `cuda:0`); informational.
    public let location: String
    /// For a legacy view storage: the element offset into the root storage `key`, and the view's own key.
    public var viewOffset: Int = 0
    /// The view's own key, nil when the storage is not a view.
    public var viewKey: String?
}
