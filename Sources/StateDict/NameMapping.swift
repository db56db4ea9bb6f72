import Foundation
import TorchportCore

// MARK: - Key Mapping
//
// A pure stage between the reader and the model: from every tensor of a checkpoint (full dotted
// paths) to a state dict under canonical torchvision names, with each decision recorded so
// `torchport inspect` can show it. Nothing here looks at values.

/// What the mapping stage did to reach canonical torchvision names.
public struct NameMapping: Sendable {
    /// What kind of model the checkpoint holds.
    public enum Kind: String, Sendable, Codable {
        /// A full classifier (or a headless state dict without `fc`).
        case resnet
        /// The `backbone.body.` of a torchvision detection model (FrozenBatchNorm2d): headless.
        case detectionBackbone = "detection-backbone"
    }

    /// The path of the model inside the checkpoint (`""`, `model.`, `model.module.`, `backbone.body.`).
    public let root: String
    /// What kind of model the checkpoint holds.
    public let kind: Kind
    /// Canonical name -> tensor, in checkpoint order.
    public let stateDict: [(name: String, tensor: TensorRecord)]
    /// The decisions, in the order they were taken (the caller's rules first).
    public let decisions: [MappingDecision]

    /// Canonical name -> shape (the first tensor wins on duplicate names).
    public var shapes: [String: [Int]] {
        Dictionary(stateDict.map { ($0.name, $0.tensor.shape) }, uniquingKeysWith: { a, _ in a })
    }

    /// Canonical name -> tensor (the first tensor wins on duplicate names).
    public var tensors: [String: TensorRecord] {
        Dictionary(stateDict.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
    }

    /// Wrapper keys that hold a state dict in training checkpoints, and what they mean.
    static let wrappers: [String: String] = [
        "model": "training checkpoint (torchvision reference scripts)",
        "state_dict": "wrapped state dict",
        "model_state_dict": "wrapped state dict",
        "module": "DataParallel / DistributedDataParallel",
        "_orig_mod": "torch.compile",
        "net": "wrapped state dict", "network": "wrapped state dict", "ema": "EMA weights", "model_ema": "EMA weights",
        "backbone": "detection model", "body": "detection backbone (IntermediateLayerGetter)",
    ]

    /// Finds the ResNet inside `tensors` and maps it to canonical names, after applying the
    /// caller's `rules`, then `sanitize`, to every name (both recorded among the decisions).
    public static func map(_ tensors: [NamedTensor], rules: [MappingRule] = [],
                           sanitize: MappingSanitizer? = nil) throws(BindingError) -> NameMapping {
        let (tensors, callerDecisions) = applyCallerRules(tensors, rules: rules, sanitize: sanitize)
        // A ResNet's stem: `<root>conv1.weight`, 4-D, three input channels.
        var counts: [String: Int] = [:]
        var order: [String] = []
        for t in tensors where t.name.hasSuffix("conv1.weight") && t.tensor.shape.count == 4 && t.tensor.shape[1] == 3 {
            let root = String(t.name.dropLast("conv1.weight".count))
            guard root.isEmpty || root.hasSuffix("."), !root.contains("layer") else { continue }
            if counts[root] == nil { order.append(root) }
            counts[root] = 0
        }
        guard !order.isEmpty else {
            throw BindingError(.noResNet(found: Array(tensors.prefix(8).map(\.name)), total: tensors.count))
        }
        // Tensors under each candidate root, in one walk per name over a trie of the roots'
        // dotted parts (not every root against every tensor: a file of 200,000 stems made that
        // quadratic).
        let trie = RootTrie(order)
        for t in tensors {
            for r in trie.roots(prefixing: t.name) { counts[r, default: 0] += 1 }
        }
        // The root with the most tensors; on a tie, the first in the file (e.g. `model` before `model_ema`).
        var root = order[0]
        for r in order.dropFirst() where (counts[r] ?? 0) > (counts[root] ?? 0) { root = r }

        var decisions = callerDecisions
        let parts = root.split(separator: ".").map(String.init)
        if parts.isEmpty {
            decisions.append(.stateDictAtRoot)
        }
        for part in parts {
            switch part {
            case "module", "_orig_mod": decisions.append(.strippedPrefix(part + ".", reason: wrappers[part] ?? "wrapper"))
            default: decisions.append(.unwrapped(part, reason: wrappers[part] ?? "wrapper"))
            }
        }
        let kind: Kind = root.hasSuffix("backbone.body.") ? .detectionBackbone : .resnet
        for other in order where other != root {
            decisions.append(.ignoredSecondNetwork(root: other, tensors: counts[other] ?? 0))
        }

        var stateDict: [(String, TensorRecord)] = []
        var dropped = 0
        var outside: [String: Int] = [:]
        for t in tensors {
            guard t.name.hasPrefix(root) else {
                // Group by the first component, or the first two when it is shared with the root.
                let comps = t.name.split(separator: ".").map(String.init)
                let head = comps.count > 1 && comps[0] == parts.first ? "\(comps[0]).\(comps[1])" : (comps.first ?? t.name)
                outside[head, default: 0] += 1
                continue
            }
            let name = String(t.name.dropFirst(root.count))
            if name.hasSuffix("num_batches_tracked") {
                dropped += 1
                continue
            }
            stateDict.append((name, t.tensor))
        }
        if dropped > 0 { decisions.append(.droppedTrainingCounters(dropped)) }
        if !outside.isEmpty { decisions.append(.ignoredOutside(outside)) }
        return NameMapping(root: root, kind: kind, stateDict: stateDict, decisions: decisions)
    }
}

/// A state dict that does not fit the model: *all* missing, unexpected and mismatched keys at once,
/// in the file they came from.
public struct BindingError: TorchportError, Equatable {
    /// What does not fit.
    public indirect enum Kind: Sendable, Equatable {
        /// No tensor looks like a ResNet stem (`<prefix>conv1.weight`, shape `[C, 3, k, k]`); `found` lists
        /// the first tensor names, `total` counts them all.
        case noResNet(found: [String], total: Int)
        /// The tensors do not describe a recognisable ResNet structure (the reason is in the string).
        case unrecognisedArchitecture(String)
        /// Keys missing, unexpected or with the wrong shape, with closest-name hints (key -> nearest other key).
        case mismatch(missing: [String], unexpected: [String], shapes: [ShapeMismatch], hints: [String: String])
        /// A weight whose dtype cannot be converted to float32.
        case unsupportedDType(name: String, dtype: DType)
        /// An inference engine was asked for that this CPU (or this build) cannot run (the reason
        /// is in the string).
        case engineUnavailable(String)
        /// A forced architecture (`--arch`) does not fit the state dict: what the shapes look like
        /// instead (nil when they describe no known ResNet), and the full mismatch.
        case forcedArchitecture(forced: ResNetArchitecture, recognised: ResNetArchitecture?, details: Kind)
    }

    /// A key whose tensor has another shape than the model's parameter.
    public struct ShapeMismatch: Sendable, Equatable {
        /// The parameter's torchvision name.
        public let name: String
        /// The model's shape.
        public let expected: [Int]
        /// The file's shape.
        public let actual: [Int]
        /// A mismatch of `name`.
        public init(name: String, expected: [Int], actual: [Int]) {
            self.name = name
            self.expected = expected
            self.actual = actual
        }
    }

    /// What does not fit.
    public let kind: Kind
    /// The file the state dict came from, when known.
    public var location: ErrorLocation

    /// An error of `kind`, about `file` when known.
    public init(_ kind: Kind, file: String? = nil) {
        self.kind = kind
        location = ErrorLocation(file: file)
    }

    /// This error, about `file` (unless it already names one).
    public func with(file: String?) -> BindingError {
        var e = self
        if e.location.file == nil { e.location.file = file }
        return e
    }

    /// The problems, at most ``listedKeys`` keys of each kind (no location: see ``description``).
    public var reason: String { Self.describe(kind, limit: Self.listedKeys) }

    /// Keys listed per kind of problem in ``description``; ``fullDescription`` lists them all.
    public static let listedKeys = 8

    /// The problems, one per line for a mismatch, at most ``listedKeys`` keys of each kind, then
    /// the file.
    public var description: String { withLocation(reason) }

    /// Every key of a mismatch, however many, then the file.
    public var fullDescription: String { withLocation(Self.describe(kind, limit: nil)) }

    private func withLocation(_ text: String) -> String {
        guard let file = location.file else { return text }
        return "\(file): \(text)"
    }

    private static func describe(_ kind: Kind, limit: Int?) -> String {
        switch kind {
        case .forcedArchitecture(let forced, let recognised, let details):
            var counts = ""
            if case .mismatch(let missing, let unexpected, let shapes, _) = details {
                counts = ": \(missing.count) missing, \(unexpected.count) unexpected, \(shapes.count) with the wrong shape"
            }
            let hint: String
            if let recognised, let name = recognised.torchvisionName {
                hint = "; the state dict looks like \(name): drop --arch, or use --arch \(name)"
            } else if let recognised {
                hint = "; the state dict looks like \(recognised): drop --arch, and it is recognised from the shapes"
            } else {
                hint = "; the state dict describes no ResNet this tool recognises"
            }
            return "the state dict does not match --arch \(forced.torchvisionName ?? forced.description)\(counts)\(hint)"
                + (limit == nil ? "\n" + describe(details, limit: nil) : "")
        case .noResNet(let found, let total):
            let golden = found.contains("input") && (found.contains("logits") || found.contains("features"))
            return "no ResNet found: no tensor '<prefix>conv1.weight' of shape [C, 3, k, k] among \(total) tensors (first: \(found.joined(separator: ", ")))"
                + (golden ? "; it looks like a golden file (input, logits): the model and the golden swapped?" : "")
        case .unrecognisedArchitecture(let s):
            return "cannot recognise the architecture: \(s)"
        case .mismatch(let missing, let unexpected, let shapes, let hints):
            var lines = ["the state dict does not match the model: \(missing.count) missing, \(unexpected.count) unexpected, \(shapes.count) with the wrong shape"]
            func list<T>(_ items: [T], _ line: (T) -> String) {
                for item in items.prefix(limit ?? items.count) { lines.append(line(item)) }
                if let limit, items.count > limit { lines.append("  ... and \(items.count - limit) more (--verbose lists them all)") }
            }
            list(missing) { m in "  missing:    \(m)" + (hints[m].map { "  (closest present: \($0))" } ?? "") }
            list(unexpected) { u in "  unexpected: \(u)" + (hints[u].map { "  (closest expected: \($0))" } ?? "") }
            list(shapes) { s in "  shape:      \(s.name) is \(s.actual), expected \(s.expected)" }
            return lines.joined(separator: "\n")
        case .unsupportedDType(let name, let dtype):
            return "tensor \(name) has dtype \(dtype.rawValue); weights must be float32, float16, bfloat16 or float64"
        case .engineUnavailable(let s):
            return "engine unavailable: \(s)"
        }
    }
}

/// Candidate roots (`""` or dotted prefixes ending in `.`) as a trie of their parts, so that the
/// roots a name starts with are found in one pass over the name.
struct RootTrie {
    private var children: [[Substring: Int]] = [[:]]
    private var rootAt: [String?] = [nil]

    init(_ roots: [String]) {
        for root in roots {
            var node = 0
            for part in root.split(separator: ".", omittingEmptySubsequences: false).dropLast() {
                if let next = children[node][part] {
                    node = next
                } else {
                    children.append([:])
                    rootAt.append(nil)
                    children[node][part] = children.count - 1
                    node = children.count - 1
                }
            }
            rootAt[node] = root
        }
    }

    /// The roots `name` starts with, shortest first.
    func roots(prefixing name: String) -> [String] {
        var found: [String] = rootAt[0].map { [$0] } ?? []
        var node = 0
        var parts = name.split(separator: ".", omittingEmptySubsequences: false)[...]
        _ = parts.popLast()  // the last part is the tensor's own name, never a root
        for part in parts {
            guard let next = children[node][part] else { break }
            node = next
            if let r = rootAt[node] { found.append(r) }
        }
        return found
    }
}

/// Levenshtein distance, for "closest name" hints.
package func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    var cur = prev
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[b.count]
}
