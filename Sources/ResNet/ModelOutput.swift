import Foundation
import TorchportCore

/// A model's output: `[batch, width]` float32, row-major: logits (width = classes), or pooled
/// features for a headless backbone (width = feature channels).
///
/// ```swift
/// let output = try model(input)
/// let best = output.argmax()           // one class index per image
/// let top5 = output.topK(5)[0]         // the first image's five best (index, value), best first
/// let probabilities = output.softmax() // per row, computed in Double
/// ```
public struct ModelOutput: Sendable, Equatable {
    /// Images in the batch.
    public let batch: Int
    /// Values per image (classes, or feature channels).
    public let width: Int
    /// All values, row-major (`batch * width`).
    public let values: [Float]

    /// An output the engine computed (its count is batch * width by construction).
    package init(unchecked batch: Int, width: Int, values: [Float]) {
        self.batch = batch
        self.width = width
        self.values = values
    }

    /// An output of `batch` rows of `width` values; nil when `values.count != batch * width`.
    public init?(batch: Int, width: Int, values: [Float]) {
        guard batch >= 0, width >= 0 else { return nil }
        let (count, overflow) = batch.multipliedReportingOverflow(by: width)
        guard !overflow, count == values.count else { return nil }
        self.batch = batch
        self.width = width
        self.values = values
    }

    /// `[batch, width]`.
    public var shape: [Int] { [batch, width] }

    /// Row `i` (image `i`); `i` must be in `0..<batch`.
    public func row(_ i: Int) -> ArraySlice<Float> { values[(i * width)..<((i + 1) * width)] }

    /// Every row, one array per image.
    public var rows: [[Float]] { (0..<batch).map { Array(row($0)) } }

    /// The index of the largest value of each row (the first on ties; NaN never wins).
    public func argmax() -> [Int] { topK(1).map { $0.first?.index ?? 0 } }

    /// The `k` largest values of each row with their indices, largest first (ties: lower index
    /// first; NaN last).
    public func topK(_ k: Int) -> [[(index: Int, value: Float)]] {
        (0..<batch).map { b in
            let r = row(b)
            let order = r.indices.sorted { i, j in
                let (x, y) = (r[i], r[j])
                if x.isNaN != y.isNaN { return y.isNaN }
                return x != y && !x.isNaN ? x > y : i < j
            }
            return order.prefix(max(0, k)).map { (index: $0 - r.startIndex, value: r[$0]) }
        }
    }

    /// Softmax of each row, computed in Double (shifted by the row's maximum), as probabilities.
    public func softmax() -> [[Double]] {
        (0..<batch).map { b in
            let r = row(b)
            guard let peak = r.filter({ !$0.isNaN }).max() else { return r.map { _ in .nan } }
            let exps = r.map { Foundation.exp(Double($0) - Double(peak)) }
            let sum = exps.reduce(0, +)
            return exps.map { $0 / sum }
        }
    }
}
