import Testing
@testable import Verification
import TorchportCore

@Suite("Per-sample metrics")
struct MetricsTests {
    // Two samples of three classes, values chosen so every metric is exact:
    //   sample 0: ref [2, -4, 1],  computed [2.5, -4, 0.75]  d = [0.5, 0, -0.25]
    //   sample 1: ref [3,  4, 0],  computed [4,    3, 0]     d = [1, -1, 0]
    let reference: [Float] = [2, -4, 1, 3, 4, 0]
    let computed: [Float] = [2.5, -4, 0.75, 4, 3, 0]

    @Test("Max abs error, logit scale and relative error of hand-computed samples")
    func errors() throws {
        let report = try Verifier.compare(computed: computed, reference: reference, batch: 2, classes: 3, criterion: .default)
        let s0 = report.perSample[0], s1 = report.perSample[1]
        #expect(s0.maxAbsError == 0.5)
        #expect(s0.scale == 4)
        #expect(s0.maxRelError == 0.125)
        #expect(s1.maxAbsError == 1)
        #expect(s1.scale == 4)
        #expect(s1.maxRelError == 0.25)
        #expect(report.maxAbsError == 1)
        #expect(report.maxRelError == 0.25)
        #expect(report.samples == 2)
        #expect(report.classes == 3)
    }

    @Test("Cosine similarity of hand-computed samples")
    func cosine() throws {
        let report = try Verifier.compare(computed: computed, reference: reference, batch: 2, classes: 3, criterion: .default)
        // sample 0: dot = 5 + 16 + 0.75 = 21.75, |computed|^2 = 22.8125, |ref|^2 = 21
        #expect(abs(report.perSample[0].cosine - 21.75 / (22.8125.squareRoot() * 21.0.squareRoot())) < 1e-15)
        // sample 1: dot = 24, |computed| = |ref| = 5
        #expect(report.perSample[1].cosine == 0.96)
        #expect(report.minCosine == 0.96)
    }

    @Test("Top-1 indices, the reference's top-2 gap and agreement counts")
    func top1() throws {
        let report = try Verifier.compare(computed: computed, reference: reference, batch: 2, classes: 3, criterion: .default)
        let s0 = report.perSample[0], s1 = report.perSample[1]
        #expect(s0.top1Reference == 0 && s0.top1Computed == 0 && s0.top1 == .match)
        #expect(s0.top2Gap == 1)   // 2 - 1
        #expect(s1.top1Reference == 1 && s1.top1Computed == 0 && s1.top1 == .mismatch)
        #expect(s1.top2Gap == 1)   // 4 - 3
        #expect(report.top1Agreement == 1)
        #expect(report.top1Ties == 0)
        // C = 3 < 5: top-3 sets, which are every class, so always equal.
        #expect(report.topK == 3)
        #expect(report.top5Agreement == 2)
    }

    @Test("Tolerance and verdict follow atol + rtol * max|ref| per sample")
    func verdictPerSample() throws {
        let strict = try Verifier.compare(computed: computed, reference: reference, batch: 2, classes: 3, criterion: .default)
        #expect(strict.perSample[0].tolerance == 1e-5 * 4)
        #expect(!strict.passed)
        #expect(strict.failedSamples == [0, 1])

        // rtol 0.2: tolerance 0.8 for both samples. Sample 0 (0.5) passes; sample 1 (1.0) fails.
        let loose = try Verifier.compare(computed: computed, reference: reference, batch: 2, classes: 3,
                                     criterion: Criterion(rtol: 0.2))
        #expect(loose.perSample[0].passed)
        #expect(!loose.perSample[1].passed)
        #expect(loose.failedSamples == [1])
        #expect(!loose.passed)
    }

    @Test("Identical outputs give zero error, cosine 1 and a pass")
    func identical() throws {
        let report = try Verifier.compare(computed: reference, reference: reference, batch: 2, classes: 3, criterion: .default)
        #expect(report.maxAbsError == 0)
        #expect(report.maxRelError == 0)
        #expect(report.minCosine == 1)
        #expect(report.top1Agreement == 2)
        #expect(report.passed)
        #expect(report.exitCode == 0)
    }

    @Test("The cosine is computed in Double: a difference of 2^-20 in one logit still shows")
    func cosineInDouble() throws {
        // cos = 1 / sqrt(1 + 2^-40) = 1 - 2^-41 + ..., which rounds to exactly 1 in Float.
        let report = try Verifier.compare(computed: [1, 0x1p-20], reference: [1, 0], batch: 1, classes: 2, criterion: .default)
        #expect(report.minCosine < 1)
        #expect(abs(report.minCosine - (1 - 0x1p-41)) < 1e-16)
        #expect(Float(report.minCosine) == 1)
    }

    @Test("Zero rows: cosine 1 when both are zero, 0 when one is; relative error is infinite over a zero reference")
    func zeroRows() throws {
        let both = try Verifier.compare(computed: [0, 0, 0], reference: [0, 0, 0], batch: 1, classes: 3, criterion: .default)
        #expect(both.perSample[0].cosine == 1)
        #expect(both.perSample[0].maxRelError == 0)
        #expect(both.passed)

        let one = try Verifier.compare(computed: [0.5, 0, 0], reference: [0, 0, 0], batch: 1, classes: 3, criterion: .default)
        #expect(one.perSample[0].cosine == 0)
        #expect(one.perSample[0].maxAbsError == 0.5)
        #expect(one.perSample[0].maxRelError == .infinity)
        #expect(!one.passed)
        // Only an absolute floor can accept outputs over a zero reference.
        let floor = try Verifier.compare(computed: [0.5, 0, 0], reference: [0, 0, 0], batch: 1, classes: 3,
                                     criterion: Criterion(atol: 0.5))
        #expect(floor.passed)
    }

    @Test("A NaN in the computed output fails its sample and makes the report's max error NaN")
    func nan() throws {
        let report = try Verifier.compare(computed: [1, .nan, 0, 1, 0, 0], reference: [1, 0, 0, 1, 0, 0],
                                      batch: 2, classes: 3, criterion: Criterion(atol: 1000))
        #expect(report.perSample[0].maxAbsError.isNaN)
        #expect(!report.perSample[0].passed)
        #expect(report.perSample[1].passed)
        #expect(report.maxAbsError.isNaN)
        #expect(report.failedSamples == [0])
        #expect(report.exitCode == 1)
        // torch.argmax counts NaN as the largest value; so does the report.
        #expect(report.perSample[0].top1Computed == 1)
    }

    @Test("Feature rows compare like logits (a feature map flattened to C x h x w per sample)")
    func featureRows() throws {
        let ref: [Float] = [0, 1, 2, 3, 4, 5, 6, 7]
        var out = ref
        out[6] += 0.25
        let report = try Verifier.compare(computed: out, reference: ref, batch: 2, classes: 4, criterion: Criterion(rtol: 0.5 / 7))
        #expect(report.perSample[0].maxAbsError == 0)
        #expect(report.perSample[1].maxAbsError == 0.25)
        #expect(report.perSample[1].scale == 7)
        #expect(report.passed)
    }

    @Test("An empty batch proves nothing and does not pass")
    func emptyBatch() throws {
        let report = try Verifier.compare(computed: [], reference: [], batch: 0, classes: 10, criterion: .default)
        #expect(report.samples == 0)
        #expect(!report.passed)
        #expect(report.exitCode == 1)
    }
}
