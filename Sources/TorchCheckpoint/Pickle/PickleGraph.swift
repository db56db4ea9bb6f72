import TorchportCore
/// The arena every container value of one checkpoint lives in. A ``PickleValue`` that is a
/// container is an index into one of these arrays.
public struct PickleGraph: Sendable {
    /// Every list, indexed by ``PickleValue/list(_:)``.
    public internal(set) var lists: [[PickleValue]] = []
    /// Every tuple, indexed by ``PickleValue/tuple(_:)``.
    public internal(set) var tuples: [[PickleValue]] = []
    /// Every set and frozenset, indexed by ``PickleValue/set(_:)``.
    public internal(set) var sets: [[PickleValue]] = []
    /// Every dict, indexed by ``PickleValue/dict(_:)``.
    public internal(set) var dicts: [PickleDict] = []
    /// Every inert object, indexed by ``PickleValue/object(_:)``.
    public internal(set) var objects: [InertObject] = []
    /// Every global referenced, indexed by ``PickleValue/global(_:)``.
    public internal(set) var globals: [PickleGlobal] = []
    /// Every tensor, indexed by ``PickleValue/tensor(_:)``.
    public internal(set) var tensors: [TensorMeta] = []
    /// Every distinct storage (one per key), indexed by ``PickleValue/storage(_:)`` and ``TensorMeta/storage``.
    public internal(set) var storages: [StorageRef] = []
    var storageIndex: [String: Int] = [:]

    /// An empty arena.
    public init() {}

    mutating func add(list: [PickleValue]) -> PickleValue { lists.append(list); return .list(lists.count - 1) }
    mutating func add(tuple: [PickleValue]) -> PickleValue { tuples.append(tuple); return .tuple(tuples.count - 1) }
    mutating func add(set: [PickleValue]) -> PickleValue { sets.append(set); return .set(sets.count - 1) }
    mutating func add(dict: PickleDict) -> PickleValue { dicts.append(dict); return .dict(dicts.count - 1) }
    mutating func add(object: InertObject) -> PickleValue { objects.append(object); return .object(objects.count - 1) }
    mutating func add(global: PickleGlobal) -> PickleValue { globals.append(global); return .global(globals.count - 1) }
    mutating func add(tensor: TensorMeta) -> PickleValue { tensors.append(tensor); return .tensor(tensors.count - 1) }

    /// The elements of a tuple or list value, or nil for anything else.
    public func sequence(_ v: PickleValue) -> [PickleValue]? {
        switch v {
        case .tuple(let i): tuples[i]
        case .list(let i): lists[i]
        default: nil
        }
    }

    /// A one-line description of a value for reports (`dict(161)`, `3`), an object with its first
    /// attributes (`argparse.Namespace(arch='resnet50', lr=0.1, ... 20 more)`).
    public func summary(_ v: PickleValue) -> String {
        guard case .object(let i) = v, !objects[i].attributes.isEmpty else { return shallowSummary(v) }
        let o = objects[i]
        let shown = o.attributes.prefix(6).map { "\($0.name)=\(shallowSummary($0.value))" }
        return "\(o.qualifiedName)(" + shown.joined(separator: ", ")
            + (o.attributes.count > 6 ? ", ... \(o.attributes.count - 6) more" : "") + ")"
    }

    /// ``summary(_:)`` without looking into objects (no recursion through attributes).
    func shallowSummary(_ v: PickleValue) -> String {
        switch v {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .bigInt(let b): return b.description
        case .float(let d): return String(d)
        case .string(let s): return s.count > 60 ? String(s.prefix(57)).debugDescription + "..." : s.debugDescription
        case .bytes(let b): return "bytes(\(b.count))"
        case .list(let i): return "list(\(lists[i].count))"
        case .tuple(let i): return "tuple(\(tuples[i].count))"
        case .set(let i): return "set(\(sets[i].count))"
        case .dict(let i): return "\(dicts[i].isOrdered ? "OrderedDict" : "dict")(\(dicts[i].count))"
        case .object(let i): return objects[i].qualifiedName
        case .global(let i): return "<global \(globals[i].qualifiedName)>"
        case .tensor(let i): return "tensor \(tensors[i].dtype.rawValue)\(tensors[i].shape)"
        case .storage(let i): return "storage \(storages[i].dtype.rawValue)[\(storages[i].numel)]"
        case .dtype(let d): return "torch.\(d.rawValue)"
        case .device(let d): return "device(\(d))"
        }
    }
}

/// A tensor as the pickle describes it: a view (offset, shape, strides, all in elements) onto a
/// storage named by key. ``Checkpoint`` binds it to bytes and validates it.
public struct TensorMeta: Sendable, Equatable {
    /// The element type.
    public let dtype: DType
    /// The dimensions, outermost first.
    public let shape: [Int]
    /// Steps between neighbours along each dimension, in elements.
    public let strides: [Int]
    /// Offset of the first element in the storage, in elements.
    public let storageOffset: Int
    /// Index into ``PickleGraph/storages``.
    public let storage: Int
    /// Whether the tensor was saved with `requires_grad`.
    public var requiresGrad = false
    /// Whether the tensor was rebuilt as an `nn.Parameter`.
    public var isParameter = false
    /// Number of elements (the product of `shape`).
    public let numel: Int
}

extension TensorRecord {
    init(meta: TensorMeta, storage ref: StorageRef, bytes: ByteSlice) {
        self.init(dtype: meta.dtype, shape: meta.shape, strides: meta.strides, storageOffset: meta.storageOffset,
                  numel: meta.numel, storageKey: ref.viewKey ?? ref.key, location: ref.location,
                  requiresGrad: meta.requiresGrad, isParameter: meta.isParameter, storage: bytes)
    }
}
