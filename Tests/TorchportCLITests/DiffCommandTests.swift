import Foundation
import Testing
import TorchportCore

@Suite("torchport diff")
struct DiffCommandTests {
    static let model = CLIRunner.fixture("models/tiny-basic-r18ish.pth")

    @Test("A checkpoint and its conversion are the same (exit 0); a float16 cast differs (exit 1) unless a tolerance allows it")
    func conversionAndCast() throws {
        try ConvertCommandTests.withFolder { folder in
            let exact = folder + "/exact.safetensors", half = folder + "/half.safetensors"
            #expect(try CLIRunner.run("convert", Self.model, "-o", exact).status == 0)
            #expect(try CLIRunner.run("convert", Self.model, "-o", half, "--dtype", "float16").status == 0)
            let same = try CLIRunner.run("diff", Self.model, exact)
            #expect(same.status == 0, "\(same.stdout)\(same.stderr)")
            #expect(same.stdout.hasPrefix("SAME: 102 tensors in both (102 identical), 0 only in A, 0 only in B"), "\(same.stdout)")
            let cast = try CLIRunner.run("diff", Self.model, half)
            #expect(cast.status == 1)
            #expect(cast.stdout.contains("DIFFERENT  fc.bias  dtype float32 -> float16  max|d| "), "\(cast.stdout)")
            let close = try CLIRunner.run("diff", Self.model, half, "--rtol", "1e-3", "--atol", "1e-4", "--json")
            #expect(close.status == 0, "\(close.stdout)")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(close.stdout.utf8)) as? [String: Any])
            #expect(doc["same"] as? Bool == true && doc["identical"] as? Int == 0)
            let tensors = try #require(doc["tensors"] as? [[String: Any]])
            #expect(tensors.count == 102)
            #expect(tensors.allSatisfy { $0["dtype_b"] as? String == "float16" && $0["within_tolerance"] as? Bool == true })
        }
    }

    @Test("Different models: names on one side only and shape differences; a missing file exits 2")
    func differentModels() throws {
        let r = try CLIRunner.run("diff", Self.model, CLIRunner.fixture("models/tiny-wide.pth"), "--json")
        #expect(r.status == 1)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect((doc["only_in_a"] as? [String])?.count == 30 && (doc["only_in_b"] as? [String])?.count == 30)
        let fc = try #require((doc["tensors"] as? [[String: Any]])?.first { $0["name"] as? String == "fc.weight" })
        #expect(fc["shape_a"] as? [Int] == [10, 48] && fc["shape_b"] as? [Int] == [3, 128])
        let missing = try CLIRunner.run("diff", Self.model, "/nonexistent/model.pth")
        #expect(missing.status == 2)
        #expect(missing.stderr.hasPrefix("error: "))
        #expect(try CLIRunner.run("diff", Self.model, Self.model, "--rtol", "-1").status == 64)
    }

    @Test("Any model and any layout: a training checkpoint of a ViT is the same as its conversion; a folder of shards reads as one")
    func anyModel() throws {
        try ConvertCommandTests.withFolder { folder in
            let vit = CLIRunner.fixture("formats/training-vit.pth"), out = folder + "/vit.safetensors"
            #expect(try CLIRunner.run("convert", vit, "-o", out).status == 0)
            let r = try CLIRunner.run("diff", vit, out, "--json")
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            #expect(doc["same"] as? Bool == true && (doc["identical"] as? Int ?? 0) > 0 && (doc["only_in_a"] as? [String])?.isEmpty == true)
        }
        let shards = try CLIRunner.run("diff", CLIRunner.fixture("formats/sharded-bin"), CLIRunner.fixture("formats/sharded-bin"))
        #expect(shards.status == 0 && shards.stdout.hasPrefix("SAME: "), "\(shards.stdout)\(shards.stderr)")
    }
}
