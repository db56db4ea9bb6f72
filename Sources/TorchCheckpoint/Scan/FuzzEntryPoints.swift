import TorchportCore
/// Entry points for fuzzing and for replaying fuzzer findings in tests: each takes raw bytes,
/// runs one layer of the reader on them, and touches every byte that layer hands out (so a view
/// that reached outside its buffer would be caught by AddressSanitizer). None of them traps on any
/// input; each either returns or throws a ``CheckpointError``.
///
/// These exist for `torchport-fuzz` (libFuzzer) and `FuzzRegressionTests`; they are not part of the
/// reading API (use ``Checkpoint`` and ``Unpickler``).
package enum FuzzEntryPoints {
    /// The limits the fuzz targets read with: the defaults, except for the few that allow a small
    /// input to allocate a lot legitimately (a 4 GiB declared entry, a 4-billion-element tensor),
    /// which are lowered so a fuzzer's memory cap is not reached by design.
    package static var limits: ReaderLimits {
        var l = ReaderLimits()
        l.maxInflatedEntryBytes = 64 << 20
        l.maxElements = 1 << 24
        l.maxNameBytes = 16 << 20
        l.maxStackSize = 1_000_000
        l.maxMemoEntries = 1_000_000
        l.maxOps = 10_000_000
        return l
    }

    package static var options: ReaderOptions { ReaderOptions(limits: limits) }

    /// Folds bytes into a value the optimiser cannot drop, reading each one.
    @inline(never)
    static func touch(_ b: UnsafeRawBufferPointer) -> UInt8 {
        var x: UInt8 = 0
        for v in b { x ^= v }
        return x
    }

    /// The zip container: parses the central directory, then reads (or inflates) every entry.
    /// Returns the number of entries read.
    @discardableResult
    package static func zip(_ bytes: [UInt8]) throws -> Int {
        let file = FileBytes.owned(bytes)
        let archive = try ZipArchive(file: file, fileName: nil, limits: limits)
        var sink: UInt8 = 0
        for entry in archive.entries {
            do {
                let data = try archive.data(of: entry, limits: limits)
                sink ^= data.withUnsafeBytes { touch($0) }
            } catch let e as CheckpointError {
                switch e.kind {
                case .zipUnsupportedCompression, .zipInflate, .limitExceeded: continue  // one bad entry: the others are still read
                default: throw e
                }
            }
        }
        blackHole(sink)
        return archive.entries.count
    }

    /// The restricted unpickler alone, as a single pickle (bytes after STOP refused). With
    /// `allowUnknownGlobals` it goes past unknown globals, which reaches more of the opcode logic.
    package static func unpickler(_ bytes: [UInt8], allowUnknownGlobals: Bool = false) throws -> PickleValue {
        var options = options
        options.allowUnknownGlobals = allowUnknownGlobals
        return try bytes.withUnsafeBytes { buf in
            let u = Unpickler(data: buf, options: options, entry: "fuzz")
            return try u.load()
        }
    }

    /// The legacy (pre-1.6) stream reader: inputs that look like a zip are skipped (returns nil),
    /// everything else goes through ``Checkpoint`` (which reads it as a legacy stream).
    package static func legacy(_ bytes: [UInt8]) throws -> Int? {
        let looksLikeZip = bytes.withUnsafeBytes { ZipArchive.looksLikeZip($0) }
        if looksLikeZip { return nil }
        let c = try Checkpoint(bytes: bytes, name: "fuzz", options: options)
        return materialise(c)
    }

    /// The whole inspect path: ``Checkpoint`` on any bytes, then every tensor materialised (those
    /// up to `maxTensorBytes`; larger ones only have their first and last element read).
    package static func inspect(_ bytes: [UInt8], maxTensorBytes: Int = 1 << 20) throws -> Int {
        let c = try Checkpoint(bytes: bytes, name: "fuzz", options: options)
        return materialise(c, maxTensorBytes: maxTensorBytes)
    }

    /// The static scanner behind `torchport scan`, on any bytes.
    package static func scan(_ bytes: [UInt8]) -> PickleScanReport {
        PickleScanner.scan(bytes: bytes, name: "fuzz", limits: limits)
    }

    @discardableResult
    static func materialise(_ c: Checkpoint, maxTensorBytes: Int = 1 << 20) -> Int {
        var sink: UInt8 = 0
        for t in c.tensors {
            let r = t.tensor
            if r.nbytes <= maxTensorBytes {
                sink ^= r.contiguousBytes().withUnsafeBytes { touch($0) }
                if r.numel <= 4096 { blackHole(r.floats().count) }
            } else if let view = r.contiguousView {
                sink ^= touch(UnsafeRawBufferPointer(rebasing: view.buffer.prefix(16)))
            }
        }
        blackHole(sink)
        blackHole(c.topLevel.count)
        return c.tensors.count
    }

    @inline(never)
    static func blackHole<T>(_ x: T) { withExtendedLifetime(x) {} }
}
