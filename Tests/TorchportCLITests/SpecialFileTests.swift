import Foundation
import Testing
import TorchportCore

/// Inputs that are not regular files, or are empty: every command answers at once, names the
/// file and what it is, and leaves nothing behind.
@Suite("Special files as input")
struct SpecialFileTests {
    @Test("A FIFO: inspect, scan, convert and verify refuse it at once (no writer needed), and convert leaves no file",
          .timeLimit(.minutes(2)))
    func fifo() throws {
        try ConvertCommandTests.withFolder { folder in
            let fifo = folder + "/pipe.pth"
            #expect(mkfifo(fifo, 0o600) == 0)
            let golden = CLIRunner.fixture("models/tiny-basic-r18ish.golden.pth")
            for args in [["inspect", fifo], ["scan", fifo], ["convert", fifo, "-o", folder + "/out.safetensors"],
                         ["verify", fifo, "--golden", golden]] {
                let r = try CLIRunner.run(args)
                #expect(r.status != 0, "\(args[0]) accepted a FIFO")
                #expect((r.stdout + r.stderr).contains("a FIFO (named pipe), not a regular file"), "\(args[0]): \(r.stdout) \(r.stderr)")
            }
            #expect(ConvertCommandTests.contents(folder) == ["pipe.pth"])
        }
    }

    @Test("An empty file is called an empty file; a safetensors file with a byte-order mark is named as such")
    func emptyAndBOM() throws {
        try ConvertCommandTests.withFolder { folder in
            let empty = folder + "/empty.pth"
            #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
            let r = try CLIRunner.run("inspect", empty)
            #expect(r.status != 0)
            #expect(r.stderr.contains("an empty file (0 bytes)"), "\(r.stderr)")
            #expect(!r.stderr.contains("first byte"))

            let header = Array("\u{FEFF}{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}".utf8)
            var bytes: [UInt8] = withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init)
            bytes += header + [0, 0, 128, 63]
            let bom = folder + "/bom.safetensors"
            #expect(FileManager.default.createFile(atPath: bom, contents: Data(bytes)))
            let b = try CLIRunner.run("inspect", bom)
            #expect(b.status != 0)
            #expect(b.stderr.contains("byte-order mark"), "\(b.stderr)")
        }
    }

    @Test("Zero-stride views that would expand past the budget: convert refuses before writing, and leaves nothing")
    func expansion() throws {
        try ConvertCommandTests.withFolder { folder in
            let r = try CLIRunner.run("convert", CLIRunner.fixture("hostile/cases/redteam-zero-stride-resnet.pth"),
                                      "-o", folder + "/out.safetensors")
            #expect(r.status == 2)
            // fc.weight alone is 2,000,000 x 48 float32 beyond its one-float storage.
            let claimed = r.stderr.split(separator: " ").drop { $0 != "to" }.dropFirst().first.flatMap { Int($0) } ?? 0
            #expect(claimed >= 2_000_000 * 48 * 4 && claimed < 2_000_000 * 48 * 4 + 1_000_000, "\(r.stderr)")
            #expect(r.stderr.contains("bytes beyond their storages"))
            #expect(r.stderr.contains("268435456-byte budget"))
            #expect(ConvertCommandTests.contents(folder).isEmpty)
        }
    }
}
