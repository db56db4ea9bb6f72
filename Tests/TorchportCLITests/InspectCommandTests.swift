import Foundation
import Testing
import TorchportCore

@Suite("torchport inspect, run as a user would")
struct InspectCommandTests {
    @Test("Text output names the format, the wrapped structure, every tensor and the totals")
    func textReport() throws {
        let r = try CLIRunner.run("inspect", CLIRunner.fixture("checkpoints/training-checkpoint.pth"))
        #expect(r.status == 0)
        #expect(r.stdout.contains("format:    zip (archive folder 'archive')"))
        #expect(r.stdout.contains("args: argparse.Namespace"))
        #expect(r.stdout.contains("epoch: 3"))
        #expect(r.stdout.contains("model.layer1.0.conv1.weight"))
        #expect(r.stdout.contains("optimizer.state.0.momentum_buffer"))
        let expected = try JSONDecoder().decode(ExpectedCount.self, from: Data(contentsOf: URL(fileURLWithPath:
            CLIRunner.fixture("checkpoints/training-checkpoint.expected.json"))))
        #expect(r.stdout.contains("total: \(expected.tensors.count) tensors"))
    }

    @Test("Non-contiguous tensors show their strides; the legacy format is named")
    func stridesAndLegacy() throws {
        let views = try CLIRunner.run("inspect", CLIRunner.fixture("checkpoints/views.pth"))
        #expect(views.stdout.contains("[8, 4, 3, 3] stride (36, 1, 12, 4)"))
        let legacy = try CLIRunner.run("inspect", CLIRunner.fixture("checkpoints/tiny-resnet-basic-legacy.pth"))
        #expect(legacy.status == 0)
        #expect(legacy.stdout.contains("format:    legacy"))
    }

    @Test("--json lists each tensor with name, dtype and shape, matching torch's expectations")
    func jsonReport() throws {
        let r = try CLIRunner.run("inspect", "--json", CLIRunner.fixture("checkpoints/dtypes.pth"))
        #expect(r.status == 0)
        let report = try JSONDecoder().decode(Report.self, from: Data(r.stdout.utf8))
        let expected = try JSONDecoder().decode(ExpectedCount.self, from: Data(contentsOf: URL(fileURLWithPath:
            CLIRunner.fixture("checkpoints/dtypes.expected.json"))))
        #expect(report.format == "zip")
        #expect(report.tensors.map(\.name) == expected.tensors.map(\.name))
        #expect(report.tensors.map(\.dtype) == expected.tensors.map(\.dtype))
        #expect(report.tensors.map(\.shape) == expected.tensors.map(\.shape))
        #expect(report.total_tensors == expected.tensors.count)
    }

    @Test("A file naming os.system is refused: non-zero exit, the global and its offset on stderr")
    func refusedFile() throws {
        let typo = try CLIRunner.run("inspct", CLIRunner.fixture("hostile/cases/global-os-system.pth"))
        #expect(typo.status == 2)
        #expect(typo.stderr == "error: unknown command 'inspct'; did you mean 'inspect'?\n")

        let r = try CLIRunner.run("inspect", CLIRunner.fixture("hostile/cases/global-os-system.pth"))
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("error: "))
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("os.system"))
        #expect(r.stderr.contains("offset"))
    }

    struct ExpectedCount: Decodable {
        struct T: Decodable { let name: String; let dtype: String; let shape: [Int] }
        let tensors: [T]
    }
    struct Report: Decodable {
        struct T: Decodable { let name: String; let dtype: String; let shape: [Int] }
        let format: String
        let tensors: [T]
        let total_tensors: Int
    }
}

@Suite("The test runner itself")
struct CLIRunnerTests {
    @Test("A child that writes 1 MiB to standard error before standard output does not block the runner",
          .timeLimit(.minutes(1)))
    func bothPipesDrained() throws {
        let script = "head -c 1048576 /dev/zero >&2; head -c 70000 /dev/zero; echo done >&2"
        let r = try CLIRunner.run(["-c", script], executable: URL(fileURLWithPath: "/bin/sh"))
        #expect(r.status == 0)
        #expect(r.stdout.utf8.count == 70000)
        #expect(r.stderr.utf8.count == 1048576 + 5)
    }
}
