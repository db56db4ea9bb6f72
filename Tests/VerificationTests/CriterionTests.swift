import Testing
@testable import Verification
import TorchportCore

@Suite("The criterion: atol + rtol * max|ref|, and the top-1 tie rule")
struct CriterionTests {
    @Test("Defaults are atol 0 and rtol 1e-5, and the formula states them")
    func defaults() throws {
        let c = Criterion()
        #expect(c.atol == 0)
        #expect(c.rtol == 1e-5)
        #expect(c == .default)
        #expect(c.tolerance(scale: 12.5) == 1.25e-4)
        #expect(c.formula == "max|d| <= 0 + 1e-05 * max|ref| per sample, "
                + "and top-1 identical unless the reference's top-2 gap is within that tolerance")
        #expect(Criterion(atol: 0.001, rtol: 0.0002).formula.hasPrefix("max|d| <= 0.001 + 0.0002 * max|ref|"))
    }

    @Test("Overrides: atol and rtol add, and an error exactly at the tolerance passes while the next float fails")
    func boundaryWithBoth() throws {
        // tolerance = 0.5 + 0.125 * 4 = 1 exactly.
        let criterion = Criterion(atol: 0.5, rtol: 0.125)
        let reference: [Float] = [4, 1, 0]
        let atBound = try Verifier.compare(computed: [4, 2, 0], reference: reference, batch: 1, classes: 3, criterion: criterion)
        #expect(atBound.perSample[0].tolerance == 1)
        #expect(atBound.perSample[0].maxAbsError == 1)
        #expect(atBound.passed)
        let over = try Verifier.compare(computed: [4, Float(2).nextUp, 0], reference: reference, batch: 1, classes: 3,
                                    criterion: criterion)
        #expect(over.perSample[0].maxAbsError == 1 + 0x1p-22)
        #expect(!over.passed)
    }

    @Test("With the default rtol, the largest float within 1e-5 of a unit logit scale passes and the next one fails")
    func boundaryDefault() throws {
        let reference: [Float] = [1, 0.5, 0.25, -0.5]
        // Largest x with x - 0.5 <= 1e-5 (in Double, as the criterion compares).
        var x: Float = 0.5
        while Double(x.nextUp) - 0.5 <= 1e-5 { x = x.nextUp }
        #expect(Double(x) - 0.5 == 167 * 0x1p-24)   // 167 ulps of 0.5, 83.5 ulps of the scale 1
        let within = try Verifier.compare(computed: [1, x, 0.25, -0.5], reference: reference, batch: 1, classes: 4, criterion: .default)
        #expect(within.passed)
        let over = try Verifier.compare(computed: [1, x.nextUp, 0.25, -0.5], reference: reference, batch: 1, classes: 4,
                                    criterion: .default)
        #expect(!over.passed)
        #expect(over.perSample[0].maxAbsError > 1e-5)
    }

    @Test("The tolerance scales with the sample's logit scale: the same error passes at scale 100 and fails at scale 1")
    func scaleDependence() throws {
        let error: Float = 0x1p-12   // 2.44e-4
        let large = try Verifier.compare(computed: [100, 3 + error], reference: [100, 3], batch: 1, classes: 2, criterion: .default)
        #expect(abs(large.perSample[0].tolerance - 1e-3) < 1e-18)
        #expect(large.passed)
        let small = try Verifier.compare(computed: [1, 0.5 + error], reference: [1, 0.5], batch: 1, classes: 2, criterion: .default)
        #expect(!small.passed)
    }

    @Test("One logit of 1000 perturbed by 2e-5 of the scale fails; by 0.5e-5 it passes")
    func perturbedLogit() throws {
        var rng = SeededFloats(seed: 7)
        let reference = rng.array(1000, scale: 12)
        let scale = Double(reference.map { abs($0) }.max()!)
        var small = reference, large = reference
        small[123] += Float(0.5e-5 * scale)
        large[123] += Float(2e-5 * scale)
        let pass = try Verifier.compare(computed: small, reference: reference, batch: 1, classes: 1000, criterion: .default)
        let fail = try Verifier.compare(computed: large, reference: reference, batch: 1, classes: 1000, criterion: .default)
        #expect(pass.passed)
        #expect(abs(pass.maxRelError - 0.5e-5) < 1e-7)
        #expect(!fail.passed)
        #expect(abs(fail.maxRelError - 2e-5) < 1e-7)
        #expect(fail.perSample[0].top1 == .match)   // it fails on the error alone
    }

    @Test("A swapped top-1 within a reference tie passes and is reported as a tie")
    func tie() throws {
        // Reference gap 2^-20 = 9.5e-7 <= tolerance 1e-5; the computed output swaps the two classes.
        let reference: [Float] = [1, 1 - 0x1p-20, 0, -1]
        let computed: [Float] = [1 - 0x1p-20, 1, 0, -1]
        let report = try Verifier.compare(computed: computed, reference: reference, batch: 1, classes: 4, criterion: .default)
        let s = report.perSample[0]
        #expect(s.top1Reference == 0)
        #expect(s.top1Computed == 1)
        #expect(s.top2Gap == 0x1p-20)
        #expect(s.top1 == .tie)
        #expect(s.passed)
        #expect(report.top1Agreement == 0)
        #expect(report.top1Ties == 1)
        #expect(report.passed)
        #expect(report.text.contains("tie"))
    }

    @Test("A swapped top-1 fails when the reference separates the classes by more than the tolerance, though every error is within it")
    func notATie() throws {
        // Gap 2^-16 = 1.53e-5 > 1e-5. Errors: 2^-17 = 7.6e-6 and 2^-17 + 2^-19 = 9.5e-6, both <= 1e-5,
        // yet they reorder the top two.
        let reference: [Float] = [1, 1 - 0x1p-16, 0, -1]
        let computed: [Float] = [1 - 0x1p-17, 1 - 0x1p-17 + 0x1p-19, 0, -1]
        let report = try Verifier.compare(computed: computed, reference: reference, batch: 1, classes: 4, criterion: .default)
        let s = report.perSample[0]
        #expect(s.maxAbsError == 0x1p-17 + 0x1p-19)
        #expect(s.maxAbsError <= s.tolerance)
        #expect(s.top1Computed == 1)
        #expect(s.top1 == .mismatch)
        #expect(!s.passed)
        #expect(!report.passed)
    }

    @Test("An exact tie in the reference, reproduced exactly, is a match (the lower index wins on both sides)")
    func exactTie() throws {
        let report = try Verifier.compare(computed: [3, 3, 1], reference: [3, 3, 1], batch: 1, classes: 3, criterion: .default)
        #expect(report.perSample[0].top1Reference == 0)
        #expect(report.perSample[0].top1 == .match)
        #expect(report.perSample[0].top2Gap == 0)
    }

    @Test("Negative, NaN or infinite tolerances are reported as unusable")
    func validation() throws {
        #expect(Criterion().validationProblem == nil)
        #expect(Criterion(atol: 1e-6, rtol: 0).validationProblem == nil)
        #expect(Criterion(atol: -1).validationProblem == "atol must be a finite number >= 0, got -1.0")
        #expect(Criterion(rtol: .nan).validationProblem == "rtol must be a finite number >= 0, got nan")
        #expect(Criterion(rtol: .infinity).validationProblem == "rtol must be a finite number >= 0, got inf")
    }
}

@Suite("Top-5 agreement compares sets")
struct TopKTests {
    @Test("Reordering inside the top five keeps the sets equal")
    func reorderedInside() throws {
        let reference: [Float] = [8, 7, 6, 5, 4, 3, 2, 1]
        let computed: [Float] = [4, 5, 6, 7, 8, 3, 2, 1]
        let report = try Verifier.compare(computed: computed, reference: reference, batch: 1, classes: 8, criterion: Criterion(atol: 10))
        #expect(report.perSample[0].top5)
        #expect(report.perSample[0].top1 == .tie)   // gap 1 <= tolerance 10
        #expect(report.top5Agreement == 1)
    }

    @Test("Swapping the fifth and sixth classes makes the sets differ")
    func swappedAtTheEdge() throws {
        let reference: [Float] = [8, 7, 6, 5, 4, 3, 2, 1]
        let computed: [Float] = [8, 7, 6, 5, 3, 4, 2, 1]
        let report = try Verifier.compare(computed: computed, reference: reference, batch: 1, classes: 8, criterion: .default)
        #expect(!report.perSample[0].top5)
        #expect(report.perSample[0].top1 == .match)
        #expect(report.top5Agreement == 0)
        #expect(report.topK == 5)
    }

    @Test("With fewer than five classes the sets are top-C, hence always equal")
    func fewClasses() throws {
        let report = try Verifier.compare(computed: [0, 1], reference: [1, 0], batch: 1, classes: 2, criterion: .default)
        #expect(report.topK == 2)
        #expect(report.perSample[0].top5)
        #expect(report.text.contains("top-2"))
    }

    @Test("Top indices: largest first, lower index first among equals, NaN largest")
    func topIndices() throws {
        #expect(SampleMetrics.topIndices([1, 5, 3, 5, 2, 9, 0][...], 5) == [5, 1, 3, 2, 4])
        #expect(SampleMetrics.topIndices([1, .nan, 3][...], 2) == [1, 2])
        #expect(SampleMetrics.topIndices([4, 2][...], 2) == [0, 1])
        let slice = ([9, 9, 1, 2, 3] as [Float])[2...]
        #expect(SampleMetrics.topIndices(slice, 2) == [2, 1])   // indices relative to the row
    }
}

@Suite("The tolerance report")
struct ToleranceReportTests {
    @Test("Error statistics: max, mean, median, quantiles between order statistics; NaN propagates")
    func statistics() throws {
        let e = [4.0, 1, 3, 2]
        #expect(Criterion.ErrorStatistic.max.of(e) == 4)
        #expect(Criterion.ErrorStatistic.mean.of(e) == 2.5)
        #expect(Criterion.ErrorStatistic.median.of(e) == 2.5)
        #expect(Criterion.ErrorStatistic.quantile(0).of(e) == 1)
        #expect(Criterion.ErrorStatistic.quantile(1).of(e) == 4)
        #expect(Criterion.ErrorStatistic.quantile(0.5).of([1, 2, 3]) == 2)
        #expect(abs(Criterion.ErrorStatistic.quantile(0.9).of(e) - 3.7) < 1e-12)
        #expect(Criterion.ErrorStatistic.mean.of([1, .nan]).isNaN)
        #expect(Criterion(errorStat: .quantile(2)).validationProblem != nil)
    }

    @Test("Smallest passing atol and rtol, elements out of tolerance; the statistic decides the verdict")
    func smallestPassing() throws {
        // One sample, scale 10: errors 0.1, 0, 0.02, 0.
        let computed: [Float] = [10.1, 5, 2.02, 1], reference: [Float] = [10, 5, 2, 1]
        let strict = try Verifier.compare(computed: computed, reference: reference, batch: 1, classes: 4,
                                          criterion: Criterion(atol: 0, rtol: 1e-3))
        #expect(!strict.passed)
        #expect(strict.elementsOutOfTolerance == 2 && strict.elements == 4)  // tolerance 0.01: 0.1 and 0.02 out
        #expect(abs(strict.smallestPassingAtol - (0.1 - 0.01)) < 1e-5)
        #expect(abs(strict.smallestPassingRtol - 0.01) < 1e-6)
        let atThat = try Verifier.compare(computed: computed, reference: reference, batch: 1, classes: 4,
                                          criterion: Criterion(atol: strict.smallestPassingAtol * 1.0001, rtol: 1e-3))
        #expect(atThat.passed)
        let median = try Verifier.compare(computed: computed, reference: reference, batch: 1, classes: 4,
                                          criterion: Criterion(atol: 0, rtol: 1e-3, errorStat: .median))
        #expect(median.passed && median.perSample[0].errorStatistic < 0.011)
        #expect(median.decidedBy == .criterion)
    }

    @Test("float16 and bfloat16 weights get torch.testing.assert_close's tolerances")
    func dtypeDefaults() {
        #expect(Criterion.assertCloseDefaults(for: .float16) == Criterion(atol: 1e-5, rtol: 1e-3))
        #expect(Criterion.assertCloseDefaults(for: .bfloat16) == Criterion(atol: 1e-5, rtol: 1.6e-2))
        #expect(Criterion.assertCloseDefaults(for: .float32) == nil)
    }

    @Test("The float64 rule passes what is within 4x PyTorch's own float32 error, and nothing further")
    func float64Rule() throws {
        let reference: [Float] = [10, 5], computedClose: [Float] = [10.00001, 5], computedFar: [Float] = [10.001, 5]
        let f64: [Double] = [10.000004, 5]
        for (computed, passes) in [(computedClose, true), (computedFar, false)] {
            let f = Float64Reference(computed: computed, pytorch: reference, float64: f64, batch: 1, classes: 2)
            let r = VerificationReport(perSample: [SampleMetrics(sample: 0, computed: computed[...], reference: reference[...],
                                                                 criterion: Criterion(rtol: 1e-9))],
                                       classes: 2, criterion: Criterion(rtol: 1e-9), float64Reference: f)
            #expect(r.passed == passes)
            #expect(r.decidedBy == (passes ? .float64Reference : .criterion))
        }
    }
}
