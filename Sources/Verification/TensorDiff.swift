import TorchportCore

/// A tensor-by-tensor comparison of two state dicts (any two checkpoints or safetensors files,
/// after their names are mapped): names on one side only, dtype and shape differences, and for
/// each tensor on both sides the largest absolute and relative difference and the elements out of
/// tolerance. How a user proves that a conversion, a cast or a slimming kept every weight.
///
/// A tensor is within tolerance when every element satisfies `|a - b| <= atol + rtol * |b|`
/// (`torch.allclose`, with NaN equal to NaN), `b` being the second file's value. With
/// `atol = rtol = 0` (the default) only identical values pass, and a dtype difference is a
/// difference; with a tolerance, values decide and a dtype difference is only reported.
///
/// ```swift
/// let diff = TensorDiff(a: try readTensors(urlA).tensors, b: try readTensors(urlB).tensors, rtol: 1e-3)
/// print(diff.same, diff.identical, diff.entries.filter { !$0.withinTolerance }.map(\.name))
/// ```
public struct TensorDiff: Sendable, Codable, Equatable {
    /// One tensor present on both sides.
    public struct Entry: Sendable, Codable, Equatable {
        /// The tensor's (mapped) name.
        public let name: String
        /// Element types, first and second file.
        public let dtypeA: DType, dtypeB: DType
        /// Shapes, first and second file.
        public let shapeA: [Int], shapeB: [Int]
        /// Same dtype, shape and bytes.
        public let identical: Bool
        /// `max |a - b|` over the elements (compared as Double); nil when the shapes differ.
        public let maxAbsDifference: Double?
        /// `max |a - b| / max |b|`; nil when the shapes differ.
        public let maxRelDifference: Double?
        /// Elements with `|a - b| > atol + rtol * |b|`; nil when the shapes differ.
        public let elementsOutOfTolerance: Int?
        /// Same shape, every element within tolerance, and (without a tolerance) the same dtype.
        public let withinTolerance: Bool
    }

    /// Names only in the first file.
    public let onlyInA: [String]
    /// Names only in the second file.
    public let onlyInB: [String]
    /// Every tensor present on both sides, in the first file's order.
    public let entries: [Entry]
    /// The absolute tolerance.
    public let atol: Double
    /// The relative tolerance.
    public let rtol: Double

    /// Compares `a` with `b` (the first name wins where a file repeats one).
    public init(a: [NamedTensor], b: [NamedTensor], atol: Double = 0, rtol: Double = 0) {
        var byNameB: [String: TensorRecord] = [:]
        for t in b where byNameB[t.name] == nil { byNameB[t.name] = t.tensor }
        var seenA = Set<String>()
        var entries: [Entry] = []
        for t in a where seenA.insert(t.name).inserted {
            guard let other = byNameB[t.name] else { continue }
            entries.append(Self.compare(t.name, t.tensor, other, atol: atol, rtol: rtol))
        }
        self.entries = entries
        onlyInA = a.map(\.name).filter { byNameB[$0] == nil }.uniqued()
        onlyInB = b.map(\.name).filter { !seenA.contains($0) }.uniqued()
        self.atol = atol
        self.rtol = rtol
    }

    /// Tensors identical on both sides.
    public var identical: Int { entries.filter(\.identical).count }

    /// Nothing on one side only, and every tensor within tolerance.
    public var same: Bool { onlyInA.isEmpty && onlyInB.isEmpty && entries.allSatisfy(\.withinTolerance) }

    private static func compare(_ name: String, _ a: TensorRecord, _ b: TensorRecord, atol: Double, rtol: Double) -> Entry {
        let sameShape = a.shape == b.shape
        let identical = sameShape && a.dtype == b.dtype
            && a.withContiguousBytes { x in b.withContiguousBytes { y in x.elementsEqual(y) } }
        guard sameShape else {
            return Entry(name: name, dtypeA: a.dtype, dtypeB: b.dtype, shapeA: a.shape, shapeB: b.shape, identical: false,
                         maxAbsDifference: nil, maxRelDifference: nil, elementsOutOfTolerance: nil, withinTolerance: false)
        }
        if identical {  // same bytes: nothing to widen and compare
            return Entry(name: name, dtypeA: a.dtype, dtypeB: b.dtype, shapeA: a.shape, shapeB: b.shape, identical: true,
                         maxAbsDifference: 0, maxRelDifference: 0, elementsOutOfTolerance: 0, withinTolerance: true)
        }
        let x = a.doubles(), y = b.doubles()
        var maxAbs = 0.0, scale = 0.0, out = 0
        for (u, v) in zip(x, y) {
            if !v.isNaN { scale = max(scale, abs(v)) }
            if u == v || (u.isNaN && v.isNaN) { continue }
            let d = abs(u - v)  // NaN when one side is NaN: never within tolerance
            maxAbs = max(maxAbs, d.isNaN ? .infinity : d)
            if !(d <= atol + rtol * abs(v)) { out += 1 }
        }
        let rel = maxAbs == 0 ? 0 : (scale > 0 ? maxAbs / scale : .infinity)
        let dtypeOK = a.dtype == b.dtype || atol > 0 || rtol > 0
        return Entry(name: name, dtypeA: a.dtype, dtypeB: b.dtype, shapeA: a.shape, shapeB: b.shape, identical: identical,
                     maxAbsDifference: maxAbs, maxRelDifference: rel, elementsOutOfTolerance: out,
                     withinTolerance: identical || (dtypeOK && out == 0))
    }
}

private extension Array where Element == String {
    /// The names in order, each once.
    func uniqued() -> [String] {
        var seen = Set<String>()
        return filter { seen.insert($0).inserted }
    }
}
