import TorchportCore
// MARK: - What allowlisted globals mean
//
// REDUCE, NEWOBJ, OBJ, INST and BUILD never call anything: an interpreted global is implemented
// here in Swift, an inert class becomes an `InertObject` record, and anything else was already
// refused when its GLOBAL was read.

extension Unpickler {
    func makeGlobal(module: String, name: String) throws -> PickleValue {
        let role = try classify(module: module, name: name)
        if case .dtype(let d) = role { return .dtype(d) }
        return graph.add(global: PickleGlobal(module: module, name: name, role: role))
    }

    private func global(_ v: PickleValue) -> PickleGlobal? {
        if case .global(let i) = v { return graph.globals[i] }
        return nil
    }

    /// NEWOBJ / OBJ / INST / `copyreg.__newobj__`: instantiate a class, as a record.
    func construct(_ cls: PickleValue, args: [PickleValue], operation: String) throws -> PickleValue {
        guard let g = global(cls) else {
            throw error(.wrongType(operation: operation, expected: "a class", got: cls.kindName))
        }
        switch g.role {
        case .orderedDict:
            var d = PickleDict(ordered: true)
            if let first = args.first, let pairs = graph.sequence(first) {
                try charge(4 * pairs.count)  // a hashed insertion costs about four opcodes' work
                for p in pairs {
                    guard let kv = graph.sequence(p), kv.count == 2 else {
                        throw error(.badArguments(function: g.qualifiedName, reason: "items must be pairs"))
                    }
                    d.set(kv[0], kv[1])
                }
            }
            return graph.add(dict: d)
        case .set, .frozenset:
            let items = try args.first.map { try elements($0, of: g) } ?? []
            try charge(items.count)
            return graph.add(set: items)
        case .inertClass, .moduleClass, .unknown:
            return graph.add(object: InertObject(module: g.module, name: g.name, args: args))
        default:
            throw error(.wrongType(operation: operation, expected: "a class", got: g.qualifiedName), key: g.qualifiedName)
        }
    }

    private func elements(_ v: PickleValue, of g: PickleGlobal) throws -> [PickleValue] {
        switch v {
        case .list(let i): return graph.lists[i]
        case .tuple(let i): return graph.tuples[i]
        case .set(let i): return graph.sets[i]
        default: throw error(.badArguments(function: g.qualifiedName, reason: "expected a sequence, got \(v.kindName)"))
        }
    }

    func reduce(_ callable: PickleValue, args: [PickleValue]) throws -> PickleValue {
        guard let g = global(callable) else {
            throw error(.wrongType(operation: "REDUCE", expected: "an allowlisted global", got: callable.kindName))
        }
        func bad(_ reason: String) -> CheckpointError {
            error(.badArguments(function: g.qualifiedName, reason: reason), key: g.qualifiedName)
        }
        switch g.role {
        case .rebuildTensor, .rebuildTensorV2, .rebuildTensorV3:
            return try rebuildTensor(g, args: args)
        case .rebuildParameter, .rebuildParameterWithState:
            let expected = g.role == .rebuildParameter ? 3 : 4
            guard args.count == expected, case .tensor(let t) = args[0], case .bool(let rg) = args[1] else {
                throw bad("expected (tensor, requires_grad, hooks\(expected == 4 ? ", state" : ""))")
            }
            graph.tensors[t].isParameter = true
            graph.tensors[t].requiresGrad = rg
            return args[0]
        case .rebuildFromTypeV2:
            guard args.count == 4, let f = global(args[0]), let inner = graph.sequence(args[2]), case .tuple = args[2],
                  [.rebuildTensor, .rebuildTensorV2, .rebuildTensorV3, .rebuildParameter].contains(f.role) else {
                throw bad("expected (rebuild function, type, args tuple, state)")
            }
            return try reduce(args[0], args: inner)
        case .orderedDict, .inertClass, .moduleClass, .unknown:
            return try construct(callable, args: args, operation: "REDUCE")
        case .set, .frozenset:
            guard args.count <= 1 else { throw bad("takes at most one argument") }
            return try construct(callable, args: args, operation: "REDUCE")
        case .torchSize:
            guard args.count <= 1 else { throw bad("takes at most one argument") }
            let dims = try args.first.map { try elements($0, of: g) } ?? []
            try charge(dims.count)
            guard dims.allSatisfy({ if case .int = $0 { true } else { false } }) else { throw bad("dimensions must be integers") }
            return graph.add(tuple: dims)
        case .torchDevice:
            guard (1...2).contains(args.count), case .string(let type) = args[0] else { throw bad("expected (type[, index])") }
            if args.count == 2 {
                guard case .int(let index) = args[1] else { throw bad("device index must be an integer") }
                return .device("\(type):\(index)")
            }
            return .device(type)
        case .codecsEncode:
            guard (1...2).contains(args.count), case .string(let s) = args[0] else { throw bad("expected (str, encoding)") }
            let encoding: String
            if args.count == 2 {
                guard case .string(let e) = args[1] else { throw bad("encoding must be a string") }
                encoding = e.lowercased()
            } else { encoding = "utf-8" }
            // A memoised string encoded again and again makes new bytes each time: one unit per
            // byte made (the budget is 16 per byte of pickle), so a pickle cannot make many times
            // its own size this way. Real checkpoints encode numpy scalars: a few bytes.
            try charge(s.utf8.count)
            switch encoding {
            case "latin1", "latin-1", "iso-8859-1":
                var out: [UInt8] = []
                for u in s.unicodeScalars {
                    guard u.value <= 0xFF else { throw bad("character U+\(String(u.value, radix: 16)) is not Latin-1") }
                    out.append(UInt8(u.value))
                }
                return .bytes(out)
            case "utf-8", "utf8":
                return .bytes(Array(s.utf8))
            default:
                throw bad("unsupported encoding \(encoding.debugDescription)")
            }
        case .bytearray:
            guard args.count <= 1 else { throw bad("takes at most one argument") }
            guard let a = args.first else { return .bytes([]) }
            guard case .bytes(let b) = a else { throw bad("expected bytes") }
            return .bytes(b)
        case .slice:
            guard (1...3).contains(args.count) else { throw bad("takes 1 to 3 arguments") }
            return graph.add(tuple: args)
        case .reconstructor:
            guard args.count == 3 else { throw bad("expected (class, base, state)") }
            return try construct(args[0], args: [], operation: "copyreg._reconstructor")
        case .newObject:
            guard let cls = args.first else { throw bad("expected a class") }
            return try construct(cls, args: Array(args.dropFirst()), operation: "copyreg.__newobj__")
        case .passThrough:
            guard let first = args.first, args.count <= 2 else { throw bad("expected (value[, type])") }
            return first
        case .tensorType, .storageType, .dtype:
            throw error(.wrongType(operation: "REDUCE", expected: "a callable", got: g.qualifiedName), key: g.qualifiedName)
        }
    }

    /// BUILD: sets state on a dict (attributes such as `_metadata`) or an inert record.
    func build(_ target: PickleValue, state: PickleValue) throws {
        var attributes: [(String, PickleValue)] = []
        func collect(_ s: PickleValue) {
            if case .dict(let d) = s {
                for (k, v) in zip(graph.dicts[d].keys, graph.dicts[d].values) {
                    if case .string(let name) = k { attributes.append((name, v)) }
                }
            }
        }
        if let pair = graph.sequence(state), case .tuple = state, pair.count == 2 {
            collect(pair[0])
            collect(pair[1])
        } else {
            collect(state)
        }
        try charge(attributes.count)
        switch target {
        case .dict(let i):
            guard state == .none || !attributes.isEmpty || isEmptyDict(state) else {
                throw error(.wrongType(operation: "BUILD", expected: "a dict of attributes", got: state.kindName))
            }
            graph.dicts[i].attributes.append(contentsOf: attributes.map { (name: $0.0, value: $0.1) })
        case .object(let i):
            graph.objects[i].state = state
            graph.objects[i].attributes.append(contentsOf: attributes.map { (name: $0.0, value: $0.1) })
        default:
            throw error(.wrongType(operation: "BUILD", expected: "a dict or object", got: target.kindName))
        }
    }

    private func isEmptyDict(_ v: PickleValue) -> Bool {
        if case .dict(let d) = v { return graph.dicts[d].count == 0 }
        return false
    }

    func appendItems(_ items: [PickleValue], to target: PickleValue) throws {
        switch target {
        case .list(let i): graph.lists[i].append(contentsOf: items)
        case .object(let i): graph.objects[i].items.append(contentsOf: items)
        default: throw error(.wrongType(operation: "APPEND", expected: "a list", got: target.kindName))
        }
    }

    func setItems(_ items: [PickleValue], on target: PickleValue) throws {
        switch target {
        case .dict(let i):
            for j in stride(from: 0, to: items.count, by: 2) {
                // Hashing and comparing a key reads all of it: a key longer than any real name
                // (256 bytes) costs one unit per byte, so a long key set many times is charged
                // like the bytes it reads.
                switch items[j] {
                case .string(let k) where k.utf8.count > 256: try charge(k.utf8.count)
                case .bytes(let k) where k.count > 256: try charge(k.count)
                default: break
                }
                graph.dicts[i].set(items[j], items[j + 1])
            }
        case .object(let i):
            for j in stride(from: 0, to: items.count, by: 2) { graph.objects[i].entries.append((items[j], items[j + 1])) }
        default:
            throw error(.wrongType(operation: "SETITEM", expected: "a dict", got: target.kindName))
        }
    }

    // MARK: - Storages and tensors

    /// BINPERSID: `('storage', <storage class>, key, location, numel[, view])`.
    func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
        guard case .tuple = pid, let t = graph.sequence(pid), t.count == 5 || t.count == 6 else {
            throw error(.badPersistentID("expected a 5-tuple ('storage', class, key, location, numel), got \(graph.summary(pid))"))
        }
        guard case .string("storage") = t[0] else {
            throw error(.badPersistentID("type tag \(graph.summary(t[0])), expected 'storage'"))
        }
        guard let g = global(t[1]) else {
            throw error(.unknownStorageType(graph.summary(t[1])))
        }
        guard case .storageType(let dtype) = g.role else { throw error(.unknownStorageType(g.qualifiedName), key: g.qualifiedName) }
        guard case .string(let key) = t[2] else { throw error(.badPersistentID("storage key is \(t[2].kindName)")) }
        try checkStorageKey(key)
        let location: String
        switch t[3] {
        case .string(let s): location = s
        case .device(let s): location = s
        default: throw error(.badPersistentID("location is \(t[3].kindName)"), key: key)
        }
        guard case .int(let numel) = t[4], numel >= 0 else {
            throw error(.badPersistentID("storage size is \(graph.summary(t[4]))"), key: key)
        }
        guard numel <= Int.max / 16 else { throw error(.badShape("storage of \(numel) elements"), key: key) }
        let root = try register(StorageRef(key: key, dtype: dtype, numel: numel, location: location))
        if t.count == 6, t[5] != .none {
            guard let view = graph.sequence(t[5]), view.count == 3, case .string(let viewKey) = view[0],
                  case .int(let offset) = view[1], case .int(let size) = view[2], offset >= 0, size >= 0 else {
                throw error(.badPersistentID("view metadata \(graph.summary(t[5]))"), key: key)
            }
            try checkStorageKey(viewKey)
            guard offset <= numel, size <= numel - offset else {
                throw error(.tensorOutOfBounds(needed: (offset + size) * dtype.size, available: numel * dtype.size), key: viewKey)
            }
            var ref = StorageRef(key: key, dtype: dtype, numel: size, location: location)
            ref.viewOffset = offset
            ref.viewKey = viewKey
            return .storage(try register(ref))
        }
        return .storage(root)
    }

    private func checkStorageKey(_ key: String) throws {
        let ok = !key.isEmpty && key.count <= 256 && key.first != "."
            && key.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-" || $0 == "." }
        guard ok else { throw error(.unsafeStorageKey(key), key: key) }
    }

    private func register(_ ref: StorageRef) throws -> Int {
        let id = ref.viewKey ?? ref.key
        if let i = graph.storageIndex[id] {
            let old = graph.storages[i]
            guard old.dtype == ref.dtype, old.numel == ref.numel, old.viewOffset == ref.viewOffset else {
                throw error(.storageMismatch("storage '\(id)' referenced as \(old.dtype.rawValue)[\(old.numel)] and \(ref.dtype.rawValue)[\(ref.numel)]"), key: id)
            }
            return i
        }
        graph.storages.append(ref)
        graph.storageIndex[id] = graph.storages.count - 1
        return graph.storages.count - 1
    }

    /// `_rebuild_tensor(storage, offset, size, stride)`, `_v2(..., requires_grad, hooks[, metadata])`,
    /// `_v3(..., requires_grad, hooks, dtype[, metadata])`: checked against the storage's size.
    private func rebuildTensor(_ g: PickleGlobal, args: [PickleValue]) throws -> PickleValue {
        func bad(_ reason: String) -> CheckpointError {
            error(.badArguments(function: g.qualifiedName, reason: reason), key: g.qualifiedName)
        }
        let counts: ClosedRange<Int> = switch g.role {
        case .rebuildTensor: 4...4
        case .rebuildTensorV2: 6...7
        default: 7...8
        }
        guard counts.contains(args.count) else { throw bad("\(args.count) arguments, expected \(counts)") }
        guard case .storage(let s) = args[0] else { throw bad("storage argument is \(args[0].kindName)") }
        guard case .int(let offset) = args[1] else { throw bad("storage offset is \(args[1].kindName)") }
        guard let sizeValues = graph.sequence(args[2]), let strideValues = graph.sequence(args[3]) else {
            throw bad("size and stride must be tuples")
        }
        func ints(_ vs: [PickleValue], _ what: String) throws -> [Int] {
            try vs.map {
                guard case .int(let i) = $0 else { throw bad("\(what) holds \($0.kindName)") }
                return i
            }
        }
        let shape = try ints(sizeValues, "size")
        let strides = try ints(strideValues, "stride")
        var requiresGrad = false
        if args.count >= 5 {
            guard case .bool(let rg) = args[4] else { throw bad("requires_grad is \(args[4].kindName)") }
            requiresGrad = rg
        }
        let storage = graph.storages[s]
        var dtype = storage.dtype
        if g.role == .rebuildTensorV3 {
            guard case .dtype(let d) = args[6] else { throw bad("dtype is \(args[6].kindName)") }
            dtype = d
        }
        let numel = try TensorMeta.validate(shape: shape, strides: strides, offset: offset, dtype: dtype,
                                            storageBytes: storage.numel * storage.dtype.size,
                                            limits: options.limits)
            .mapError { error($0) }.get()
        var meta = TensorMeta(dtype: dtype, shape: shape, strides: strides, storageOffset: offset, storage: s, numel: numel)
        meta.requiresGrad = requiresGrad
        return graph.add(tensor: meta)
    }
}

extension TensorMeta {
    /// Checks a view against its storage with overflow-checked arithmetic; returns the element count.
    static func validate(shape: [Int], strides: [Int], offset: Int, dtype: DType, storageBytes: Int,
                         limits: ReaderLimits) -> Result<Int, CheckpointError.Kind> {
        guard shape.count == strides.count else {
            return .failure(.badShape("\(shape.count) sizes but \(strides.count) strides"))
        }
        guard shape.count <= 64 else { return .failure(.badShape("\(shape.count) dimensions")) }
        guard offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            return .failure(.badShape("negative size, stride or offset: size \(shape), stride \(strides), offset \(offset)"))
        }
        guard let numel = Shape.elementCount(shape) else { return .failure(.badShape("element count of \(shape) overflows")) }
        guard numel <= limits.maxElements else { return .failure(.limitExceeded(.elements, limit: limits.maxElements)) }
        guard numel > 0 else { return .success(0) }
        var last = offset
        for (d, st) in zip(shape, strides) {
            let (a, o1) = (d - 1).multipliedReportingOverflow(by: st)
            let (b, o2) = last.addingReportingOverflow(a)
            guard !o1, !o2 else { return .failure(.tensorOutOfBounds(needed: Int.max, available: storageBytes)) }
            last = b
        }
        let (elements, o3) = last.addingReportingOverflow(1)
        let (needed, o4) = elements.multipliedReportingOverflow(by: dtype.size)
        guard !o3, !o4 else { return .failure(.tensorOutOfBounds(needed: Int.max, available: storageBytes)) }
        guard needed <= storageBytes else { return .failure(.tensorOutOfBounds(needed: needed, available: storageBytes)) }
        return .success(numel)
    }
}
