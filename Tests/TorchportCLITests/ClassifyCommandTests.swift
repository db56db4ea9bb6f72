import Foundation
import Testing
import Torchport
import TorchportCore

/// The image fixtures of `Fixtures/generate_images.py`: photos, decoder edge cases, and for each a
/// golden of torchvision's preprocessing (`pixels`, uint8) and tiny-basic-r18ish's `logits`.
enum ImageFixtures {
    static let root = CLIRunner.repoRoot.appendingPathComponent("Fixtures/images")
    static func path(_ name: String) -> String { root.appendingPathComponent(name).path }
    static let model = CLIRunner.repoRoot.appendingPathComponent("Fixtures/models/tiny-basic-r18ish.pth").path

    struct Entry: Decodable {
        let file: String
        let golden: String
        let top5: [Int]
        let has_input: Bool
    }
    struct Manifest: Decodable {
        let images: [Entry]
    }
    static let manifest: Manifest = {
        let data = try! Data(contentsOf: root.appendingPathComponent("manifest.json"))
        return try! JSONDecoder().decode(Manifest.self, from: data)
    }()
    static var names: [String] { manifest.images.map(\.file) }
    static func entry(_ name: String) -> Entry { manifest.images.first { $0.file == name }! }

    static func golden(_ name: String) throws -> Checkpoint {
        try Checkpoint(contentsOf: path(entry(name).golden))
    }

    static let loaded: ResNetModel = try! ResNetModel(contentsOf: model)

    static func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("torchport-classify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// Indices of the `k` largest values, largest first.
func topIndices(_ values: [Float], _ k: Int) -> [Int] {
    Array(values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(k))
}

@Suite("Preprocessing and logits match torchvision + torch on real photos")
struct TorchvisionParityTests {
    @Test("Preprocessed pixels within 2/255 of torchvision's (before normalisation); same top-1 and top-5",
          arguments: ImageFixtures.names)
    func parity(_ name: String) throws {
        let golden = try ImageFixtures.golden(name)
        let image = try ImageDecoder().decode(contentsOf: ImageFixtures.path(name)).rgb
        let ours = try Preprocessing.imageNet.unitPixels(image)
        let pixels = try #require(golden.tensor(named: "pixels"))
        #expect(pixels.shape == [1, 3, 224, 224])
        let want = pixels.floats().map { $0 / 255 }
        #expect(ours.count == want.count)
        let maxDiff = zip(ours, want).map { abs($0 - $1) }.max() ?? .infinity
        #expect(maxDiff <= 2.0 / 255 + 1e-7, "\(name): max |ours - torchvision| = \(maxDiff * 255)/255")
        // In fact the 8-bit samples are identical (PIL's fixed-point resampling reproduced exactly).
        #expect(maxDiff == 0, "\(name): pixels differ by up to \(maxDiff * 255)/255")

        let output = try ImageFixtures.loaded.outputs(for: [image])
        let logits = output.values
        #expect(output.argmax() == [topIndices(logits, 1)[0]])
        let wantLogits = try #require(golden.tensor(named: "logits")).floats()
        #expect(topIndices(logits, 1) == topIndices(wantLogits, 1), "\(name): top-1")
        #expect(Set(topIndices(logits, 5)) == Set(topIndices(wantLogits, 5)), "\(name): top-5 set")
        #expect(topIndices(wantLogits, 5) == ImageFixtures.entry(name).top5)
        let scale = wantLogits.map(abs).max() ?? 1
        let logitDiff = zip(logits, wantLogits).map { abs($0 - $1) }.max() ?? .infinity
        #expect(logitDiff <= 1e-5 * scale, "\(name): max |logit difference| \(logitDiff) (scale \(scale))")
    }

    @Test("The normalised tensor equals torchvision's Normalize(ToTensor(...)) output")
    func normalisedInput() throws {
        for entry in ImageFixtures.manifest.images where entry.has_input {
            let golden = try ImageFixtures.golden(entry.file)
            let want = try #require(golden.tensor(named: "input")).floats()
            let image = try ImageDecoder().decode(contentsOf: ImageFixtures.path(entry.file)).rgb
            let ours = try Preprocessing.imageNet.tensor(image)
            let maxDiff = zip(ours, want).map { abs($0 - $1) }.max() ?? .infinity
            #expect(maxDiff <= 1e-6, "\(entry.file): max |d| \(maxDiff)")
        }
    }

    @Test("A golden with `input` is also a golden for `torchport verify`")
    func verifyCompatible() throws {
        let r = try CLIRunner.run("verify", ImageFixtures.model, "--golden", ImageFixtures.path("chelsea.golden.pth"))
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    }
}

@Suite("torchport classify, run as a user would")
struct ClassifyCommandTests {
    @Test("Text output: one block per image, the golden's top classes first, quiet stderr when piped")
    func text() throws {
        let r = try CLIRunner.run("classify", ImageFixtures.model, ImageFixtures.path("chelsea.png"),
                                  ImageFixtures.path("rocket.jpg"), "--top", "3")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.isEmpty, "progress must stay off when stderr is a pipe: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 9)
        #expect(lines.last == "engine: \(InferenceEngine.best.rawValue)")
        #expect(lines[0].hasPrefix(ImageFixtures.path("chelsea.png")))
        #expect(lines[0].contains("PNG 8-bit rgb 451x300"))
        let top = ImageFixtures.entry("chelsea.png").top5[0]
        #expect(lines[1].hasSuffix("class \(top)"))
        #expect(lines[4].contains("JPEG 8-bit rgb 640x427"))
    }

    @Test("--json: per image the top-K with probabilities; the order equals torch's")
    func json() throws {
        let names = ["coffee.png", "astronaut.png", "camera-16bit.png"]
        let r = try CLIRunner.run("classify", ImageFixtures.model, "--json", "-k", "5",
                                  ImageFixtures.path(names[0]), ImageFixtures.path(names[1]), ImageFixtures.path(names[2]))
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(json["classes"] as? Int == 10)
        #expect(json["engine"] as? String == InferenceEngine.best.rawValue)
        #expect((json["labels"] as? [String: Any])?["source"] as? String == "indices")
        let pre = try #require(json["preprocessing"] as? [String: Any])
        #expect(pre["resize"] as? Int == 256 && pre["crop"] as? Int == 224 && pre["interpolation"] as? String == "bilinear")
        let results = try #require(json["results"] as? [[String: Any]])
        #expect(results.count == 3)
        for (name, result) in zip(names, results) {
            #expect(result["image"] as? String == ImageFixtures.path(name))
            let top = try #require(result["top"] as? [[String: Any]])
            #expect(top.compactMap { $0["index"] as? Int } == ImageFixtures.entry(name).top5, "\(name)")
            let p = top.compactMap { $0["probability"] as? Double }
            #expect(p.count == 5 && zip(p, p.dropFirst()).allSatisfy { $0 >= $1 } && p.reduce(0, +) <= 1 + 1e-9)
        }
        #expect((json["failures"] as? [Any])?.isEmpty == true)
    }

    @Test("--save-logits writes `logits` N x C, equal to torch's logits of the same images")
    func saveLogits() throws {
        let dir = try ImageFixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("logits.safetensors").path
        let names = ["chelsea-gray.jpg", "rocket-cmyk.jpg", "coffee-palette.png"]
        let r = try CLIRunner.run("classify", ImageFixtures.model, ImageFixtures.path(names[0]), ImageFixtures.path(names[1]),
                                  ImageFixtures.path(names[2]), "--save-logits", out, "--batch", "2")
        #expect(r.status == 0, "\(r.stderr)")
        let saved = try SafeTensorsFile(contentsOf: out)
        let logits = try #require(saved.tensor(named: "logits"))
        #expect(logits.shape == [3, 10])
        let rows = logits.floats()
        for (i, name) in names.enumerated() {
            let want = try #require(try ImageFixtures.golden(name).tensor(named: "logits")).floats()
            let got = Array(rows[(i * 10)..<((i + 1) * 10)])
            let scale = want.map(abs).max() ?? 1
            #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1e-5 * scale }, "\(name)")
        }
        let images = try JSONSerialization.jsonObject(with: Data(try #require(saved.metadata["torchport.images"]).utf8)) as? [String]
        #expect(images == names.map(ImageFixtures.path))
    }

    @Test("Class names survive convert (torchport.classes) and classify uses them on the converted file",
          arguments: ["tiny-classes.pth", "tiny-idx-to-class.pth"])
    func convertedClassList(_ file: String) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("torchport-cls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let converted = folder + "/model.safetensors"
        let c = try CLIRunner.run("convert", ImageFixtures.path(file), "-o", converted)
        #expect(c.status == 0, "\(c.stderr)")
        let r = try CLIRunner.run("classify", converted, ImageFixtures.path("coffee.png"), "--json", "-k", "5")
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let labels = try #require(json["labels"] as? [String: Any])
        #expect(labels["source"] as? String == "checkpoint")
        #expect(labels["detail"] as? String == "metadata torchport.classes")
        let names = ["airplane", "automobile", "bird", "cat", "deer"]
        let top = try #require((json["results"] as? [[String: Any]])?.first?["top"] as? [[String: Any]])
        #expect(top.count == 5)
        for t in top { #expect(t["label"] as? String == (t["index"] as? Int).map { names[$0] }) }
    }

    @Test("Class names stored in a training checkpoint (`classes` list, `idx_to_class` dict) are used",
          arguments: [("tiny-classes.pth", "classes"), ("tiny-idx-to-class.pth", "idx_to_class")])
    func checkpointClassList(_ file: String, _ key: String) throws {
        let r = try CLIRunner.run("classify", ImageFixtures.path(file), ImageFixtures.path("coffee.png"), "--json", "-k", "5")
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let labels = try #require(json["labels"] as? [String: Any])
        #expect(labels["source"] as? String == "checkpoint")
        #expect(labels["detail"] as? String == key)
        let names = ["airplane", "automobile", "bird", "cat", "deer"]
        let top = try #require((json["results"] as? [[String: Any]])?.first?["top"] as? [[String: Any]])
        #expect(top.count == 5)
        for t in top {
            let i = try #require(t["index"] as? Int)
            #expect(t["label"] as? String == names[i])
        }
    }

    @Test("--labels FILE names the classes; a file with the wrong count is refused with exit 2")
    func labelsFile() throws {
        let dir = try ImageFixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("labels.txt")
        try ((0..<10).map { "label number \($0)" }.joined(separator: "\n") + "\n\n").write(to: good, atomically: true, encoding: .utf8)
        let r = try CLIRunner.run("classify", ImageFixtures.model, ImageFixtures.path("chelsea.png"), "--labels", good.path, "-k", "1")
        #expect(r.status == 0, "\(r.stderr)")
        let top = ImageFixtures.entry("chelsea.png").top5[0]
        #expect(r.stdout.contains("label number \(top) (\(top))"))
        let bad = dir.appendingPathComponent("three.txt")
        try "a\nb\nc\n".write(to: bad, atomically: true, encoding: .utf8)
        let refused = try CLIRunner.run("classify", ImageFixtures.model, ImageFixtures.path("chelsea.png"), "--labels", bad.path)
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("3 labels"))
    }

    @Test("A 1000-class model gets ImageNet's class names")
    func imageNetNames() throws {
        #expect(ClassLabels.imageNet.count == 1000)
        #expect(ClassLabels.imageNet[0] == "tench" && ClassLabels.imageNet[281] == "tabby" && ClassLabels.imageNet[999] == "toilet tissue")
        // tiny-basic-r18ish with its head replaced by 1000 outputs that always favour class 281.
        let dir = try ImageFixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try Checkpoint(contentsOf: ImageFixtures.model)
        var entries = source.tensors.filter { !$0.name.hasPrefix("fc.") && !$0.name.hasSuffix("num_batches_tracked") }
            .map { SafeTensorsWriter.Entry(name: $0.name, dtype: $0.tensor.dtype, shape: $0.tensor.shape, bytes: $0.tensor.contiguousBytes()) }
        let features = try #require(source.tensor(named: "fc.weight")).shape[1]
        var bias = [Float](repeating: 0, count: 1000)
        bias[281] = 10
        entries.append(.init(name: "fc.weight", dtype: .float32, shape: [1000, features],
                             bytes: [UInt8](repeating: 0, count: 1000 * features * 4)))
        entries.append(.init(name: "fc.bias", dtype: .float32, shape: [1000], bytes: bias.withUnsafeBytes { Array($0) }))
        let path = dir.appendingPathComponent("imagenet-head.safetensors").path
        try SafeTensorsWriter.write(entries, to: path)
        let r = try CLIRunner.run("classify", path, ImageFixtures.path("chelsea.png"), "-k", "2")
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines[1].hasSuffix("tabby (281)"))
        // softmax: e^10 / (e^10 + 999) = 95.66%
        #expect(lines[1].contains("95.66"))
        #expect(lines[2].hasSuffix("tench (0)"))
    }

    @Test("Failures are listed at the end without stopping the others; the exit status is 2")
    func failures() throws {
        let dir = try ImageFixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: ImageFixtures.path("rocket.jpg")))
        let truncated = dir.appendingPathComponent("truncated.jpg")
        try jpeg.prefix(jpeg.count / 2).write(to: truncated)
        let empty = dir.appendingPathComponent("empty.png")
        try Data().write(to: empty)
        let r = try CLIRunner.run("classify", ImageFixtures.model, ImageFixtures.path("chelsea.png"), truncated.path,
                                  "/nonexistent/photo.jpg", empty.path, ImageFixtures.path("manifest.json"),
                                  ImageFixtures.path("coffee.png"), "--json")
        #expect(r.status == 2)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let results = try #require(json["results"] as? [[String: Any]])
        #expect(results.compactMap { $0["image"] as? String } == [ImageFixtures.path("chelsea.png"), ImageFixtures.path("coffee.png")])
        let failures = try #require(json["failures"] as? [[String: String]])
        #expect(failures.count == 4)
        #expect(r.stderr.contains("4 of 6 images could not be classified"))
        #expect(r.stderr.contains("truncated image"))
        #expect(r.stderr.contains("no such file"))
        #expect(r.stderr.contains("empty file"))
        #expect(r.stderr.contains("not a JPEG or PNG image"))
    }

    @Test("A directory is searched for images; --progress forces progress on stderr")
    func directory() throws {
        let r = try CLIRunner.run("classify", ImageFixtures.model, ImageFixtures.root.path, "--json", "-k", "1",
                                  "--progress", "--batch", "4")
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let results = try #require(json["results"] as? [[String: Any]])
        #expect(results.count == ImageFixtures.names.count)
        let images = results.compactMap { $0["image"] as? String }
        #expect(images == images.sorted())
        for result in results {
            let name = URL(fileURLWithPath: result["image"] as! String).lastPathComponent
            let top = (result["top"] as? [[String: Any]])?.first?["index"] as? Int
            #expect(top == ImageFixtures.entry(name).top5[0], "\(name)")
        }
        #expect(r.stderr.contains("classified \(ImageFixtures.names.count)/\(ImageFixtures.names.count) images"))
    }

    @Test("Preprocessing options change the input: --resize, --crop, --interpolation, --mean, --std")
    func options() throws {
        let image = ImageFixtures.path("astronaut.png")
        let base = try CLIRunner.run("classify", ImageFixtures.model, image, "--json")
        let other = try CLIRunner.run("classify", ImageFixtures.model, image, "--json", "--resize", "232", "--crop", "0",
                                      "--interpolation", "bicubic", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25")
        #expect(base.status == 0 && other.status == 0, "\(other.stderr)")
        #expect(base.stdout != other.stdout)
        #expect(other.stdout.contains("\"crop\" : null") || !other.stdout.contains("\"crop\" : 224"))
        let bad = try CLIRunner.run("classify", ImageFixtures.model, image, "--mean", "0.5,0.5")
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("three"))
        let zeroStd = try CLIRunner.run("classify", ImageFixtures.model, image, "--std", "1,0,1")
        #expect(zeroStd.status != 0)
        #expect(try CLIRunner.run("classify", ImageFixtures.model, image, "--top", "0").status != 0)
    }

    @Test("A model that cannot classify (headless) or cannot be read exits 2 with the reason")
    func unusableModel() throws {
        let headless = try CLIRunner.run("classify", CLIRunner.fixture("models/tiny-headless.pth"), ImageFixtures.path("chelsea.png"))
        #expect(headless.status == 2)
        #expect(headless.stderr.contains("no classification head"))
        let missing = try CLIRunner.run("classify", "/nonexistent/model.pth", ImageFixtures.path("chelsea.png"))
        #expect(missing.status == 2)
    }

    @Test("--help explains the preprocessing and shows examples")
    func help() throws {
        let r = try CLIRunner.run("classify", "--help")
        #expect(r.status == 0)
        #expect(r.stdout.contains("Examples:"))
        #expect(r.stdout.contains("torchport classify resnet50.pth"))
        #expect(r.stdout.contains("--save-logits"))
    }
}

