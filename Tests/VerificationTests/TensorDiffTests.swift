import Foundation
import Testing
import TorchportCore
@testable import Verification

@Suite("Tensor-by-tensor diff")
struct TensorDiffTests {
    static func tensor(_ name: String, _ values: [Float], shape: [Int]? = nil) -> NamedTensor {
        let bytes = values.withUnsafeBytes { Array($0) }
        let record = TensorRecord(dtype: .float32, shape: shape ?? [values.count], bytes: ByteSlice(owner: .owned(bytes)))!
        return NamedTensor(name: name, tensor: record)
    }

    @Test("Names on one side only, shapes, identical tensors, and the largest differences")
    func differences() throws {
        let a = [Self.tensor("w", [1, 2, 3, 4]), Self.tensor("b", [0.5]), Self.tensor("onlyA", [1]), Self.tensor("s", [1, 2])]
        let b = [Self.tensor("w", [1, 2, 3.5, 4]), Self.tensor("b", [0.5]), Self.tensor("onlyB", [1]), Self.tensor("s", [1, 2, 3])]
        let d = TensorDiff(a: a, b: b)
        #expect(d.onlyInA == ["onlyA"] && d.onlyInB == ["onlyB"])
        #expect(d.entries.map(\.name) == ["w", "b", "s"])
        #expect(d.identical == 1 && !d.same)
        let w = d.entries[0]
        #expect(w.maxAbsDifference == 0.5 && w.maxRelDifference == 0.5 / 4 && w.elementsOutOfTolerance == 1 && !w.withinTolerance)
        let s = d.entries[2]
        #expect(s.maxAbsDifference == nil && !s.withinTolerance && s.shapeB == [3])
    }

    @Test("Tolerances: |a - b| <= atol + rtol * |b| per element; NaN equals NaN, infinities equal themselves")
    func tolerances() throws {
        let a = [Self.tensor("x", [100, 1, .nan, .infinity, 0])]
        let b = [Self.tensor("x", [100.5, 1, .nan, .infinity, 0])]
        #expect(!TensorDiff(a: a, b: b).same)
        #expect(TensorDiff(a: a, b: b, rtol: 0.005).same)          // 0.5 <= 0.005 * 100.5
        #expect(!TensorDiff(a: a, b: b, rtol: 0.004).same)
        #expect(TensorDiff(a: a, b: b, atol: 0.5).same)
        let nanVsNumber = TensorDiff(a: [Self.tensor("x", [.nan])], b: [Self.tensor("x", [1])], atol: 1e9)
        #expect(!nanVsNumber.same && nanVsNumber.entries[0].maxAbsDifference == .infinity)
        #expect(TensorDiff(a: [], b: []).same)
    }

    @Test("A dtype difference is a difference without a tolerance, and only reported with one")
    func dtypes() throws {
        let half = FloatCast.cast(Self.tensor("x", [1, 0.5]).tensor, to: .float16)!
        let b = [NamedTensor(name: "x", tensor: TensorRecord(dtype: .float16, shape: [2], bytes: ByteSlice(owner: .owned(half)))!)]
        let a = [Self.tensor("x", [1, 0.5])]
        let strict = TensorDiff(a: a, b: b)
        #expect(!strict.same && strict.entries[0].maxAbsDifference == 0 && !strict.entries[0].identical)
        #expect(TensorDiff(a: a, b: b, rtol: 1e-6).same)
    }
}
