import Dispatch
import Foundation
import Torchport
import TorchportCore

// Pieces shared by the commands that take many inputs (`classify`, `convert`, `verify`):
// expanding directories, running work in parallel, progress on a terminal, and the list of
// failures printed at the end.

/// One input that could not be processed, listed at the end.
struct BatchFailure: Encodable, Sendable {
    let name: String
    let error: String
}

/// Whether progress goes to stderr: `--progress`/`--no-progress` when given, else only when
/// stderr is a terminal (quiet when piped or redirected).
func progressEnabled(_ flag: Bool? = nil) -> Bool {
    flag ?? (isatty(STDERR_FILENO) == 1)
}

/// Files as given; directories expanded to their files whose extension is one of `extensions`
/// (lowercased, no dot), sorted, recursively or not, leaving out names `skip` returns true for.
/// A path that does not exist, or a directory with no such file, is a failure.
func expandInputs(_ paths: [String], extensions: Set<String>, recursive: Bool,
                  skip: (String) -> Bool = { _ in false }) -> (files: [String], failures: [BatchFailure]) {
    var out: [String] = []
    var failures: [BatchFailure] = []
    let fm = FileManager.default
    for path in paths {
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            failures.append(BatchFailure(name: path, error: "\(path): no such file or directory"))
            continue
        }
        guard isDirectory.boolValue else {
            out.append(path)
            continue
        }
        var relatives: [String] = []
        if recursive {
            if let walker = fm.enumerator(atPath: path) {
                for case let relative as String in walker { relatives.append(relative) }
            }
        } else {
            relatives = (try? fm.contentsOfDirectory(atPath: path)) ?? []
        }
        var found: [String] = []
        for relative in relatives
        where extensions.contains((relative as NSString).pathExtension.lowercased())
            && !skip((relative as NSString).lastPathComponent) {
            let full = (path as NSString).appendingPathComponent(relative)
            var dir: ObjCBool = false
            if fm.fileExists(atPath: full, isDirectory: &dir), !dir.boolValue { found.append(full) }
        }
        if found.isEmpty {
            let list = extensions.sorted().map { "." + $0 }
            let names = list.count > 1 ? list.dropLast().joined(separator: ", ") + " or " + list.last! : list.joined()
            failures.append(BatchFailure(name: path, error: "\(path): no \(names) files in this directory"))
        }
        out += found.sorted()
    }
    return (out, failures)
}

/// Whether any argument is a directory (the commands then work on many inputs).
func anyDirectory(_ paths: [String]) -> Bool { paths.contains(where: isDirectory) }

/// A file's name without its directory and last extension: `dir/resnet50.pth` -> `resnet50`.
func fileStem(_ path: String) -> String {
    ((path as NSString).lastPathComponent as NSString).deletingPathExtension
}

/// Writes `header` and one line per failure (`  name: reason`) to stderr.
func writeFailureSummary(_ header: String, _ failures: [BatchFailure]) {
    var text = header + "\n"
    for f in failures { text += "  \(f.error.hasPrefix(f.name) ? f.error : "\(f.name): \(f.error)")\n" }
    FileHandle.standardError.write(Data(text.utf8))
}

/// Runs `work` for each of `count` items on up to `jobs` threads, each thread taking the next item
/// when it finishes one. `done` is called once per item, in item order (an item's call waits for
/// those before it), never from two threads at once: it can print.
func runConcurrently<R: Sendable>(count: Int, jobs: Int, work: @escaping @Sendable (Int) -> R,
                                  done: @escaping (Int, R) -> Void) {
    guard count > 0 else { return }
    let results = Slots<R>(count: count)
    let state = OrderedDelivery()
    nonisolated(unsafe) let deliver = done
    let workers = max(1, min(jobs, count))
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
        while let i = state.take(count: count) {
            results[i] = work(i)
            state.completed(i) { ready in
                for j in ready { deliver(j, results[j]!) }
            }
        }
    }
}

/// The bookkeeping behind ``runConcurrently``: the next item to start and the next one to report.
private final class OrderedDelivery: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var finished = Set<Int>()
    private var delivered = 0

    func take(count: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < count else { return nil }
        next += 1
        return next - 1
    }

    /// Marks `i` finished and calls `body` (under the lock) with the items now deliverable, in order.
    func completed(_ i: Int, _ body: ([Int]) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        finished.insert(i)
        var ready: [Int] = []
        while finished.contains(delivered) {
            finished.remove(delivered)
            ready.append(delivered)
            delivered += 1
        }
        if !ready.isEmpty { body(ready) }
    }
}

/// Results written by worker threads, each to its own index.
final class Slots<T: Sendable>: @unchecked Sendable {
    private var items: [T?]
    private let lock = NSLock()

    init(count: Int) { items = Array(repeating: nil, count: count) }

    subscript(i: Int) -> T? {
        get { lock.lock(); defer { lock.unlock() }; return items[i] }
        set { lock.lock(); items[i] = newValue; lock.unlock() }
    }
}

/// The one progress display: a line on stderr, rewritten in place (`\r`), silent unless
/// enabled. Counted (`[k/n] name` as items finish, for many files) or free text (``show(_:force:)``,
/// at most ten updates a second, for one long conversion). Safe to use from several threads.
final class ProgressMeter: @unchecked Sendable {
    let total: Int
    let enabled: Bool
    private let line: @Sendable (_ done: Int, _ total: Int, _ name: String?) -> String
    private let lock = NSLock()
    private var done = 0
    private var shown = false
    private var last: UInt64 = 0

    /// A counted display of `total` items (enabled for two or more).
    init(total: Int, enabled: Bool,
         line: @escaping @Sendable (_ done: Int, _ total: Int, _ name: String?) -> String = { done, total, name in
             "[\(done)/\(total)]" + (name.map { " " + $0 } ?? "")
         }) {
        self.total = total
        self.enabled = enabled && total > 1
        self.line = line
    }

    /// A free-text display (``show(_:force:)``, ``conversion``).
    init(textEnabled enabled: Bool) {
        total = 1
        self.enabled = enabled
        line = { _, _, _ in "" }
    }

    func advance(by n: Int = 1, name: String? = nil) {
        lock.lock()
        defer { lock.unlock() }
        done += n
        guard enabled else { return }
        write(line(done, total, name))
    }

    /// Shows `text`; unless `force`, only when a tenth of a second has passed since the last update.
    func show(_ text: String, force: Bool = true) {
        lock.lock()
        defer { lock.unlock() }
        guard enabled else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        guard force || now - last > 100_000_000 else { return }
        last = now
        write(text)
    }

    /// A conversion's progress, as `converting: writing: 12/320 tensors, 40.1/102.3 MB`.
    var conversion: (@Sendable (ConversionProgress) -> Void)? {
        guard enabled else { return nil }
        return { [self] p in
            let mb = { (n: Int) in String(format: "%.1f", Double(n) / 1e6) }
            show("converting: \(p.stage.rawValue): \(p.tensors)/\(p.totalTensors) tensors, \(mb(p.bytes))/\(mb(p.totalBytes)) MB",
                 force: p.tensors == p.totalTensors || p.tensors == 0)
        }
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
        shown = true
    }

    /// Erases the progress line so ordinary output starts at column 0.
    func clear() {
        lock.lock()
        defer { lock.unlock() }
        guard shown else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        shown = false
    }

    func finish() { clear() }
}

extension VerificationReport {
    /// The report's verdict line, `PASS: 8 of 8 samples within tolerance; max|d| ..., rel ...`.
    var verdictLine: String {
        let lines = text.split(separator: "\n").map(String.init)
        return lines.first { $0.hasPrefix("PASS:") || $0.hasPrefix("FAIL:") } ?? (passed ? "PASS" : "FAIL")
    }
}

/// The golden file for `model` in the folder `goldens`: `<stem>.golden.pth`, `.golden.pt` or
/// `.golden.safetensors`, the first that exists; nil when there is none.
func goldenFile(for model: String, in goldens: String) -> String? {
    let stem = fileStem(model)
    for ext in ["pth", "pt", "safetensors"] {
        let path = (goldens as NSString).appendingPathComponent("\(stem).golden.\(ext)")
        if FileManager.default.fileExists(atPath: path) { return path }
    }
    return nil
}

/// Whether `path` names an existing directory.
func isDirectory(_ path: String) -> Bool {
    var dir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &dir) && dir.boolValue
}

/// A golden file's name (`x.golden.pth`): left out when a directory of models is expanded.
func isGoldenName(_ name: String) -> Bool { name.contains(".golden.") }
