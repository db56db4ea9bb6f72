import ArgumentParser
import Foundation
import Torchport
import TorchportCore

struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every global a checkpoint's pickles reference and say whether loading it in Python would run code.",
        discussion: """
            Reads the pickles of each file (zip data.pkl and every other .pkl entry, the sections of a \
            legacy stream, a bare pickle) opcode by opcode, without building values or tensors, and \
            lists each global (GLOBAL, STACK_GLOBAL, INST, EXT1/2/4) with how Torchport treats it:
              interpreted  implemented by Torchport (tensor rebuild functions, storages, OrderedDict, ...)
              inert        kept as a data record, never called (argparse.Namespace, __torch__.* classes)
              framework    a torch.nn / torchvision module class of a whole-model pickle (torch.save(model)): \
            a data record for Torchport; torch.load runs torch's own code for it, not the file's
              refused      on neither allowlist: Torchport refuses the file
            and whether torch.load(weights_only=False) would run code for it (executes-code: a known \
            primitive such as os.system or builtins.eval; unknown-import: an arbitrary module would be \
            imported and called; unresolved: a reference only running the pickle could resolve). \
            Unlike the reader, the scan does not stop at the first refused global. It follows \
            torch.load's own dispatch: a zip when the file starts with a local header, else the \
            pre-0.4 tar format when Python's tarfile accepts it, else pickles from byte 0 (a legacy \
            stream when the first is the magic number as CPython reads it). \
            DANGEROUS also covers TorchScript archives (torch.load hands them to torch.jit.load, which \
            runs their code) and BUILD on a class (it rewrites library classes). AMBIGUOUS: torch.load \
            and Torchport could read different bytes (entries that differ only in case, several end \
            records, a frame across a legacy pickle's end); every candidate was scanned.

            Exit status: 0 every file is safe, 1 at least one file is dangerous or ambiguous, 2 \
            otherwise at least one file could not be read far enough to tell.

            Example:
              torchport scan downloads/*.pth
              torchport scan model.pt --json | jq '.files[].verdict'
            """)

    @Argument(help: "Checkpoints to scan (.pth / .pt / .pkl; zip, legacy, TorchScript or a bare pickle).",
              completion: .file())
    var files: [String]

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(help: "In text output, list interpreted and inert globals too (default: only refused ones and a count).")
    var all = false

    func run() throws {
        let reports = files.map { PickleScanner.scan(path: $0) }
        let summary = ScanSummary(reports)
        if json {
            try printJSON(ScanJSON(files: reports.map(ScanFileJSON.init), summary: summary))
        } else {
            for r in reports { print(text(r)) }
            if reports.count > 1 {
                print("\(summary.files) files: \(summary.safe) safe, \(summary.dangerous) dangerous, "
                      + "\(summary.ambiguous) ambiguous, \(summary.unreadable) unreadable")
            }
        }
        if summary.dangerous > 0 || summary.ambiguous > 0 { throw ExitCode(1) }
        if summary.unreadable > 0 { throw ExitCode(2) }
    }

    /// Names, entries and messages come from the file: control characters and other invisible
    /// ones are escaped, so a name cannot redraw the verdict line on a terminal.
    private func text(_ r: PickleScanReport) -> String {
        var lines = ["\(r.file.terminalSafe): \(r.verdict.rawValue.uppercased()) (\(r.format.rawValue))"]
        for risk in r.risks {
            lines.append("  \(risk.kind.rawValue): \(risk.detail)  [\(risk.entry)\(risk.offset.map { " @\($0)" } ?? "")]".terminalSafe)
        }
        for a in r.ambiguities { lines.append("  ambiguous: \(a)".terminalSafe) }
        if let e = r.error { lines.append("  unreadable: \(e)".terminalSafe) }
        let groups = ScanFileJSON.group(r.globals)
        let shown = all ? groups : groups.filter { $0.classification != GlobalClassification.interpreted.rawValue
                                                    && $0.classification != GlobalClassification.inert.rawValue }
        for g in shown {
            let at = g.locations.first.map { "\($0.entry) @\($0.offset) \($0.opcode)" } ?? ""
            let count = g.count > 1 ? " (x\(g.count))" : ""
            lines.append(("  \(g.classification.padding(toLength: 11, withPad: " ", startingAt: 0)) "
                          + "\(g.risk.padding(toLength: 14, withPad: " ", startingAt: 0)) \(g.global)\(count)  [\(at)]"
                          + (g.afterStop ? "  after STOP" : "")).terminalSafe)
        }
        let interpreted = groups.filter { $0.classification == GlobalClassification.interpreted.rawValue }.count
        let inert = groups.filter { $0.classification == GlobalClassification.inert.rawValue }.count
        let framework = groups.filter { $0.classification == GlobalClassification.framework.rawValue }.count
        let refused = groups.count - interpreted - inert - framework
        lines.append("  \(groups.count) distinct globals: \(interpreted) interpreted, \(inert) inert, "
                     + (framework > 0 ? "\(framework) framework (torch/torchvision module classes), " : "") + "\(refused) refused"
                     + "; \(r.pickles.count) pickle\(r.pickles.count == 1 ? "" : "s") scanned")
        if !r.torchScriptCode.isEmpty {
            lines.append(("  TorchScript code (never executed by Torchport): "
                          + r.torchScriptCode.prefix(5).joined(separator: ", ")
                          + (r.torchScriptCode.count > 5 ? ", ... \(r.torchScriptCode.count - 5) more" : "")).terminalSafe)
        }
        for n in r.notes { lines.append("  note: \(n)".terminalSafe) }
        return lines.joined(separator: "\n")
    }
}

struct ScanSummary: Encodable {
    let files: Int
    let safe: Int
    let dangerous: Int
    let ambiguous: Int
    let unreadable: Int

    init(_ reports: [PickleScanReport]) {
        files = reports.count
        safe = reports.filter { $0.verdict == .safe }.count
        dangerous = reports.filter { $0.verdict == .dangerous }.count
        ambiguous = reports.filter { $0.verdict == .ambiguous }.count
        unreadable = reports.filter { $0.verdict == .unreadable }.count
    }
}

private struct ScanJSON: Encodable {
    let files: [ScanFileJSON]
    let summary: ScanSummary
}

private struct ScanFileJSON: Encodable {
    struct Location: Encodable {
        let entry: String
        let offset: Int
        let opcode: String
    }
    struct Global: Encodable {
        let global: String
        let module: String
        let name: String
        let classification: String
        let risk: String
        let dangerous: Bool
        let afterStop: Bool
        let count: Int
        /// The first 20 places it is referenced.
        let locations: [Location]
    }
    let file: String
    let format: String
    let verdict: String
    let error: String?
    let globals: [Global]
    let pickles: [ScannedPickle]
    let torchscriptCode: [String]
    let risks: [ScanRisk]
    let ambiguities: [String]
    let notes: [String]

    init(_ r: PickleScanReport) {
        file = r.file
        format = r.format.rawValue
        verdict = r.verdict.rawValue
        error = r.error
        globals = Self.group(r.globals)
        pickles = r.pickles
        torchscriptCode = r.torchScriptCode
        risks = r.risks
        ambiguities = r.ambiguities
        notes = r.notes
    }

    /// One row per distinct global (in order of first reference), with where it appears.
    static func group(_ all: [ScannedGlobal]) -> [Global] {
        var order: [String] = []
        var rows: [String: [ScannedGlobal]] = [:]
        for g in all {
            let k = "\(g.module)\n\(g.name)\n\(g.afterStop)"
            if rows[k] == nil { order.append(k) }
            rows[k, default: []].append(g)
        }
        return order.compactMap { k in
            guard let gs = rows[k], let g = gs.first else { return nil }
            return Global(global: g.qualifiedName, module: g.module, name: g.name, classification: g.classification.rawValue,
                          risk: g.risk.rawValue, dangerous: g.dangerous, afterStop: g.afterStop, count: gs.count,
                          locations: gs.prefix(20).map { Location(entry: $0.entry, offset: $0.offset, opcode: $0.opcode) })
        }
    }
}

extension String {
    /// Control characters (C0, DEL, C1), and the bidirectional and zero-width format characters,
    /// as `\u{XX}` escapes; everything else as it is.
    var terminalSafe: String {
        var out = ""
        for scalar in unicodeScalars {
            let v = scalar.value
            let invisible = v < 0x20 || (0x7F...0x9F).contains(v) || (0x200B...0x200F).contains(v)
                || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v) || v == 0xFEFF
            if invisible { out += "\\u{\(String(v, radix: 16))}" } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }
}
