import TorchportCore

/// One decision of the mapping stage, in the order it was taken: a typed value (match it by case)
/// with a sentence for reports (``description``).
public enum MappingDecision: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The state dict is at the top of the file (no wrapper, no prefix).
    case stateDictAtRoot
    /// A wrapper prefix was stripped (`module.` of DataParallel, `_orig_mod.` of torch.compile).
    case strippedPrefix(String, reason: String)
    /// A wrapper key was unwrapped (`model`, `state_dict`, `ema`, ...).
    case unwrapped(String, reason: String)
    /// A second network (another stem) was found under `root` and left out.
    case ignoredSecondNetwork(root: String, tensors: Int)
    /// BatchNorm training counters (`num_batches_tracked`), unused in eval, were dropped.
    case droppedTrainingCounters(Int)
    /// Tensors outside the model, counted by their leading name parts, were left out.
    case ignoredOutside([String: Int])
    /// A caller's rule (``MappingRule``) changed `renamed` names and dropped none.
    case appliedRule(MappingRule, renamed: Int)
    /// A caller's `sanitize` closure renamed `renamed` names and dropped `dropped`.
    case sanitized(renamed: Int, dropped: Int)
    /// The tensors under a top-level key outside the state dict (`optimizer`: training state, or
    /// anything else beside the model) were left out.
    case droppedOutside(String, tensors: Int, reason: String)
    /// `--include` / `--exclude` patterns kept `kept` tensors and left out `dropped`.
    case filtered(include: [String], exclude: [String], kept: Int, dropped: Int)
    /// Non-tensor values of the checkpoint (epoch, args, classes, ...) kept as JSON metadata.
    case keptValues([String])
    /// A non-tensor value of the checkpoint that was not kept, and why.
    case droppedValue(String, reason: String)

    /// The decision as one sentence.
    public var description: String {
        switch self {
        case .stateDictAtRoot: "state dict at the root of the file"
        case .strippedPrefix(let p, let why): "stripped prefix '\(p)' (\(why))"
        case .unwrapped(let key, let why): "unwrapped '\(key)' (\(why))"
        case .ignoredSecondNetwork(let root, let n): "ignored a second network at '\(root)' (\(n) tensors)"
        case .droppedTrainingCounters(let n):
            "dropped \(n) num_batches_tracked buffers (BatchNorm training counters, unused in eval)"
        case .ignoredOutside(let groups):
            "ignored \(groups.values.reduce(0, +)) tensors outside the model: "
                + groups.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
        case .appliedRule(let rule, let n): "rule \(rule): \(n) names changed"
        case .sanitized(let renamed, let dropped): "sanitize: \(renamed) names changed, \(dropped) dropped"
        case .droppedOutside(let key, let n, let why): "dropped '\(key)' (\(why): \(n) tensor\(n == 1 ? "" : "s"))"
        case .filtered(let include, let exclude, let kept, let dropped):
            "selected by " + (include.isEmpty ? "" : "--include \(include.joined(separator: ", "))")
                + (include.isEmpty || exclude.isEmpty ? "" : " and ")
                + (exclude.isEmpty ? "" : "--exclude \(exclude.joined(separator: ", "))")
                + ": \(kept) kept, \(dropped) left out"
        case .keptValues(let keys): "kept \(keys.joined(separator: ", ")) as JSON metadata (torchport.checkpoint.<key>)"
        case .droppedValue(let key, let why): "dropped '\(key)' (\(why))"
        }
    }
}

/// A caller's rule for names the built-in mapping does not know, applied to every tensor name in
/// order, before the built-in mapping and strict binding, and recorded among the decisions.
///
/// ```swift
/// let model = try ResNetModel(contentsOf: url, rules: [.stripPrefix("encoder."), .replace("bn_", with: "bn")])
/// ```
public enum MappingRule: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Removes `prefix` from the names that start with it.
    case stripPrefix(String)
    /// Replaces every occurrence of `text` in a name with `replacement`.
    case replace(String, with: String)

    /// `name` after this rule, or nil when the rule leaves it as it is.
    public func apply(to name: String) -> String? {
        switch self {
        case .stripPrefix(let p):
            return !p.isEmpty && name.hasPrefix(p) ? String(name.dropFirst(p.count)) : nil
        case .replace(let text, let replacement):
            guard !text.isEmpty, name.contains(text) else { return nil }
            return name.replacingOccurrences(of: text, with: replacement)
        }
    }

    /// `strip prefix 'encoder.'`, `replace 'bn_' with 'bn'`.
    public var description: String {
        switch self {
        case .stripPrefix(let p): "strip prefix '\(p)'"
        case .replace(let t, let r): "replace '\(t)' with '\(r)'"
        }
    }
}

/// A caller's closure over tensor names, in the style of mlx-swift's `sanitize(weights:)`: returns
/// the name to bind under, or nil to leave the tensor out. Applied after the ``MappingRule``s.
public typealias MappingSanitizer = @Sendable (String) -> String?

extension NameMapping {
    /// `tensors` renamed by `rules` then `sanitize`, and the decisions that record it.
    static func applyCallerRules(_ tensors: [NamedTensor], rules: [MappingRule],
                                 sanitize: MappingSanitizer?) -> ([NamedTensor], [MappingDecision]) {
        var tensors = tensors
        var decisions: [MappingDecision] = []
        for rule in rules {
            var renamed = 0
            tensors = tensors.map { t in
                guard let name = rule.apply(to: t.name) else { return t }
                renamed += 1
                return NamedTensor(name: name, tensor: t.tensor)
            }
            decisions.append(.appliedRule(rule, renamed: renamed))
        }
        if let sanitize {
            var renamed = 0, dropped = 0
            tensors = tensors.compactMap { t in
                guard let name = sanitize(t.name) else { dropped += 1; return nil }
                if name != t.name { renamed += 1 }
                return NamedTensor(name: name, tensor: t.tensor)
            }
            decisions.append(.sanitized(renamed: renamed, dropped: dropped))
        }
        return (tensors, decisions)
    }
}
