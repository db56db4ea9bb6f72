import Foundation
import Testing

/// `torchport inspect` and `convert` on checkpoints of any model and in every layout, run as a user would.
@Suite("torchport convert and inspect, any model")
struct ConvertAnyCommandTests {
    static func formats(_ name: String) -> String { CLIRunner.fixture("formats/" + name) }

    @Test("inspect speaks of any model: '5.6K parameters', the state dict's size, what is dropped and kept")
    func inspectAnyModel() throws {
        let r = try CLIRunner.run("inspect", Self.formats("training-vit.pth"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("model:     a state dict (not a ResNet)"))
        #expect(r.stdout.contains("5.6K parameters, 20 tensors, 21.9 KiB"))
        #expect(r.stdout.contains("- unwrapped 'model'"))
        #expect(r.stdout.contains("- dropped 'optimizer' (optimizer state: 20 tensors)"))
        #expect(r.stdout.contains("- kept epoch, args, classes as JSON metadata"))
        #expect(r.stdout.contains("classes:   10: apple, banana, cherry, date, elderberry, ..."))
        let dcp = try CLIRunner.run("inspect", Self.formats("dcp"))
        #expect(dcp.status == 0, "\(dcp.stderr)")
        #expect(dcp.stdout.contains("format:    distributed-checkpoint"))
        #expect(dcp.stdout.contains("decoder.weight  float64   [3, 8]"))
    }

    @Test("verify, and convert --golden, take a distributed checkpoint folder of a ResNet (conv weights sharded over 2 ranks)")
    func verifyDistributed() throws {
        let r = try CLIRunner.run("verify", Self.formats("dcp-resnet"), "--golden", Self.formats("dcp-resnet.golden.pth"))
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("PASS: 2 of 2 samples"))
        try ConvertCommandTests.withFolder { folder in
            let c = try CLIRunner.run("convert", Self.formats("dcp-resnet"), "-o", folder + "/r.safetensors",
                                      "--golden", Self.formats("dcp-resnet.golden.pth"))
            #expect(c.status == 0, "\(c.stderr)")
            #expect(c.stdout.contains("5 classes, 74 tensors"))
        }
    }

    @Test("convert of a folder layout, --include/--exclude, --max-shard-size, and a bad size refused before any work")
    func convertLayouts() throws {
        try ConvertCommandTests.withFolder { folder in
            let one = try CLIRunner.run("convert", Self.formats("dcp"), "-o", folder + "/dcp.safetensors", "--json")
            #expect(one.status == 0, "\(one.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(one.stdout.utf8)) as? [String: Any])
            #expect(json["tensors"] as? Int == 4 && json["source_format"] as? String == "distributed-checkpoint")
            #expect(json["arch"] == nil)

            let picked = try CLIRunner.run("convert", Self.formats("sharded-bin"), "-o", folder + "/picked.safetensors",
                                           "--include", "features.*", "--exclude", "*.num_batches_tracked")
            #expect(picked.status == 0, "\(picked.stderr)")
            #expect(picked.stdout.contains("selected by --include features.* and --exclude *.num_batches_tracked"))

            let sharded = try CLIRunner.run("convert", Self.formats("vit-tiny.pth"), "-o", folder + "/shards", "--max-shard-size", "10KB")
            #expect(sharded.status == 0, "\(sharded.stderr)")
            #expect(ConvertCommandTests.contents(folder + "/shards").last == "model.safetensors.index.json")
            let bad = try CLIRunner.run("convert", Self.formats("vit-tiny.pth"), "-o", folder + "/x", "--max-shard-size", "lots")
            #expect(bad.status == 64)
            #expect(!FileManager.default.fileExists(atPath: folder + "/x"))
        }
    }
}
