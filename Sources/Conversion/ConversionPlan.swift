import Foundation
import StateDict
import TorchCheckpoint
import TorchportCore

/// What a conversion will write, decided before anything is written: the state dict of any model
/// (`StateDictSelection`), whether it is a ResNet (then its architecture, for `torchport.arch` and
/// `--golden`), the training checkpoint's other values kept as JSON, and Torchport's metadata.
/// `torchport inspect` shows the same plan.
public struct ConversionPlan: Sendable {
    /// State-dict name -> tensor, in checkpoint order: exactly what `model.state_dict()` gives.
    public var stateDict: [(name: String, tensor: TensorRecord)]
    /// Every decision: where the state dict was found, what was dropped, what was kept.
    public var decisions: [MappingDecision]
    /// The ResNet the state dict binds to; nil for any other model.
    public var architecture: ResNetArchitecture?
    /// Non-tensor values kept, by top-level key, as JSON (written as `torchport.checkpoint.<key>`).
    public var keptValues: [(key: String, json: String)]
    /// The class names stored beside the weights, if any (written as `torchport.classes`).
    public var classes: [String]?
    /// `StateDictSelection.parameterCount` of the state dict.
    public var parameters: Int

    /// The metadata prefix of Torchport's own keys (`torchport.arch`, `torchport.source_sha256`, ...).
    public static let metadataPrefix = "torchport."

    /// Plans the conversion of `tensors` (read from a checkpoint, whose non-tensor values are then
    /// looked at too). A forced `architecture` must bind (its errors pass through); otherwise the
    /// state dict is a ResNet when `NameMapping` finds one that binds, and any model else.
    public static func make(tensors: [NamedTensor], checkpoint: Checkpoint? = nil,
                            architecture forced: ResNetArchitecture? = nil,
                            include: [NamePattern] = [], exclude: [NamePattern] = [],
                            file: String? = nil) throws -> ConversionPlan {
        var architecture: ResNetArchitecture?
        var resnetRoot: String?
        var extra: [MappingDecision] = []
        if let forced {
            let mapping: NameMapping
            do { mapping = try NameMapping.map(tensors) } catch { throw error.with(file: file) }
            do { architecture = try mapping.checkBinding(architecture: forced) } catch { throw error.with(file: file) }
            resnetRoot = mapping.root
            extra = mapping.decisions.filter { if case .ignoredSecondNetwork = $0 { true } else { false } }
        } else if let mapping = try? NameMapping.map(tensors), let arch = try? mapping.checkBinding() {
            architecture = arch
            resnetRoot = mapping.root
            extra = mapping.decisions.filter { if case .ignoredSecondNetwork = $0 { true } else { false } }
        }
        if architecture != nil, let mapping = try? NameMapping.map(tensors) {
            // A ResNet's weights are floating point (the binding check reads them as such).
            for (name, t) in mapping.stateDict where !t.dtype.isFloatingPoint {
                throw ConversionError(.unsupportedTensor(name: name, dtype: t.dtype), file: file ?? "")
            }
        }
        let selection = StateDictSelection.select(tensors, root: resnetRoot, include: include, exclude: exclude)
        // A second network beside a ResNet is dropped; its own decision says so instead of a generic one.
        let secondRoots = Set(extra.compactMap { d -> String? in
            if case .ignoredSecondNetwork(let root, _) = d { return root.split(separator: ".").first.map(String.init) }
            return nil
        })
        var decisions = selection.decisions.filter { d in
            if case .droppedOutside(let head, _, _) = d { return !secondRoots.contains(head) }
            return true
        }
        decisions += extra

        // The checkpoint's other top-level values: kept as JSON, or dropped and listed.
        var kept: [(String, String)] = []
        var classes: [String]?
        if let checkpoint, let entries = checkpoint.rootEntries {
            var droppedValues: [MappingDecision] = []
            // Keys of the state dict itself (a bare state dict's `conv1.weight`, `module.fc.bias`,
            // or the wrapper `model` holding it) are not values beside it.
            let root = selection.root
            for (key, value) in entries where !(key + ".").hasPrefix(root) && !root.hasPrefix(key + ".") {
                if checkpoint.graph.holdsTensors(value) {
                    // Its tensors were dropped (listed above) unless they are a second network's.
                    let head = key.split(separator: ".", maxSplits: 1).first.map(String.init) ?? key
                    if selection.outside[head] == nil && !secondRoots.contains(head) {
                        droppedValues.append(.droppedValue(key, reason: "holds tensors outside the state dict"))
                    }
                    continue
                }
                if let json = checkpoint.graph.json(value) {
                    kept.append((key, json))
                } else {
                    droppedValues.append(.droppedValue(key, reason: "no JSON form within 32 levels and 64 KiB"))
                }
            }
            if !kept.isEmpty { decisions.append(.keptValues(kept.map(\.0))) }
            decisions += droppedValues
            classes = checkpoint.storedClassNames?.names
        }
        return ConversionPlan(stateDict: selection.stateDict, decisions: decisions, architecture: architecture,
                              keptValues: kept, classes: classes, parameters: selection.parameterCount)
    }

    /// Torchport's metadata for this plan (without the source's hash, which the caller adds):
    /// `format` = `pt` (the safetensors convention Hugging Face requires) and Torchport's keys
    /// under ``metadataPrefix`` (docs/safetensors.md).
    public func metadata(sourceFormat: String, dtype: String) -> [String: String] {
        let p = Self.metadataPrefix
        var m: [String: String] = [
            "format": "pt",
            p + "source_format": sourceFormat,
            p + "dtype": dtype,
            p + "converter_version": torchportVersion,
            p + "mapping": decisions.map(\.description).joined(separator: "; "),
            p + "parameters": String(parameters),
        ]
        if let architecture {
            m[p + "arch"] = architecture.description
            m[p + "num_classes"] = architecture.numClasses.map(String.init) ?? "none"
        }
        if let classes {
            m[p + "classes"] = "[" + classes.map(PickleGraph.jsonLiteral).joined(separator: ",") + "]"
        }
        for (key, json) in keptValues { m[p + "checkpoint." + key] = json }
        return m
    }
}
