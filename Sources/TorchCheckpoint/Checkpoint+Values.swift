import TorchportCore

// MARK: - Non-tensor values as JSON
//
// A training checkpoint keeps more than weights: the epoch, the training arguments
// (`argparse.Namespace`), hyper-parameters, class names. `convert` keeps them as JSON in the
// safetensors metadata. The walk is bounded by depth and output size, so a file cannot drive it
// deep or make it large; a value holding a tensor, or over the bounds, has no JSON form (nil).

extension PickleGraph {
    /// `value` as JSON text, or nil when it holds a tensor or storage, nests deeper than
    /// `maxDepth`, or its JSON would exceed `maxBytes`. Tuples, lists and sets are arrays; dicts
    /// objects (non-string keys written as their summary); an `argparse.Namespace` an object of
    /// its attributes; another inert object `{"__class__": "module.Name", attributes...}`; dtypes,
    /// devices and globals strings (`torch.float32`); bytes an array of numbers; a float that
    /// JSON cannot hold (NaN, infinity) a string.
    public func json(_ value: PickleValue, maxDepth: Int = 32, maxBytes: Int = 64 << 10) -> String? {
        var out = ""
        return append(value, to: &out, depth: 0, maxDepth: maxDepth, maxBytes: maxBytes) ? out : nil
    }

    /// Depth-bounded (``json(_:maxDepth:maxBytes:)``'s `maxDepth`), so the recursion is too.
    private func append(_ v: PickleValue, to out: inout String, depth: Int, maxDepth: Int, maxBytes: Int) -> Bool {
        guard depth <= maxDepth, out.utf8.count <= maxBytes else { return false }
        func array(_ items: [PickleValue]) -> Bool {
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                guard append(item, to: &out, depth: depth + 1, maxDepth: maxDepth, maxBytes: maxBytes) else { return false }
            }
            out += "]"
            return true
        }
        func object(_ pairs: [(String, PickleValue)], leading: [(String, String)] = []) -> Bool {
            out += "{"
            var first = true
            for (k, text) in leading {
                out += (first ? "" : ",") + Self.jsonLiteral(k) + ":" + text
                first = false
            }
            for (k, item) in pairs {
                out += (first ? "" : ",") + Self.jsonLiteral(k) + ":"
                first = false
                guard append(item, to: &out, depth: depth + 1, maxDepth: maxDepth, maxBytes: maxBytes) else { return false }
            }
            out += "}"
            return true
        }
        switch v {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .bigInt(let b): out += b.bytes.count <= 512 ? b.description : Self.jsonLiteral(b.description)
        case .float(let d): out += d.isFinite ? "\(d)" : Self.jsonLiteral("\(d)")
        case .string(let s): out += Self.jsonLiteral(s)
        case .bytes(let b):
            guard b.count <= maxBytes else { return false }
            out += "[" + b.map(String.init).joined(separator: ",") + "]"
        case .list(let i): return array(lists[i])
        case .tuple(let i): return array(tuples[i])
        case .set(let i): return array(sets[i])
        case .dict(let i):
            let d = dicts[i]
            return object(zip(d.keys, d.values).map { (k, v) in
                if case .string(let s) = k { return (s, v) }
                return (shallowSummary(k), v)
            })
        case .object(let i):
            let o = objects[i]
            let pairs = o.attributes.map { ($0.name, $0.value) }
            if o.qualifiedName == "argparse.Namespace" { return object(pairs) }
            return object(pairs, leading: [("__class__", Self.jsonLiteral(o.qualifiedName))])
        case .global(let i): out += Self.jsonLiteral(globals[i].qualifiedName)
        case .dtype(let d): out += Self.jsonLiteral("torch.\(d.rawValue)")
        case .device(let d): out += Self.jsonLiteral(d)
        case .tensor, .storage: return false
        }
        return out.utf8.count <= maxBytes
    }

    /// `s` as a JSON string literal (quotes, backslashes and control characters escaped).
    public static func jsonLiteral(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// True when `value` holds a tensor or a storage anywhere within `maxDepth` levels.
    public func holdsTensors(_ value: PickleValue, maxDepth: Int = 64) -> Bool {
        var work: [(PickleValue, Int)] = [(value, 0)]
        var seen = Set<DictKey>()
        while let (v, depth) = work.popLast() {
            let children: [PickleValue]
            switch v {
            case .tensor, .storage: return true
            case .list(let i): children = lists[i]
            case .tuple(let i): children = tuples[i]
            case .set(let i): children = sets[i]
            case .dict(let i): children = dicts[i].values
            case .object(let i): children = objects[i].attributes.map(\.value) + objects[i].items + objects[i].entries.map(\.value)
            default: continue
            }
            guard depth < maxDepth, seen.insert(DictKey(v)).inserted else { continue }
            work += children.map { ($0, depth + 1) }
        }
        return false
    }
}

// MARK: - Class names

extension Checkpoint {
    /// Keys under which training scripts commonly save a class list next to the state dict, in the
    /// order they are tried. A list (or tuple) of names, an `{index: name}` dict (`idx_to_class`) and a
    /// `{name: index}` dict (`class_to_idx`, as torchvision's `ImageFolder` builds it) are understood.
    public static let classNameKeys = ["classes", "class_names", "categories", "labels", "idx_to_class", "class_to_idx"]

    /// Dicts inside the checkpoint's root dict that are searched too (`{"meta": {"classes": ...}}`).
    public static let classNameContainers = ["meta", "metadata", "hparams", "hyper_parameters"]

    /// The class list stored in the root dict (or one level down, under ``classNameContainers``),
    /// with the key it was found under (`classes`, `hyper_parameters.class_names`); nil when there
    /// is none or it is malformed (not all strings, indices not exactly `0..<n`).
    public var storedClassNames: (names: [String], key: String)? {
        guard case .dict(let rootIndex) = root else { return nil }
        var dicts: [(PickleDict, String)] = [(graph.dicts[rootIndex], "")]
        for key in Self.classNameContainers {
            if case .dict(let i)? = graph.dicts[rootIndex][key] { dicts.append((graph.dicts[i], key + ".")) }
        }
        for (dict, prefix) in dicts {
            for key in Self.classNameKeys {
                if let value = dict[key], let names = Self.names(from: value, graph: graph) { return (names, prefix + key) }
            }
        }
        return nil
    }

    private static func names(from value: PickleValue, graph: PickleGraph) -> [String]? {
        if let items = graph.sequence(value) {
            var out: [String] = []
            for item in items {
                guard case .string(let s) = item else { return nil }
                out.append(s)
            }
            return out.isEmpty ? nil : out
        }
        guard case .dict(let d) = value else { return nil }
        let dict = graph.dicts[d]
        guard dict.count > 0 else { return nil }
        var slots = [String?](repeating: nil, count: dict.count)
        for (k, v) in zip(dict.keys, dict.values) {
            let index: Int, name: String
            switch (k, v) {
            case (.int(let i), .string(let s)): (index, name) = (i, s)    // idx_to_class
            case (.string(let s), .int(let i)): (index, name) = (i, s)    // class_to_idx
            default: return nil
            }
            guard slots.indices.contains(index), slots[index] == nil else { return nil }
            slots[index] = name
        }
        return slots.allSatisfy { $0 != nil } ? slots.compactMap { $0 } : nil
    }

    /// The root dict's entries by string key (nil when the root is not a dict).
    public var rootEntries: [(key: String, value: PickleValue)]? {
        guard case .dict(let d) = root else { return nil }
        let dict = graph.dicts[d]
        return zip(dict.keys, dict.values).map { (k, v) in
            if case .string(let s) = k { return (s, v) }
            return (graph.summary(k), v)
        }
    }
}
