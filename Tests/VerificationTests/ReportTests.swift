import Foundation
import Testing
@testable import Verification
import TorchportCore

@Suite("Reports: JSON, text and exit codes")
struct ReportTests {
    let reference: [Float] = [2, -4, 1, 3, 4, 0]
    let computed: [Float] = [2.5, -4, 0.75, 4, 3, 0]

    func object(_ report: VerificationReport) throws -> [String: Any] {
        let data = Data(report.jsonString().utf8)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("JSON uses snake_case keys for the report and for each sample")
    func keys() throws {
        let report = try Verifier.compare(computed: computed, reference: reference, batch: 2, classes: 3, criterion: .default)
        let json = try object(report)
        #expect(Set(json.keys) == [
            "passed", "criterion", "atol", "rtol", "output", "samples", "classes", "max_abs_error", "max_rel_error",
            "min_cosine", "top1_agreement", "top1_ties", "top5_agreement", "top_k", "failed_samples", "per_sample", "notes",
            "error_stat", "smallest_passing_atol", "smallest_passing_rtol", "elements_out_of_tolerance", "elements",
            "tolerance_source", "decided_by",
        ])
        let sample = try #require((json["per_sample"] as? [[String: Any]])?.first)
        #expect(Set(sample.keys) == [
            "sample", "max_abs_error", "logit_scale", "max_rel_error", "cosine", "top1_reference", "top1_computed",
            "top2_gap", "top1", "top5", "tolerance", "passed", "error_statistic", "elements_out_of_tolerance",
            "smallest_passing_atol", "smallest_passing_rtol",
        ])
    }

    @Test("JSON values are the report's numbers")
    func values() throws {
        let report = try Verifier.compare(computed: computed, reference: reference, batch: 2, classes: 3,
                                      criterion: Criterion(rtol: 0.2))
        let json = try object(report)
        #expect(json["passed"] as? Bool == false)
        #expect(json["max_abs_error"] as? Double == 1)
        #expect(json["max_rel_error"] as? Double == 0.25)
        #expect(json["min_cosine"] as? Double == 0.96)
        #expect(json["top1_agreement"] as? Int == 1)
        #expect(json["top5_agreement"] as? Int == 2)
        #expect(json["samples"] as? Int == 2)
        #expect(json["classes"] as? Int == 3)
        #expect(json["rtol"] as? Double == 0.2)
        #expect(json["failed_samples"] as? [Int] == [1])
        #expect(json["output"] as? String == "logits")
        #expect(json["criterion"] as? String == "max|d| <= 0 + 0.2 * max|ref| per sample, "
                + "and top-1 identical unless the reference's top-2 gap is within that tolerance")
        let samples = try #require(json["per_sample"] as? [[String: Any]])
        #expect(samples[1]["top1"] as? String == "mismatch")
        #expect(samples[0]["logit_scale"] as? Double == 4)
    }

    @Test("JSON round-trips, and a NaN error is written as the string \"nan\"")
    func roundTrip() throws {
        let report = try Verifier.compare(computed: [1, .nan, 0], reference: [1, 0, 0], batch: 1, classes: 3, criterion: .default)
        let text = report.jsonString(pretty: false)
        #expect(text.contains(#""max_abs_error":"nan""#))
        let decoded = try VerificationReport.jsonDecoder.decode(VerificationReport.self, from: Data(text.utf8))
        #expect(decoded.maxAbsError.isNaN)
        #expect(decoded.perSample.count == 1)
        #expect(decoded.passed == false)

        let clean = try Verifier.compare(computed: computed, reference: reference, batch: 2, classes: 3, criterion: .default)
        let again = try VerificationReport.jsonDecoder.decode(VerificationReport.self, from: Data(clean.jsonString().utf8))
        #expect(again == clean)
    }

    @Test("Exit codes: 0 when every sample passes, 1 on a numerical mismatch, 2 for an unusable file")
    func exitCodes() throws {
        let pass = try Verifier.compare(computed: reference, reference: reference, batch: 2, classes: 3, criterion: .default)
        let fail = try Verifier.compare(computed: computed, reference: reference, batch: 2, classes: 3, criterion: .default)
        #expect(pass.exitCode == 0)
        #expect(fail.exitCode == 1)
        #expect(VerificationError(.missingTensor("input")).exitCode == 2)
        #expect([ExitStatus.passed, ExitStatus.mismatch, ExitStatus.unusableFile] == [0, 1, 2])
    }

    @Test("Text: one row per sample, then the verdict and the criterion")
    func text() throws {
        let report = try Verifier.compare(computed: computed, reference: reference, batch: 2, classes: 3,
                                      criterion: Criterion(rtol: 0.2))
        #expect(report.text == """
            sample  max|d|     rel        cosine      top-1     top-3
                 0  5.000e-01  1.250e-01  0.99371804  match     yes
                 1  1.000e+00  2.500e-01  0.96000000  mismatch  yes  FAIL
            FAIL: 1 of 2 samples within tolerance; max|d| 1.000e+00, rel 2.500e-01, min cosine 0.96000000, top-1 1/2, top-3 2/2
            tolerance: 2 of 6 elements (33.3%) out; would pass with atol >= 2.000e-01 (at rtol 0.2) or rtol >= 2.500e-01 (at atol 0)
            criterion: max|d| <= 0 + 0.2 * max|ref| per sample, and top-1 identical unless the reference's top-2 gap is within that tolerance; decided by: the criterion
            """)
        let pass = try Verifier.compare(computed: reference, reference: reference, batch: 2, classes: 3, criterion: .default)
        let lines = pass.text.split(separator: "\n")
        #expect(lines.count == 6)
        #expect(lines[3].hasPrefix("PASS: 2 of 2 samples within tolerance"))
    }
}
