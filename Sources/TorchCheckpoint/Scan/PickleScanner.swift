import Foundation
import TorchportCore

// MARK: - Report

/// How Torchport's allowlists treat a global a pickle references.
public enum GlobalClassification: String, Sendable, Codable {
    /// Given meaning by Torchport, implemented in Swift (tensor rebuild functions, storage classes,
    /// `OrderedDict`, `torch.Size`, ...).
    case interpreted
    /// Kept as a data record, never called (`argparse.Namespace`, TorchScript `__torch__.*` classes,
    /// numpy scalars).
    case inert
    /// A module class of torch or torchvision (`torch.nn.modules.conv.Conv2d`,
    /// `torchvision.models.resnet.ResNet`) of a whole-model pickle: an inert record for Torchport;
    /// `torch.load` imports torch's own module and restores the object with it, running torch's
    /// code, not code chosen by the file.
    case framework
    /// On neither list: Torchport refuses the file.
    case refused
}

/// Why a global would run code under `torch.load(weights_only=False)`.
public enum GlobalRisk: String, Sendable, Codable {
    /// A pure data reconstructor: unpickling it in Python runs no code beyond building data.
    case none
    /// A known code-execution primitive (`os.system`, `builtins.eval`, `subprocess.*`, `torch.load`,
    /// ...): calling it runs commands or code chosen by the file.
    case executesCode = "executes-code"
    /// Off the allowlist and not a known primitive: Python would import its module (running the
    /// module's code) and call or instantiate it with arguments chosen by the file.
    case unknownImport = "unknown-import"
    /// A reference that cannot be resolved without running the pickle (STACK_GLOBAL on values that
    /// are not literal strings, the EXT1/2/4 extension registry).
    case unresolved
}

/// One global reference found in a pickle.
public struct ScannedGlobal: Sendable, Codable, Equatable {
    /// The module part (`torch._utils`, `os`).
    public let module: String
    /// The name inside the module (`_rebuild_tensor_v2`, `system`).
    public let name: String
    /// The opcode that named it: GLOBAL, STACK_GLOBAL, INST, EXT1, EXT2 or EXT4.
    public let opcode: String
    /// The archive entry (or legacy stream section) holding the pickle.
    public let entry: String
    /// Byte offset of the opcode inside `entry` (inside the file for legacy streams).
    public let offset: Int
    /// What Torchport's reader makes of it (interpreted, inert, refused).
    public let classification: GlobalClassification
    /// What unpickling it in Python could do.
    public let risk: GlobalRisk
    /// True when found after the pickle's STOP (bytes torch.load would not unpickle).
    public let afterStop: Bool

    /// `module.name`.
    public var qualifiedName: String { "\(module).\(name)" }
    /// True when unpickling this in Python could run code.
    public var dangerous: Bool { risk != .none }
}

/// A way the file would run code or change the program under `torch.load(weights_only=False)`
/// that is not a global reference.
public struct ScanRisk: Sendable, Codable, Equatable {
    /// The kinds of risk besides globals.
    public enum Kind: String, Sendable, Codable {
        /// A TorchScript archive (its root folder holds `constants.pkl`): torch.load hands it to
        /// `torch.jit.load`, which compiles its `code/` entries and runs them (scripted
        /// `__setstate__` methods among them).
        case torchScriptCode = "torchscript-code"
        /// BUILD applied to a class itself, not an instance: unpickling sets attributes of a library
        /// class (for example `argparse.Namespace.dump_patches` and `__name__`, after which torch's
        /// legacy loader writes `<__name__>.patch` files).
        case classAttributeWrite = "class-attribute-write"
    }
    /// What kind of risk.
    public let kind: Kind
    /// What would happen, in words.
    public let detail: String
    /// The archive entry or stream section.
    public let entry: String
    /// Byte offset of the opcode, when one is to blame.
    public let offset: Int?
}

/// One pickle that was disassembled.
public struct ScannedPickle: Sendable, Codable, Equatable {
    /// The archive entry or stream section (`data.pkl`, `pickle:main`).
    public let entry: String
    /// The pickle protocol its PROTO opcode declares (0 or 1 without one).
    public let protocolVersion: Int
    /// Opcodes decoded.
    public let opcodes: Int
    /// Where the pickle stopped being decodable, when it did (the error names the offset).
    public let error: String?
}

/// What `PickleScanner` found in one file.
public struct PickleScanReport: Sendable, Codable {
    /// What a file was scanned as, following torch.load's own dispatch.
    public enum Format: String, Sendable, Codable {
        /// A zip checkpoint (`torch.save` since 1.6).
        case zip
        /// A TorchScript archive (`torch.jit.save`).
        case torchScript = "torchscript"
        /// A legacy stream (the magic number, then pickles and raw storages).
        case legacy
        /// A bare pickle stream.
        case pickle
        /// The pre-0.4 tar format.
        case tar
        /// A safetensors file (no pickle: nothing to run).
        case safetensors
        /// Not readable far enough to tell.
        case unknown
    }

    /// The scan's conclusion (`torchport scan` exits 0 for safe, 1 otherwise).
    public enum Verdict: String, Sendable, Codable {
        /// Every global is interpreted or inert: nothing in the file would run code.
        case safe
        /// At least one global, or another construct (``ScanRisk``), would run code under
        /// `torch.load(weights_only=False)`.
        case dangerous
        /// torch.load and Torchport could read different bytes from the file (entries differing
        /// only in case, several end records, a legacy stream whose next pickle depends on how
        /// CPython buffers a frame): every candidate was scanned and none is dangerous, but the
        /// file is flagged, never guessed.
        case ambiguous
        /// The file could not be decoded far enough to tell (and nothing dangerous was found first).
        case unreadable
    }

    /// The file, as the caller named it.
    public let file: String
    /// What the file was scanned as.
    public let format: Format
    /// The conclusion.
    public let verdict: Verdict
    /// Every pickle disassembled, in file order.
    public let pickles: [ScannedPickle]
    /// Every global reference found, in file order.
    public let globals: [ScannedGlobal]
    /// TorchScript `code/` entries: source torch.jit.load would compile; Torchport never runs them.
    public let torchScriptCode: [String]
    /// What would run code besides the globals.
    public let risks: [ScanRisk]
    /// Where torch.load and Torchport could read different bytes.
    public let ambiguities: [String]
    /// What else the scan noticed, in words.
    public let notes: [String]
    /// Why the file is unreadable, when it is.
    public let error: String?

    /// The globals that could run code.
    public var dangerousGlobals: [ScannedGlobal] { globals.filter(\.dangerous) }
}

// MARK: - Scanner

/// A static scanner: it disassembles every pickle of a file (zip `*.pkl` entries, the sections of a
/// legacy stream, a bare pickle) opcode by opcode and lists each global reference, without running
/// REDUCE or building any value. Unlike the reader, it does not stop at the first refused global.
///
/// It tracks only what it must to name globals: an abstract stack of "a string" or "something
/// else" (STACK_GLOBAL takes its module and name from the stack, possibly via the memo). Operands
/// are bounds checked like the reader's; work is bounded by `ReaderLimits.maxOps` and
/// `maxStackSize`. Decoding is as lenient as CPython's (frames are only a buffering hint, strings
/// with surrogates are accepted) so that nothing Python would run is skipped.
public enum PickleScanner {
    /// Scans the file at `url` (memory-mapped, never opened for writing).
    public static func scan(contentsOf url: URL, limits: ReaderLimits = ReaderLimits()) -> PickleScanReport {
        scan(path: url.path, limits: limits)
    }

    /// Scans the file at `path` (memory-mapped, never opened for writing).
    public static func scan(path: String, limits: ReaderLimits = ReaderLimits()) -> PickleScanReport {
        do {
            let bytes = try FileBytes.map(path: path)
            return scan(bytes: bytes, name: path, limits: limits)
        } catch {
            return PickleScanReport(file: path, format: .unknown, verdict: .unreadable, pickles: [], globals: [],
                                    torchScriptCode: [], risks: [], ambiguities: [], notes: [], error: "\(error)")
        }
    }

    /// Scans bytes held in memory (`name` is used in the report).
    public static func scan(bytes: [UInt8], name: String, limits: ReaderLimits = ReaderLimits()) -> PickleScanReport {
        scan(bytes: FileBytes.owned(bytes), name: name, limits: limits)
    }

    /// Follows torch.load's own dispatch: a zip when the file starts with a local header
    /// (`_is_zipfile`), else the pre-0.4 tar format when Python's `tarfile` accepts the first
    /// header, else a pickle stream read from byte 0 (a legacy stream when its first pickle is the
    /// magic number), whatever else the bytes look like.
    public static func scan(bytes file: FileBytes, name: String, limits: ReaderLimits = ReaderLimits()) -> PickleScanReport {
        var state = FileScan(name: name)
        let buf = file.bytes
        if buf.count >= 4, UInt32(littleEndian: buf.loadUnaligned(as: UInt32.self)) == ZipArchive.localHeaderSignature {
            state.scanZip(file, limits: limits)
        } else if buf.isEmpty {
            state.fatal = "an empty file"
        } else if TarHeader.pythonAccepts(buf) {
            state.scanTar(buf, limits: limits)
            // Scanned from byte 0 too: where Python's tarfile would still refuse the archive later,
            // torch.load unpickles the file itself.
            state.scanStream(buf, limits: limits, lenient: true)
            state.format = .tar
        } else if SafeTensorsSignature.matches(buf, fileSize: buf.count) {
            // torch.load has no safetensors reader: it would unpickle these bytes from byte 0.
            state.scanStream(buf, limits: limits, lenient: true)
            state.format = .safetensors
            state.notes.append("a safetensors file (JSON header, raw tensor data); torch.load would try to unpickle it "
                               + "from byte 0, and that was scanned too")
        } else {
            state.scanStream(buf, limits: limits)
        }
        return state.report()
    }


    /// Classifies a global as the reader would, and says whether Python would run code for it.
    /// `inTorchScript`: the pickle is read by `torch.jit.load`, whose unpickler resolves `__torch__.*`
    /// to compiled TorchScript classes; anywhere else Python imports a module named `__torch__` from
    /// `sys.path` (a folder of that name beside the checkpoint runs its code), an unknown import.
    public static func classify(module: String, name: String, inTorchScript: Bool = true) -> (GlobalClassification, GlobalRisk) {
        let valid = [module, name].allSatisfy { !$0.isEmpty && !$0.contains(where: { $0 == "\n" || $0 == "\0" || $0 == " " }) }
        let torchModule = module == "__torch__" || module.hasPrefix("__torch__.")
        if valid, !(torchModule && !inTorchScript), let role = Unpickler.allowlistRole(module: module, name: name) {
            switch role {
            case .inertClass: return (.inert, .none)
            case .moduleClass: return (.framework, .none)
            default: return (.interpreted, .none)
            }
        }
        return (.refused, isKnownCodeExecution(module: module, name: name) ? .executesCode : .unknownImport)
    }

    /// Modules whose every member can run code or touch the system, and single members elsewhere.
    static let codeModules: Set<String> = [
        "os", "posix", "nt", "subprocess", "sys", "socket", "shutil", "runpy", "pickle", "_pickle", "cPickle",
        "dill", "importlib", "pip", "bdb", "pdb", "webbrowser", "code", "codeop", "ctypes", "marshal", "types",
        "pty", "commands", "asyncio", "multiprocessing", "threading", "signal", "_thread", "thread", "imp",
        "inspect", "tempfile", "pathlib", "io", "_io", "urllib", "urllib2", "requests", "http", "httplib",
        "ftplib", "smtplib", "telnetlib", "xmlrpc", "zipimport", "pkgutil", "sysconfig", "distutils",
        "setuptools", "venv", "ensurepip", "gc", "weakref", "torch.hub", "torch.jit", "torch.package",
        "torch.utils.cpp_extension", "torch.serialization", "numpy.ctypeslib", "numpy.f2py",
    ]
    static let codeMembers: Set<String> = [
        "builtins.eval", "builtins.exec", "builtins.execfile", "builtins.compile", "builtins.getattr",
        "builtins.setattr", "builtins.delattr", "builtins.__import__", "builtins.open", "builtins.input",
        "builtins.globals", "builtins.locals", "builtins.vars", "builtins.breakpoint", "builtins.apply",
        "builtins.file", "builtins.reload", "builtins.__loader__", "builtins.memoryview", "builtins.type",
        "builtins.object", "builtins.help", "builtins.exit", "builtins.quit",
        "functools.partial", "functools.reduce", "operator.attrgetter", "operator.itemgetter",
        "operator.methodcaller", "operator.call", "copyreg.add_extension", "copy_reg.add_extension",
        "torch.load", "torch.storage._load_from_bytes", "torch._C._load_from_bytes", "torch.ops",
        "torch._dynamo", "torch.compile", "torch.save", "numpy.load", "numpy.save", "numpy.fromfile",
        "numpy.loadtxt", "numpy.genfromtxt", "numpy.memmap", "pandas.read_pickle", "joblib.load",
    ]

    static func isKnownCodeExecution(module: String, name: String) -> Bool {
        let m = module == "__builtin__" || module == "__builtins__" ? "builtins" : module
        let first = name.split(separator: ".", maxSplits: 1).first.map(String.init) ?? name
        var prefix = ""
        for part in m.split(separator: ".") {
            prefix = prefix.isEmpty ? String(part) : prefix + "." + part
            if codeModules.contains(prefix) { return true }
        }
        return codeMembers.contains("\(m).\(first)") || codeMembers.contains(m)
    }
}

/// The scan of one file, being built.
struct FileScan {
    let name: String
    var format = PickleScanReport.Format.unknown
    var pickles: [ScannedPickle] = []
    var globals: [ScannedGlobal] = []
    var code: [String] = []
    var risks: [ScanRisk] = []
    var ambiguities: [String] = []
    var notes: [String] = []
    /// Set when the file, or a pickle torch.load would read, could not be decoded.
    var fatal: String?
    /// torch.load would hand the file to torch.jit.load (decided before any pickle is scanned;
    /// see ``PickleScanner/classify(module:name:inTorchScript:)``).
    var torchScript = false

    init(name: String) { self.name = name }

    func report() -> PickleScanReport {
        let verdict: PickleScanReport.Verdict =
            globals.contains(where: \.dangerous) || !risks.isEmpty ? .dangerous
            : !ambiguities.isEmpty ? .ambiguous
            : fatal != nil ? .unreadable : .safe
        return PickleScanReport(file: name, format: format, verdict: verdict, pickles: pickles, globals: globals,
                                torchScriptCode: code, risks: risks, ambiguities: ambiguities, notes: notes, error: fatal)
    }

    mutating func scanZip(_ file: FileBytes, limits: ReaderLimits) {
        format = .zip
        let zip: ZipArchive
        do {
            zip = try ZipArchive(file: file, fileName: name, limits: limits, allowCaseTwins: true)
        } catch {
            if let e = error as? CheckpointError, case .zipAmbiguous(let why) = e.kind { ambiguities.append(why) }
            fatal = "\(error)"
            scanLocalHeaders(file.bytes, limits: limits)
            return
        }
        for twins in zip.caseTwins {
            ambiguities.append("entries \(twins.map { "'\($0)'" }.joined(separator: " and ")) differ only in case: torch's "
                               + "reader finds names case-insensitively and would read one of them; each was scanned")
        }
        // data.pkl, constants.pkl, and TorchScript's debug pickles (code/*.debug_pkl), in any case:
        // torch's reader would find `DATA.PKL` for `data.pkl`.
        let pkls = zip.entries.filter {
            let folded = ZipArchive.caseFolded($0.name)
            return folded.hasSuffix(".pkl") || folded.hasSuffix(".debug_pkl")
        }
        if !pkls.contains(where: { ZipArchive.caseFolded($0.name).hasSuffix(".pkl") }) { fatal = "no .pkl entry in the archive" }
        code = zip.entries.map(\.name).filter {
            $0.split(separator: "/").dropFirst().first == "code" && !$0.hasSuffix("/") && !$0.hasSuffix(".debug_pkl")
        }
        // torch.load's test (`_is_torchscript_zip`): a record `constants.pkl` in the archive's root
        // folder, the folder of its first entry.
        let root = zip.entries.first.map { String($0.name.prefix { $0 != "/" }) } ?? ""
        torchScript = zip.entry(named: root + "/constants.pkl") != nil
        if torchScript || !code.isEmpty { format = .torchScript }
        if torchScript {
            risks.append(ScanRisk(kind: .torchScriptCode,
                                  detail: "a TorchScript archive: torch.load hands it to torch.jit.load, which compiles and runs "
                                      + "its \(code.count) code/ entries (scripted __setstate__ among them); Torchport never runs them",
                                  entry: root + "/constants.pkl", offset: nil))
        } else if !code.isEmpty {
            notes.append("\(code.count) code/ entries, but no \(root)/constants.pkl: torch.load would unpickle data.pkl as a plain "
                         + "checkpoint (any __torch__ global then imports a Python module of that name)")
        }
        for entry in pkls {
            let data: ByteSlice
            do {
                data = try zip.data(of: entry, limits: limits)
            } catch {
                fatal = fatal ?? "\(error)"
                continue
            }
            data.withUnsafeBytes { buf in
                var pos = 0
                let end = scanPickle(buf, from: &pos, entry: entry.name, baseOffset: 0, limits: limits, afterStop: false)
                // torch.load reads one pickle per entry; whatever follows is reported, and scanned
                // when it is another pickle (other tools may read it).
                if end != nil, pos < buf.count {
                    notes.append("\(entry.name): \(buf.count - pos) bytes after STOP (not unpickled by torch.load)")
                    if buf[pos] == Op.proto {
                        _ = scanPickle(buf, from: &pos, entry: entry.name, baseOffset: 0, limits: limits, afterStop: true)
                    }
                }
            }
        }
    }

    /// When the central directory cannot be trusted, another zip reader may still find entries in
    /// it: every local header in the file (at any offset) naming a stored `.pkl` is scanned, so a
    /// dangerous global is still reported. This can only add findings: the file stays unreadable.
    mutating func scanLocalHeaders(_ buf: UnsafeRawBufferPointer, limits: ReaderLimits) {
        let r = ByteReader(buf)
        var headers = 0
        var p = 0
        // One ops budget for all of them, proportional to the file: fake headers pointing at one long
        // pickle cannot make the work quadratic.
        var budget = limits
        budget.maxOps = min(limits.maxOps, 1_000_000 + 16 * buf.count)
        while p + 30 <= buf.count, headers < limits.maxEntries, budget.maxOps > 0 {
            defer { p += 1 }
            guard buf[p] == 0x50, buf[p + 1] == 0x4B, buf[p + 2] == 3, buf[p + 3] == 4 else { continue }
            headers += 1
            guard let method = try? r.u16(p + 8), let size = try? r.u32(p + 18),
                  let nameLen = try? r.u16(p + 26), let extraLen = try? r.u16(p + 28),
                  let nameBytes = try? r.bytes(p + 30, Int(nameLen)) else { continue }
            let entryName = String(decoding: nameBytes, as: UTF8.self)
            guard ZipArchive.caseFolded(entryName).hasSuffix(".pkl"), method == 0 else { continue }
            let start = p + 30 + Int(nameLen) + Int(extraLen)
            guard start <= buf.count else { continue }
            let end = size == 0 ? buf.count : min(buf.count, start + Int(size))
            let data = UnsafeRawBufferPointer(rebasing: buf[start..<end])
            var pos = 0
            let spent = pickles.count
            _ = scanPickle(data, from: &pos, entry: "\(entryName) (local header at \(p))", baseOffset: 0, limits: budget,
                           afterStop: false, errorsAreFatal: false)
            budget.maxOps -= pickles[spent...].reduce(0) { $0 + $1.opcodes }
        }
        if headers > 0 { notes.append("the central directory is unusable; \(headers) local headers were searched for pickles") }
    }

    /// A bare pickle, or a legacy torch.save stream (magic, protocol, sys_info, main, keys, storages).
    /// `lenient`: bytes that are not meant as a pickle (a safetensors file torch.load would still
    /// try to unpickle): a decoding failure is a note, not a reason to call the file unreadable.
    mutating func scanStream(_ buf: UnsafeRawBufferPointer, limits: ReaderLimits, lenient: Bool = false) {
        format = .pickle
        var pos = 0
        guard let first = scanPickle(buf, from: &pos, entry: "pickle:0", baseOffset: 0, limits: limits, afterStop: false,
                                     errorsAreFatal: !lenient) else { return }
        // torch.load unpickles the first pickle, then compares it with the legacy magic number:
        // its value as CPython computes it (`int(text, 0)` for INT and LONG, frames only a
        // buffering hint). A value that cannot be known without running the pickle (the result
        // of a REDUCE, ...) leaves the question open: the rest is then scanned as a legacy stream.
        let magic: Bool?
        switch first.value {
        case .integer(let v): magic = v == .legacyMagic
        case .other: magic = nil
        default: magic = false
        }
        let next = Self.nextPickles(after: pos, first)
        guard magic == true || (magic == nil && next.contains(where: { $0 < buf.count })) else {
            if pos < buf.count { notes.append("\(buf.count - pos) bytes after the pickle's STOP") }
            return
        }
        if magic == true {
            format = .legacy
            if let m = pickles.first {  // named as the reader names it (it holds no global: it is the magic)
                pickles[0] = ScannedPickle(entry: "pickle:magic", protocolVersion: m.protocolVersion, opcodes: m.opcodes, error: m.error)
            }
        } else {
            notes.append("the first pickle's value cannot be known without running it: the rest is scanned as the "
                         + "sections of a legacy stream, as torch.load would read them if it were the magic number")
        }
        // Each section starts after the previous pickle's STOP; where a FRAME of that pickle runs
        // past its STOP, CPython may have consumed the whole frame (a frame it read() rather than
        // peek()ed), so the pickle after the frame is scanned too. The chain after each STOP is
        // the reader's; the others can only add findings.
        var starts: [(at: Int, primary: Bool)] = next.enumerated().map { ($0.element, $0.offset == 0) }
        for section in ["protocol", "sys_info", "main", "keys"] {
            var following: [(at: Int, primary: Bool)] = []
            for start in starts.prefix(Self.maxLegacyCandidates) {
                guard start.at < buf.count else {
                    if start.primary, magic == true { fatal = fatal ?? "legacy stream ends before its \(section) pickle" }
                    continue
                }
                var p = start.at
                let label = "pickle:\(section)" + (start.primary ? "" : " (at \(start.at), after a frame)")
                guard let end = scanPickle(buf, from: &p, entry: label, baseOffset: 0, limits: limits, afterStop: false,
                                           errorsAreFatal: start.primary && magic == true && !lenient) else { continue }
                for (k, q) in Self.nextPickles(after: p, end).enumerated()
                    where !following.contains(where: { $0.at == q }) {
                    following.append((q, start.primary && k == 0))
                }
            }
            if starts.count > Self.maxLegacyCandidates {
                notes.append("more than \(Self.maxLegacyCandidates) places a legacy \(section) pickle could start; the rest not scanned")
                fatal = fatal ?? "too many ways to read the legacy stream"
            }
            if starts.contains(where: { !$0.primary && $0.at < buf.count }) {
                ambiguities.append("a FRAME runs past a pickle's STOP before the \(section) pickle: where torch.load resumes "
                                   + "depends on how CPython buffered the frame; both places were scanned")
            }
            starts = following
        }
    }

    /// At most this many places are scanned for one section of a legacy stream.
    static let maxLegacyCandidates = 8

    /// Where the next pickle of a stream may start: after STOP, then after the end of a frame
    /// that runs past it.
    static func nextPickles(after stop: Int, _ end: PickleEnd) -> [Int] {
        end.frameEnd > stop ? [stop, end.frameEnd] : [stop]
    }

    /// Disassembles one pickle starting at `pos`; returns its value and frame extent when it
    /// reached STOP (with `pos` after it). A decoding failure is recorded (fatal unless `afterStop`).
    mutating func scanPickle(_ buf: UnsafeRawBufferPointer, from pos: inout Int, entry: String, baseOffset: Int,
                             limits: ReaderLimits, afterStop: Bool, errorsAreFatal: Bool? = nil) -> PickleEnd? {
        var d = Disassembler(data: buf, pos: pos, limits: limits)
        var found: [ScannedGlobal] = []
        let result = d.run { module, name, opcode, offset in
            let (c, r) = PickleScanner.classify(module: module, name: name, inTorchScript: torchScript)
            found.append(ScannedGlobal(module: module, name: name, opcode: opcode, entry: entry, offset: baseOffset + offset,
                                       classification: c, risk: opcode.hasPrefix("EXT") || module == "?" ? .unresolved : r,
                                       afterStop: afterStop))
        }
        globals += found
        for b in d.classBuilds {
            risks.append(ScanRisk(kind: .classAttributeWrite,
                                  detail: "BUILD on the class \(b.module).\(b.name) itself sets attributes of that class in the "
                                      + "loading process (for example dump_patches and __name__, which make torch's legacy loader "
                                      + "write files)",
                                  entry: entry, offset: baseOffset + b.offset))
        }
        pos = d.pos
        var message: String?
        if case .failure(let e) = result {
            message = "\(e.reason) at offset \(baseOffset + e.offset)" + (e.opcode.map { String(format: " (opcode 0x%02x)", $0) } ?? "")
            if errorsAreFatal ?? !afterStop {
                fatal = fatal ?? "\(entry): \(message!)"
            } else {
                notes.append("\(entry)\(afterStop ? " after STOP" : ""): \(message!)")
            }
        }
        pickles.append(ScannedPickle(entry: afterStop ? "\(entry) (after STOP)" : entry, protocolVersion: d.protocolVersion,
                                     opcodes: d.ops, error: message))
        if case .success(let value) = result { return PickleEnd(value: value, frameEnd: d.frameEnd) }
        return nil
    }
}

/// How a pickle ended: its value (as far as the scanner tracks values) and the end of its last
/// FRAME (0 without frames).
struct PickleEnd {
    let value: Disassembler.Value
    let frameEnd: Int
}

// MARK: - Disassembler

/// Walks opcodes, decoding operands with bounds checks, keeping only an abstract stack.
struct Disassembler {
    /// What the scanner knows of a value: a string (for STACK_GLOBAL), an integer (for the legacy
    /// magic number), a class named by a global (for BUILD on a class), data that is none of
    /// these, or something only running the pickle would tell (the result of a call).
    enum Value {
        case string(String)
        case integer(PythonInt)
        case global(module: String, name: String)
        case data
        case other
    }
    struct Failure: Error {
        let reason: String
        let offset: Int
        let opcode: UInt8?
    }

    let data: UnsafeRawBufferPointer
    var pos: Int
    let limits: ReaderLimits
    var stack: [Value] = []
    var marks: [Int] = []
    /// Every memo entry, as Python keeps them (MEMOIZE's index is the memo's size).
    var memo: [Int: Value] = [:]
    /// Set once the memo outgrew `maxMemoEntries`: from then on nothing read from the memo is
    /// trusted (a GET gives "other"), so a reference can only become unresolved, never misnamed.
    var memoOverflow = false
    var ops = 0
    var protocolVersion = 0
    /// The end of the furthest FRAME seen (0: none).
    var frameEnd = 0
    /// BUILD applied to a class named by a global (not to an instance).
    var classBuilds: [(module: String, name: String, offset: Int)] = []
    var opStart = 0
    var opcode: UInt8 = 0
    /// Strings longer than this are kept as "other": no real module or class name is this long.
    static let maxNameBytes = 1024

    init(data: UnsafeRawBufferPointer, pos: Int, limits: ReaderLimits) {
        self.data = data
        self.pos = pos
        self.limits = limits
    }

    func fail(_ reason: String) -> Failure { Failure(reason: reason, offset: opStart, opcode: opcode) }

    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= data.count - pos else { throw fail("operand of \(n) bytes runs past the end (\(data.count - pos) left)") }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: data[pos..<(pos + n)])
    }

    mutating func u8() throws -> Int { Int(try take(1)[0]) }
    mutating func u16() throws -> Int { Int(UInt16(littleEndian: try take(2).loadUnaligned(as: UInt16.self))) }
    mutating func u32() throws -> Int { Int(UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self))) }
    mutating func i32() throws -> Int { Int(Int32(littleEndian: try take(4).loadUnaligned(as: Int32.self))) }
    mutating func u64() throws -> Int {
        let v = UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self))
        guard v <= UInt64(Int.max) else { throw fail("length \(v) is beyond any file") }
        return Int(v)
    }

    mutating func line() throws -> UnsafeRawBufferPointer {
        var end = pos
        while end < data.count && data[end] != 0x0A { end += 1 }
        // Searching for the newline is work too (one op per 64 bytes): many overlapping pickles
        // (the local-header fallback) cannot make it quadratic.
        ops += (end - pos) / 64
        guard ops <= limits.maxOps else { throw fail("ops limit exceeded (limit \(limits.maxOps))") }
        guard end < data.count else { throw fail("text operand without a newline") }
        let text = try take(end - pos)
        pos += 1
        return text
    }

    /// Lenient like CPython's `surrogatepass`: a string that would decode in Python decodes here.
    func text(_ b: UnsafeRawBufferPointer) -> Value {
        b.count <= Self.maxNameBytes ? .string(String(decoding: b, as: UTF8.self)) : .other
    }

    mutating func push(_ v: Value) throws {
        guard stack.count < limits.maxStackSize else { throw fail("stack limit exceeded (limit \(limits.maxStackSize))") }
        stack.append(v)
    }

    /// Pops one value; on an empty stack (Python would stop here) keeps scanning with "other", so
    /// that later references are still reported.
    mutating func pop() -> Value {
        if stack.count > (marks.last ?? 0) { return stack.removeLast() }
        return .other
    }

    mutating func popMark() {
        if let m = marks.popLast() { stack.removeSubrange(min(m, stack.count)...) }
    }

    /// Runs to STOP and returns the pickle's value. `report(module, name, opcode, offset)` is
    /// called for every global reference.
    mutating func run(_ report: (String, String, String, Int) -> Void) -> Result<Value, Failure> {
        do {
            while true {
                opStart = pos
                guard pos < data.count else { throw fail("the pickle ends without STOP") }
                opcode = data[pos]
                pos += 1
                ops += 1
                guard ops <= limits.maxOps else { throw fail("ops limit exceeded (limit \(limits.maxOps))") }
                if opcode == Op.stop { return .success(pop()) }
                try step(opcode, report)
            }
        } catch let f as Failure {
            return .failure(f)
        } catch {
            return .failure(fail("\(error)"))
        }
    }

    mutating func step(_ op: UInt8, _ report: (String, String, String, Int) -> Void) throws {
        switch op {
        case Op.proto:
            let v = try u8()
            guard v <= 5 else { throw fail("unsupported pickle protocol \(v)") }
            protocolVersion = v
        case Op.frame:
            let n = try u64()
            let (end, overflow) = pos.addingReportingOverflow(n)
            frameEnd = max(frameEnd, overflow ? Int.max : end)
        case Op.mark:
            guard marks.count < limits.maxStackSize else { throw fail("stack limit exceeded (limit \(limits.maxStackSize))") }
            marks.append(stack.count)
        case Op.pop:
            if stack.count > (marks.last ?? 0) { stack.removeLast() } else { popMark() }
        case Op.popMark: popMark()
        case Op.dup: try push(stack.last ?? .other)
        case Op.none, Op.newTrue, Op.newFalse, Op.emptyList, Op.emptyTuple, Op.emptyDict, Op.emptySet:
            try push(.data)
        case Op.binInt: try push(.integer(PythonInt(try i32())))
        case Op.binInt1: try push(.integer(PythonInt(try u8())))
        case Op.binInt2: try push(.integer(PythonInt(try u16())))
        case Op.binFloat: _ = try take(8); try push(.data)
        // Text integers as CPython reads them; one Python would refuse is kept as "unknown"
        // (the scan goes on, so later references are still reported).
        case Op.int: try push(PythonInt.fromINT(try line()).map(Value.integer) ?? .other)
        case Op.long: try push(PythonInt.fromLONG(try line()).map(Value.integer) ?? .other)
        case Op.float: _ = try line(); try push(.data)
        case Op.long1: try push(.integer(PythonInt(twosComplement: try take(try u8()))))
        case Op.long4:
            let n = try i32()
            guard n >= 0 else { throw fail("LONG4 with a negative length") }
            let bytes = try take(n)
            try push(n <= PythonInt.maxTextDigits ? .integer(PythonInt(twosComplement: bytes)) : .other)
        case Op.binUnicode: try push(text(try take(try u32())))
        case Op.shortBinUnicode: try push(text(try take(try u8())))
        case Op.binUnicode8: try push(text(try take(try u64())))
        case Op.shortBinString: try push(text(try take(try u8())))
        case Op.binString:
            let n = try i32()
            guard n >= 0 else { throw fail("BINSTRING with a negative length") }
            try push(text(try take(n)))
        case Op.unicode: try push(text(try line()))
        case Op.string:
            let raw = try line()
            if raw.count >= 2, let q = raw.first, q == raw.last, q == 0x27 || q == 0x22 {
                try push(text(UnsafeRawBufferPointer(rebasing: raw[1..<(raw.count - 1)])))
            } else {
                throw fail("STRING operand is not quoted")
            }
        case Op.binBytes: _ = try take(try u32()); try push(.data)
        case Op.shortBinBytes: _ = try take(try u8()); try push(.data)
        case Op.binBytes8, Op.byteArray8: _ = try take(try u64()); try push(.data)
        case Op.nextBuffer: try push(.other)
        case Op.readonlyBuffer: break
        case Op.list, Op.tuple, Op.dict, Op.frozenSet:
            popMark(); try push(.data)
        case Op.tuple1: _ = pop(); try push(.data)
        case Op.tuple2: _ = pop(); _ = pop(); try push(.data)
        case Op.tuple3: _ = pop(); _ = pop(); _ = pop(); try push(.data)
        case Op.append: _ = pop()
        case Op.appends, Op.setItems, Op.addItems: popMark()
        case Op.setItem: _ = pop(); _ = pop()
        case Op.build:
            _ = pop()
            // The target stays on the stack: a class itself, not an instance, gets its attributes set.
            if stack.count > (marks.last ?? 0), case .global(let module, let name) = stack[stack.count - 1] {
                classBuilds.append((module, name, opStart))
            }
        case Op.put: memoPut(try decimal(try line()))
        case Op.binPut: memoPut(try u8())
        case Op.longBinPut: memoPut(try u32())
        case Op.memoize: memoPut(memo.count)  // (after an overflow nothing is trusted anyway)
        case Op.get: try push(memoGet(try decimal(try line())))
        case Op.binGet: try push(memoGet(try u8()))
        case Op.longBinGet: try push(memoGet(try u32()))
        case Op.global, Op.inst:
            let at = opStart
            let module = String(decoding: try line(), as: UTF8.self)
            let name = String(decoding: try line(), as: UTF8.self)
            report(module, name, op == Op.global ? "GLOBAL" : "INST", at)
            if op == Op.inst { popMark() }
            try push(op == Op.global ? .global(module: module, name: name) : .other)
        case Op.stackGlobal:
            let name = pop(), module = pop()
            if case .string(let m) = module, case .string(let n) = name {
                report(m, n, "STACK_GLOBAL", opStart)
                try push(.global(module: m, name: n))
            } else {
                report("?", "?", "STACK_GLOBAL", opStart)
                try push(.other)
            }
        case Op.obj: popMark(); try push(.other)
        case Op.newObj: _ = pop(); _ = pop(); try push(.other)
        case Op.newObjEx: _ = pop(); _ = pop(); _ = pop(); try push(.other)
        case Op.reduce: _ = pop(); _ = pop(); try push(.other)
        case Op.ext1, Op.ext2, Op.ext4:
            let code = op == Op.ext1 ? try u8() : op == Op.ext2 ? try u16() : try i32()
            report("copyreg._extension_registry", String(code), op == Op.ext1 ? "EXT1" : op == Op.ext2 ? "EXT2" : "EXT4", opStart)
            try push(.other)
        case Op.persID: _ = try line(); try push(.other)
        case Op.binPersID: _ = pop(); try push(.other)
        default:
            throw fail("unknown pickle opcode 0x\(String(op, radix: 16))")
        }
    }

    func decimal(_ b: UnsafeRawBufferPointer) throws -> Int {
        guard let i = Int(String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespaces)), i >= 0 else {
            throw fail("malformed memo index")
        }
        return i
    }

    mutating func memoPut(_ index: Int) {
        guard !memoOverflow else { return }
        guard memo.count < limits.maxMemoEntries || memo[index] != nil else {
            memoOverflow = true
            memo = [:]
            return
        }
        memo[index] = stack.last ?? .other
    }

    func memoGet(_ index: Int) -> Value { memoOverflow ? .other : memo[index] ?? .other }
}
