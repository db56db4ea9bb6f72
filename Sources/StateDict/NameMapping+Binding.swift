import TorchportCore

// MARK: - Checking a state dict against an architecture (shapes only, no values)

extension NameMapping {
    /// Recognises the architecture (or takes `forced`, with its head size read from `fc.weight`)
    /// and checks the state dict against it without reading any value: one ``BindingError``
    /// lists every missing, unexpected and mis-shaped key.
    public func checkBinding(architecture forced: ResNetArchitecture? = nil) throws(BindingError) -> ResNetArchitecture {
        guard var arch = forced ?? ResNetArchitecture.recognise(shapes) else {
            throw BindingError(.unrecognisedArchitecture("need conv1.weight and layer1...layer4 blocks"))
        }
        if forced != nil { arch.numClasses = shapes["fc.weight"].flatMap { $0.count == 2 ? $0[0] : nil } }
        do {
            try check(against: arch)
        } catch where forced != nil {
            throw BindingError(.forcedArchitecture(forced: arch, recognised: ResNetArchitecture.recognise(shapes), details: error.kind))
        }
        return arch
    }

    /// Character pairs the closest-name hints may compare in all (a fraction of a second in a
    /// release build).
    static let hintBudget = 20_000_000

    /// Compares the state dict with what `architecture` expects; throws one error listing everything.
    func check(against architecture: ResNetArchitecture) throws(BindingError) {
        let expected = architecture.expectedShapes
        let expectedNames = Set(expected.map(\.name))
        let present = shapes
        var missing: [String] = [], mismatched: [(String, [Int], [Int])] = []
        for (name, shape) in expected {
            guard let actual = present[name] else { missing.append(name); continue }
            if actual != shape { mismatched.append((name, shape, actual)) }
        }
        let unexpected = stateDict.map(\.name).filter { !expectedNames.contains($0) }
        guard missing.isEmpty && unexpected.isEmpty && mismatched.isEmpty else {
            // Closest-name hints cost an edit distance per pair of names: a budget of character
            // pairs bounds them (a file of many long unexpected names gets hints for the first).
            var budget = Self.hintBudget
            func closest(to name: String, among candidates: [String]) -> String? {
                var best: (name: String, distance: Int)?
                for c in candidates {
                    let cost = name.utf8.count * c.utf8.count
                    guard cost <= budget else { return nil }  // a closest among some is no hint
                    budget -= cost
                    let d = editDistance(c, name)
                    if best == nil || d < best!.distance { best = (c, d) }
                }
                return best?.name
            }
            var hints: [String: String] = [:]
            for m in missing {
                if let best = closest(to: m, among: unexpected) { hints[m] = best }
            }
            let expectedList = expected.map(\.name)
            for u in unexpected {
                if let best = closest(to: u, among: missing.isEmpty ? expectedList : missing) { hints[u] = best }
            }
            throw BindingError(.mismatch(missing: missing, unexpected: unexpected,
                                         shapes: mismatched.map { .init(name: $0.0, expected: $0.1, actual: $0.2) }, hints: hints))
        }
    }
}
