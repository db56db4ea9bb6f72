#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TorchportCore

// MARK: - Key Mapping (any model)
//
// `NameMapping` finds a ResNet; this finds the state dict of any model: the tensors a
// `model.load_state_dict(sd, strict=True)` expects, under the names `model.state_dict()` gives.
// Wrappers (`state_dict`, `model`, ...) are unwrapped and wrapper prefixes (`module.`,
// `_orig_mod.`) stripped only where nothing else sits beside them, and every decision is
// recorded. Nothing is renamed or dropped inside the model (BatchNorm's `num_batches_tracked`
// stays: strict loading needs it).

/// The state dict of any model inside a checkpoint's tensors, and how it was found.
public struct StateDictSelection: Sendable {
    /// The path of the state dict inside the checkpoint (`""`, `model.`, `state_dict.model.`).
    public let root: String
    /// State-dict name -> tensor, in checkpoint order (after `--include` / `--exclude`).
    public let stateDict: [(name: String, tensor: TensorRecord)]
    /// The decisions, in the order they were taken.
    public let decisions: [MappingDecision]
    /// Tensors outside the state dict, counted by their top-level key (`optimizer`: 24).
    public let outside: [String: Int]

    /// Wrapper keys: a key whose value is the state dict, unwrapped when every other key beside
    /// it is training state (``trainingStateKeys``) or it stands alone.
    static let wrapperKeys = ["state_dict", "model_state_dict", "model", "net", "network", "module", "_orig_mod"]

    /// Keys of a training checkpoint that hold training state rather than the model: their tensors
    /// are dropped (and listed); their other values are kept as metadata by the converter.
    public static let trainingStateKeys: [String: String] = [
        "optimizer": "optimizer state", "optimizer_state_dict": "optimizer state",
        "optimizer_states": "optimizer state (Lightning)", "optim": "optimizer state",
        "lr_scheduler": "learning-rate scheduler", "lr_schedulers": "learning-rate schedulers (Lightning)",
        "scheduler": "learning-rate scheduler", "scaler": "AMP gradient scaler", "grad_scaler": "AMP gradient scaler",
        "amp": "AMP state", "model_ema": "EMA copy of the weights", "ema": "EMA copy of the weights",
        "ema_state_dict": "EMA copy of the weights", "callbacks": "Lightning callbacks", "loops": "Lightning loops",
    ]

    /// Finds the state dict in `tensors`. With `root` (e.g. the ResNet's root `NameMapping`
    /// found), that path is the state dict; otherwise wrappers are unwrapped as described above.
    /// `include` / `exclude` are glob patterns (``NamePattern``) on the state-dict names: with
    /// `include`, only matching tensors are kept; `exclude` then drops matching ones.
    public static func select(_ tensors: [NamedTensor], root given: String? = nil,
                              include: [NamePattern] = [], exclude: [NamePattern] = []) -> StateDictSelection {
        var decisions: [MappingDecision] = []
        var root = ""
        if let given {
            root = given
            if given.isEmpty { decisions.append(.stateDictAtRoot) }
            for part in given.split(separator: ".").map(String.init) {
                decisions.append(part == "module" || part == "_orig_mod"
                    ? .strippedPrefix(part + ".", reason: NameMapping.wrappers[part] ?? "wrapper")
                    : .unwrapped(part, reason: NameMapping.wrappers[part] ?? "wrapper"))
            }
        } else {
            // One level at a time: the heads (first name part) of the tensors under `root`.
            while true {
                var heads: [String] = []
                var seen = Set<String>()
                for t in tensors where t.name.hasPrefix(root) {
                    let rest = t.name.dropFirst(root.count)
                    guard let dot = rest.firstIndex(of: ".") else { heads.append(""); continue }
                    let head = String(rest[..<dot])
                    if seen.insert(head).inserted { heads.append(head) }
                }
                // A wrapper stands alone, or beside training state only (and never at the leaf level).
                guard !heads.contains(""),
                      let wrapper = wrapperKeys.first(where: { w in
                          heads.contains(w) && heads.allSatisfy { $0 == w || (root.isEmpty && trainingStateKeys[$0] != nil) }
                      }) else { break }
                root += wrapper + "."
                decisions.append(wrapper == "module" || wrapper == "_orig_mod"
                    ? .strippedPrefix(wrapper + ".", reason: NameMapping.wrappers[wrapper] ?? "wrapper")
                    : .unwrapped(wrapper, reason: wrapper == "model" && root != "model." ? "LightningModule attribute holding the network"
                                 : NameMapping.wrappers[wrapper] ?? "wrapper"))
            }
            if root.isEmpty { decisions.append(.stateDictAtRoot) }
        }

        var stateDict: [(String, TensorRecord)] = []
        var outside: [String: Int] = [:]
        var filtered = 0
        for t in tensors {
            guard t.name.hasPrefix(root) else {
                let head = t.name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? t.name
                outside[head, default: 0] += 1
                continue
            }
            let name = String(t.name.dropFirst(root.count))
            if !include.isEmpty, !include.contains(where: { $0.matches(name) }) { filtered += 1; continue }
            if exclude.contains(where: { $0.matches(name) }) { filtered += 1; continue }
            stateDict.append((name, t.tensor))
        }
        for (head, count) in outside.sorted(by: { $0.key < $1.key }) {
            decisions.append(.droppedOutside(head, tensors: count, reason: trainingStateKeys[head] ?? "not part of the model"))
        }
        if !include.isEmpty || !exclude.isEmpty {
            decisions.append(.filtered(include: include.map(\.pattern), exclude: exclude.map(\.pattern),
                                       kept: stateDict.count, dropped: filtered))
        }
        return StateDictSelection(root: root, stateDict: stateDict, decisions: decisions, outside: outside)
    }

    /// The parameter count people quote: every element of the floating-point tensors except
    /// BatchNorm running statistics (`running_mean`, `running_var`).
    public var parameterCount: Int { Self.parameterCount(stateDict.map { ($0.name, $0.tensor.dtype, $0.tensor.numel) }) }

    /// ``parameterCount`` of (name, dtype, element count) triples.
    public static func parameterCount(_ tensors: [(name: String, dtype: DType, numel: Int)]) -> Int {
        var n = 0
        for t in tensors where t.dtype.isFloatingPoint {
            if t.name.hasSuffix("running_mean") || t.name.hasSuffix("running_var") { continue }
            n += t.numel
        }
        return n
    }

    /// `11.7M parameters`, `2.5B parameters`, `79.7K parameters`, `812 parameters`.
    public static func describeParameters(_ n: Int) -> String {
        let (value, unit): (Double, String) =
            n >= 1_000_000_000 ? (Double(n) / 1e9, "B") : n >= 1_000_000 ? (Double(n) / 1e6, "M")
            : n >= 1_000 ? (Double(n) / 1e3, "K") : (Double(n), "")
        let number = unit.isEmpty ? String(n) : String(format: "%.1f", value)
        return "\(number)\(unit) parameters"
    }
}

/// A shell-style name pattern (`layer4.*`, `*.num_batches_tracked`, `fc.?ias`, `[a-c]*`), matched
/// against a whole dotted name with POSIX `fnmatch` (no special meaning for `.`; `*` crosses dots).
public struct NamePattern: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The pattern as given.
    public let pattern: String

    /// A pattern; any string is one (an unmatched `[` matches itself).
    public init(_ pattern: String) { self.pattern = pattern }

    /// Whether `name` matches the whole pattern.
    public func matches(_ name: String) -> Bool { fnmatch(pattern, name, 0) == 0 }

    /// The pattern.
    public var description: String { pattern }
}
