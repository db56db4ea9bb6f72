import Foundation
import SafeTensors
import Testing
import TorchCheckpoint
import TorchportCore
@testable import Verification

/// Little-endian bytes of float32 / float64 values, as a file holds them.
func bytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
func bytes(_ values: [Double]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

/// Writes `tensors` as a safetensors file in the temporary directory and returns its path.
func writeSafeTensors(_ tensors: [(name: String, dtype: DType, shape: [Int], bytes: [UInt8])]) throws -> String {
    let path = FixturePaths.temporary("golden.safetensors")
    try Data(SafeTensorsWriter.serialize(tensors)).write(to: URL(fileURLWithPath: path))
    return path
}

@Suite("Golden files")
struct GoldenTests {
    @Test("A checkpoint without an input tensor is refused with missingTensor, the file's name and what it holds")
    func missingInput() throws {
        let path = FixturePaths.checkpoint("dtypes.pth")
        let error = try #require(throws: VerificationError.self) { _ = try Golden.load(path: path) }
        #expect(error.kind == .missingTensor("input"))
        #expect(error.code == "missingTensor")
        #expect(error.file == path)
        #expect(error.exitCode == 2)
        #expect(error.hint == "it holds 'float32' [10], 'float64' [10], 'float16' [10], 'bfloat16' [10], 'int64' [6], "
                + "'int32' [5], 'int16' [5], 'int8' [5], ... (18 in all)")
        #expect(error.description == "golden has no tensor 'input'; \(error.hint ?? "") [\(path)]")
    }

    @Test("A file that does not exist is unreadable, with the reader's error kept")
    func missingFile() throws {
        let path = FixturePaths.temporary("absent.pth")
        let error = try #require(throws: VerificationError.self) { _ = try Golden.load(path: path) }
        guard case .unreadable = error.kind, case .io = error.underlying?.kind else {
            Issue.record("\(error.kind), \(String(describing: error.underlying?.kind))"); return
        }
        #expect(error.file == path)
    }

    @Test("A file that is not a checkpoint is unreadable as one")
    func notACheckpoint() throws {
        let path = FixturePaths.fixtures.appendingPathComponent("README.md").path
        let error = try #require(throws: VerificationError.self) { _ = try Golden.load(path: path) }
        guard case .unreadable = error.kind, case .unrecognizedFormat = error.underlying?.kind else {
            Issue.record("\(error.kind), \(String(describing: error.underlying?.kind))"); return
        }
    }

    @Test("A safetensors golden loads with its shapes, values and float64 logits")
    func safeTensorsGolden() throws {
        let input = (0..<(2 * 3 * 4 * 4)).map { Float($0) / 8 }
        let logits: [Float] = [1, 2, 3, 4, 5, -1, -2, -3, -4, -5]
        let logits64 = logits.map { Double($0) + 1e-9 }
        let path = try writeSafeTensors([
            ("input", .float32, [2, 3, 4, 4], bytes(input)),
            ("logits", .float32, [2, 5], bytes(logits)),
            ("logits_f64", .float64, [2, 5], bytes(logits64)),
            ("meta", .int64, [1], [7, 0, 0, 0, 0, 0, 0, 0]),   // other tensors are ignored
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let golden = try Golden.load(path: path)
        #expect(golden.inputShape == [2, 3, 4, 4])
        #expect(golden.logitsShape == [2, 5])
        #expect(golden.batch == 2)
        #expect(golden.classes == 5)
        #expect(golden.input == input)
        #expect(golden.logits == logits)
        #expect(golden.logitsF64 == logits64)
        #expect(golden.features == nil && golden.featureMap == nil)
        #expect(golden.file == path)

        let report = try Verifier.compare(computed: logits, shape: [2, 5], golden: golden)
        #expect(report.passed)
        let f64 = try #require(report.float64Reference)
        #expect(abs(f64.pytorchMaxAbsError - 1e-9) < 1e-15)
        #expect(abs(f64.pytorchMaxRelError - 1e-9 / 5) < 1e-15)
        #expect(f64.computedMaxAbsError == f64.pytorchMaxAbsError)
        #expect(report.text.contains("vs float64"))
    }

    @Test("A safetensors file is recognized by its content whatever its name")
    func safeTensorsSniffed() throws {
        let path = try writeSafeTensors([
            ("input", .float32, [1, 3, 1, 1], bytes([0, 0, 0] as [Float])),
            ("logits", .float32, [1, 2], bytes([1, 0] as [Float])),
        ])
        let renamed = path + ".golden.pth"
        try FileManager.default.moveItem(atPath: path, toPath: renamed)
        defer { try? FileManager.default.removeItem(atPath: renamed) }
        #expect(try Golden.load(path: renamed).logits == [1, 0])
    }

    @Test("Logits stored as float64 are refused with a dtype error")
    func float64Logits() throws {
        let path = try writeSafeTensors([
            ("input", .float32, [1, 3, 1, 1], bytes([0, 0, 0] as [Float])),
            ("logits", .float64, [1, 2], bytes([1, 0] as [Double])),
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: VerificationError.self) { _ = try Golden.load(path: path) }
        #expect(error.kind == .dtype(name: "logits", dtype: .float64, expected: .float32))
        #expect(error.description == "tensor 'logits' is float64, expected float32 [\(path)]")
    }

    @Test("A golden without any output is refused with missingTensor(logits)")
    func missingLogits() throws {
        let path = try writeSafeTensors([("input", .float32, [1, 3, 1, 1], bytes([0, 0, 0] as [Float]))])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: VerificationError.self) { _ = try Golden.load(path: path) }
        #expect(error.kind == .missingTensor("logits"))
        #expect(error.description.hasPrefix("golden has no tensor 'logits' (nor 'features' or 'feature_map'"))
    }

    @Test("Shapes are validated: input must be N x 3 x H x W")
    func inputShape() throws {
        let rank3 = try #require(throws: VerificationError.self) {
            _ = try Golden(input: [0, 0, 0], inputShape: [1, 3, 1], logits: [1], logitsShape: [1, 1])
        }
        #expect(rank3.kind == .badShape(name: "input", shape: [1, 3, 1], expected: "N x 3 x H x W, all sizes > 0"))
        let gray = try #require(throws: VerificationError.self) {
            _ = try Golden(input: [0, 0], inputShape: [2, 1, 1, 1], logits: [1, 2], logitsShape: [2, 1])
        }
        #expect(gray.kind == .badShape(name: "input", shape: [2, 1, 1, 1], expected: "N x 3 x H x W, all sizes > 0"))
        #expect(gray.description == "tensor 'input' has shape [2, 1, 1, 1], expected N x 3 x H x W, all sizes > 0")
        let count = try #require(throws: VerificationError.self) {
            _ = try Golden(input: [0, 0], inputShape: [1, 3, 1, 1], logits: [1], logitsShape: [1, 1])
        }
        #expect(count.kind == .badShape(name: "input", shape: [1, 3, 1, 1], expected: "a shape of 2 values"))
    }

    @Test("Every output must hold as many samples as the input")
    func batchMismatch() throws {
        let input = [Float](repeating: 0, count: 6)
        let logits = try #require(throws: VerificationError.self) {
            _ = try Golden(input: input, inputShape: [2, 3, 1, 1], logits: [1, 2, 3], logitsShape: [3, 1], file: "g.pth")
        }
        #expect(logits.kind == .batchMismatch(name: "logits", batch: 3, expected: 2))
        #expect(logits.description == "tensor 'logits' holds 3 samples, 'input' holds 2 [g.pth]")
        let features = try #require(throws: VerificationError.self) {
            _ = try Golden(input: input, inputShape: [2, 3, 1, 1], logits: [1, 2], logitsShape: [2, 1],
                           features: [1, 2, 3, 4], featuresShape: [1, 4])
        }
        #expect(features.kind == .batchMismatch(name: "features", batch: 1, expected: 2))
        let map = try #require(throws: VerificationError.self) {
            _ = try Golden(input: input, inputShape: [2, 3, 1, 1], logits: [1, 2], logitsShape: [2, 1],
                           featureMap: [1, 2, 3, 4], featureMapShape: [2, 2])
        }
        #expect(map.kind == .badShape(name: "feature_map", shape: [2, 2], expected: "N x C x h x w, all sizes > 0"))
    }

    @Test("A NaN or infinite reference value is refused with its index")
    func nonFinite() throws {
        let error = try #require(throws: VerificationError.self) {
            _ = try Golden(input: [0, 0, 0], inputShape: [1, 3, 1, 1], logits: [1, .infinity, 3], logitsShape: [1, 3])
        }
        #expect(error.kind == .nonFinite(name: "logits", index: 1))
    }

    @Test("Features and feature maps are compared row by row, and their absence or shape is checked")
    func features() throws {
        let golden = try Golden(input: [Float](repeating: 0, count: 6), inputShape: [2, 3, 1, 1],
                                logits: [1, 2], logitsShape: [2, 1],
                                featureMap: [1, 2, 3, 4, 5, 6, 7, 8], featureMapShape: [2, 1, 2, 2])
        var computed: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
        computed[7] = 8.5
        let report = try Verifier.compare(computed: computed, shape: [2, 1, 2, 2], golden: golden, output: .featureMap,
                                          criterion: Criterion(rtol: 1.0 / 16))
        #expect(report.output == .featureMap)
        #expect(report.classes == 4)
        #expect(report.perSample[1].maxAbsError == 0.5)
        #expect(report.perSample[1].tolerance == 0.5)
        #expect(report.passed)
        #expect(report.float64Reference == nil)

        let absent = try #require(throws: VerificationError.self) {
            _ = try Verifier.compare(computed: [1, 2], shape: [2, 1], golden: golden, output: .features)
        }
        #expect(absent.kind == .missingTensor("features"))
        let wrong = try #require(throws: VerificationError.self) {
            _ = try Verifier.compare(computed: [1, 2, 3, 4], shape: [2, 2], golden: golden)
        }
        #expect(wrong.kind == .shapeMismatch(name: "logits", computed: [2, 2], reference: [2, 1]))
        #expect(wrong.description == "computed logits have shape [2, 2], the golden's have [2, 1]")
    }

    @Test("A headless backbone's golden holds features and a feature map instead of logits")
    func headless() throws {
        let path = try writeSafeTensors([
            ("input", .float32, [1, 3, 2, 2], bytes([Float](repeating: 0.5, count: 12))),
            ("features", .float32, [1, 2], bytes([3, 4] as [Float])),
            ("features_f64", .float64, [1, 2], bytes([3, 4] as [Double])),
            ("feature_map", .float32, [1, 2, 1, 1], bytes([3, 4] as [Float])),
        ])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let golden = try Golden.load(path: path)
        #expect(golden.logits == nil && golden.classes == nil)
        #expect(golden.outputs == [.features, .featureMap])
        #expect(golden.primaryOutput == .features)
        #expect(golden.featuresF64 == [3, 4])
        #expect(golden.featureMapF64 == nil)
        let report = try Verifier.compare(computed: [3, 4.5], shape: [1, 2], golden: golden, output: .features)
        #expect(report.output == .features)
        #expect(report.perSample[0].maxRelError == 0.125)
        #expect(report.float64Reference?.pytorchMaxAbsError == 0)
        #expect(report.float64Reference?.computedMaxAbsError == 0.5)
        #expect(!report.passed)
    }

    @Test("A float64 run must have its output's shape")
    func float64Shape() throws {
        let error = try #require(throws: VerificationError.self) {
            _ = try Golden(tensors: [
                NamedTensor(name: "input", tensor: record(.float32, [1, 3, 1, 1], bytes([0, 0, 0] as [Float]))),
                NamedTensor(name: "logits", tensor: record(.float32, [1, 2], bytes([1, 2] as [Float]))),
                NamedTensor(name: "logits_f64", tensor: record(.float64, [2, 1], bytes([1, 2] as [Double]))),
            ], file: "g.pth")
        }
        #expect(error.kind == .badShape(name: "logits_f64", shape: [2, 1], expected: "the shape of logits, [1, 2]"))
    }

    struct ManifestEntry: Decodable {
        var name: String
        var golden: String
        var input_shape: [Int]
        var output_shape: [Int]
        var feature_map_shape: [Int]?
        var golden_keys: [String]
    }

    @Test("Every golden PyTorch wrote loads with the shapes its manifest states, and PyTorch's float32 is within the tolerance of its float64 run")
    func pytorchGoldens() throws {
        // A missing folder would make the loop below check nothing: the goldens must be there.
        #expect(FixturePaths.goldens.count >= 10, "Fixtures/models/*.golden.pth")
        let manifestPath = FixturePaths.fixtures.appendingPathComponent("models/manifest.json")
        let manifest = try JSONDecoder().decode([ManifestEntry].self, from: Data(contentsOf: manifestPath))
        #expect(manifest.count == FixturePaths.goldens.count)
        for entry in manifest {
            let path = FixturePaths.fixtures.appendingPathComponent("models").appendingPathComponent(entry.golden).path
            let golden = try Golden.load(path: path)
            #expect(golden.inputShape == entry.input_shape, "\(entry.name)")
            #expect(golden.input.count == entry.input_shape.reduce(1, *), "\(entry.name)")
            if entry.golden_keys.contains("logits") {
                #expect(golden.primaryOutput == .logits, "\(entry.name)")
                #expect(golden.logitsShape == entry.output_shape, "\(entry.name)")
                #expect(golden.logitsF64 != nil, "\(entry.name)")
            } else {
                #expect(golden.logits == nil, "\(entry.name)")
                #expect(golden.featuresShape == entry.output_shape, "\(entry.name)")
                #expect(golden.featureMapShape == entry.feature_map_shape, "\(entry.name)")
            }
            for output in golden.outputs {
                let (values, shape, float64) = try #require(golden.output(output))
                let report = try Verifier.compare(computed: values, shape: shape, golden: golden, output: output)
                #expect(report.passed && report.maxAbsError == 0, "\(entry.name) \(output)")
                let f64 = try #require(report.float64Reference, "\(entry.name) \(output)")
                #expect(float64 != nil)
                #expect(f64.pytorchMaxRelError < Criterion.default.rtol / 4, "\(entry.name) \(output): \(f64.pytorchMaxRelError)")
            }
        }
    }

    @Test("The resnet18-shaped golden holds 2 samples of 10 logits, PyTorch's float32 within 1e-6 of float64",
          .enabled(if: FileManager.default.fileExists(atPath: FixturePaths.golden("tiny-basic-r18ish")), "golden not generated yet"))
    func r18ish() throws {
        let golden = try Golden.load(path: FixturePaths.golden("tiny-basic-r18ish"))
        #expect(golden.inputShape == [2, 3, 64, 64])
        #expect(golden.logitsShape == [2, 10])
        #expect(golden.classes == 10)
        #expect(golden.outputs == [.logits])
        let logits = try #require(golden.logits)
        let report = try Verifier.compare(computed: logits, shape: [2, 10], golden: golden)
        let f64 = try #require(report.float64Reference)
        #expect(f64.pytorchMaxRelError > 0 && f64.pytorchMaxRelError < 1e-6)
    }

    @Test("A headless backbone golden from PyTorch has features and a feature map but no logits",
          .enabled(if: FileManager.default.fileExists(atPath: FixturePaths.golden("tiny-headless")), "golden not generated yet"))
    func pytorchHeadless() throws {
        let golden = try Golden.load(path: FixturePaths.golden("tiny-headless"))
        #expect(golden.outputs == [.features, .featureMap])
        #expect(golden.featuresShape == [2, 64])
        #expect(golden.featureMapShape == [2, 64, 2, 2])
        #expect(golden.featuresF64?.count == 128)
        #expect(golden.featureMapF64?.count == 512)
    }
}

/// A contiguous tensor record over `bytes`.
func record(_ dtype: DType, _ shape: [Int], _ bytes: [UInt8]) -> TensorRecord {
    TensorRecord(dtype: dtype, shape: shape, bytes: ByteSlice(owner: FileBytes.owned(bytes)))!
}
