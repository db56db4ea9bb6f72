import TorchportCore
/// A zip archive read from its central directory, with every entry's data range located and
/// validated against the file (zip64 included). Stored entries are handed out as views of the
/// mapped file (zero-copy); deflated ones are inflated through libzip (see `ZipArchive+Inflate`).
struct ZipArchive {
    struct Entry {
        let name: String
        let method: Int
        let compressedSize: Int
        let uncompressedSize: Int
        let localHeaderOffset: Int
        /// Start of the entry's data: local header offset + 30 + name length + local extra length.
        let dataOffset: Int
    }

    let file: FileBytes
    let fileName: String?
    let entries: [Entry]
    private let index: [String: Int]
    /// Groups of entries whose names differ only in ASCII case (only with `allowCaseTwins`;
    /// otherwise such an archive is refused).
    let caseTwins: [[String]]
    /// libzip's view of the archive, opened once on the first deflated entry, and the bytes
    /// inflated so far (see `ZipArchive+Inflate`).
    let inflater = Inflater()

    static let localHeaderSignature: UInt32 = 0x0403_4b50
    static let centralSignature: UInt32 = 0x0201_4b50
    static let endSignature: UInt32 = 0x0605_4b50
    static let zip64EndSignature: UInt32 = 0x0606_4b50
    static let zip64LocatorSignature: UInt32 = 0x0706_4b50

    /// True when the bytes start like a zip archive (a local header or an empty archive's end record).
    static func looksLikeZip(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 4 else { return false }
        let sig = UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self))
        return sig == localHeaderSignature || sig == endSignature
    }

    /// Reads the central directory. torch's reader (miniz) finds entries case-insensitively, so
    /// names that differ only in case are refused (`zipAmbiguous`) unless `allowCaseTwins` (the
    /// scanner, which scans every twin and reports them).
    init(file: FileBytes, fileName: String?, limits: ReaderLimits, allowCaseTwins: Bool = false) throws {
        self.file = file
        self.fileName = fileName
        let r = ByteReader(file.bytes)
        func fail(_ k: CheckpointError.Kind, _ offset: Int? = nil, entry: String? = nil) -> CheckpointError {
            CheckpointError(k, file: fileName, entry: entry, offset: offset)
        }

        // End of central directory: the last signature within the final 22 + 65535 bytes, as miniz
        // (torch's reader) takes it. Its comment must fit the file: miniz does not check that, so
        // when it does not fit and an earlier record would, the two readers would read different
        // directories; refused as ambiguous.
        guard r.count >= 22 else { throw fail(.zipStructure("file too small for an end record (\(r.count) bytes)"), 0) }
        var eocd = -1
        var pos = r.count - 22
        let lowest = max(0, r.count - 22 - 65535)
        while pos >= lowest {
            if try r.u32(pos) == Self.endSignature {
                eocd = pos
                break
            }
            pos -= 1
        }
        guard eocd >= 0 else { throw fail(.zipStructure("no end-of-central-directory record: the file is truncated (an incomplete download?)")) }
        let commentLength = Int(try r.u16(eocd + 20))
        guard eocd + 22 + commentLength <= r.count else {
            var earlier = eocd - 1
            while earlier >= lowest, try r.u32(earlier) != Self.endSignature { earlier -= 1 }
            if earlier >= lowest {
                throw fail(.zipAmbiguous("the last end-of-central-directory record (at \(eocd)) claims a \(commentLength)-byte "
                                         + "comment past the end of the file; torch's reader would use it, and another "
                                         + "record at \(earlier) describes a different directory"), eocd)
            }
            throw fail(.zipStructure("the end-of-central-directory record's \(commentLength)-byte comment runs past the end of the file"), eocd + 20)
        }

        var entryCount = Int(try r.u16(eocd + 10))
        var cdSize = Int(try r.u32(eocd + 12))
        var cdOffset = Int(try r.u32(eocd + 16))
        let diskNumber = try r.u16(eocd + 4)
        let cdDisk = try r.u16(eocd + 6)

        // Zip64: a locator right before the end record points at the zip64 end record.
        if eocd >= 20, try r.u32(eocd - 20) == Self.zip64LocatorSignature {
            let loc = eocd - 20
            guard let z64 = Int(exactlyFile: try r.u64(loc + 8)) else {
                throw fail(.zipStructure("zip64 end record offset overflows"), loc + 8)
            }
            guard loc >= 56, z64 <= loc - 56 else {
                throw fail(.zipStructure("zip64 end record at \(z64) is not before its locator at \(loc)"), loc + 8)
            }
            guard try r.u32(z64) == Self.zip64EndSignature else {
                throw fail(.zipStructure("bad zip64 end record signature"), z64)
            }
            guard let n = Int(exactlyFile: try r.u64(z64 + 32)),
                  let size = Int(exactlyFile: try r.u64(z64 + 40)),
                  let off = Int(exactlyFile: try r.u64(z64 + 48)) else {
                throw fail(.zipStructure("zip64 end record counts overflow"), z64 + 32)
            }
            entryCount = n
            cdSize = size
            cdOffset = off
        } else if diskNumber != 0 || cdDisk != 0 {
            throw fail(.zipStructure("multi-disk archives are not supported"), eocd + 4)
        }

        let cdEnd = cdOffset.addingReportingOverflow(cdSize)
        guard !cdEnd.overflow, cdEnd.partialValue <= r.count else {
            throw fail(.zipStructure("central directory (\(cdOffset) + \(cdSize)) extends past the file (\(r.count))"), eocd)
        }
        // Each central record takes at least 46 bytes: the count cannot exceed what the size holds.
        guard entryCount <= cdSize / 46 + 1 else {
            throw fail(.zipStructure("central directory claims \(entryCount) entries in \(cdSize) bytes"), eocd)
        }
        guard entryCount <= limits.maxEntries else {
            throw fail(.limitExceeded(.entries, limit: limits.maxEntries), eocd)
        }

        var entries: [Entry] = []
        entries.reserveCapacity(entryCount)
        var index: [String: Int] = [:]
        var p = cdOffset
        for _ in 0..<entryCount {
            guard p <= cdEnd.partialValue - 46 else {
                throw fail(.zipStructure("central directory ends inside a record"), p)
            }
            guard try r.u32(p) == Self.centralSignature else {
                throw fail(.zipStructure("bad central directory signature"), p)
            }
            let method = Int(try r.u16(p + 10))
            var csize = UInt64(try r.u32(p + 20))
            var usize = UInt64(try r.u32(p + 24))
            let nameLen = Int(try r.u16(p + 28))
            let extraLen = Int(try r.u16(p + 30))
            let commentLen = Int(try r.u16(p + 32))
            var local = UInt64(try r.u32(p + 42))
            let recordEnd = p + 46 + nameLen + extraLen + commentLen
            guard recordEnd <= cdEnd.partialValue else {
                throw fail(.zipStructure("central record extends past the directory"), p)
            }
            let nameBytes = try r.bytes(p + 46, nameLen)
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw fail(.zipUnsafeName(String(decoding: nameBytes, as: UTF8.self)), p + 46)
            }
            try Self.checkName(name, nameBytes: nameBytes, fail: { fail($0, p + 46, entry: name) })

            // Zip64 extended information: present fields replace the 0xFFFFFFFF placeholders, in order.
            var e = p + 46 + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd {
                let id = try r.u16(e)
                let len = Int(try r.u16(e + 2))
                guard e + 4 + len <= extraEnd else { throw fail(.zipStructure("extra field overruns its record"), e, entry: name) }
                if id == 0x0001 {
                    var q = e + 4
                    func next() throws -> UInt64 {
                        guard q + 8 <= e + 4 + len else { throw fail(.zipStructure("zip64 extra field too short"), q, entry: name) }
                        defer { q += 8 }
                        return try r.u64(q)
                    }
                    if usize == 0xFFFF_FFFF { usize = try next() }
                    if csize == 0xFFFF_FFFF { csize = try next() }
                    if local == 0xFFFF_FFFF { local = try next() }
                }
                e += 4 + len
            }
            guard let cs = Int(exactlyFile: csize), let us = Int(exactlyFile: usize), let lo = Int(exactlyFile: local) else {
                throw fail(.zipEntryOutOfBounds(name: name), p, entry: name)
            }
            // Local header: its own name and extra lengths decide where the data starts.
            guard lo <= r.count - 30, try r.u32(lo) == Self.localHeaderSignature else {
                if lo > r.count - 30 { throw fail(.zipEntryOutOfBounds(name: name), lo, entry: name) }
                throw fail(.zipStructure("bad local header signature"), lo, entry: name)
            }
            let localNameLen = Int(try r.u16(lo + 26))
            let localExtraLen = Int(try r.u16(lo + 28))
            let dataOffset = lo + 30 + localNameLen + localExtraLen
            let (dataEnd, overflow) = dataOffset.addingReportingOverflow(cs)
            guard !overflow, dataEnd <= cdOffset, dataEnd <= r.count else {
                throw fail(.zipEntryOutOfBounds(name: name), lo, entry: name)
            }
            if method == 0, cs != us {
                throw fail(.zipStructure("stored entry with compressed size \(cs) != size \(us)"), p, entry: name)
            }
            guard index[name] == nil else { throw fail(.zipDuplicateEntry(name), p, entry: name) }
            index[name] = entries.count
            entries.append(Entry(name: name, method: method, compressedSize: cs, uncompressedSize: us,
                                 localHeaderOffset: lo, dataOffset: dataOffset))
            p = recordEnd
        }

        // Names equal but for ASCII case: miniz would pick one of them by its own order.
        var folded: [String: [String]] = [:]
        for e in entries { folded[Self.caseFolded(e.name), default: []].append(e.name) }
        let twins = folded.values.filter { $0.count > 1 }.sorted { $0[0] < $1[0] }
        if let first = twins.first, !allowCaseTwins {
            throw fail(.zipAmbiguous("entries \(first.map { "'\($0)'" }.joined(separator: " and ")) differ only in case; "
                                     + "torch's reader finds names case-insensitively"), entry: first[0])
        }
        caseTwins = twins

        // No two entries may share bytes (local header through end of data).
        let sorted = entries.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.dataOffset + a.compressedSize > b.localHeaderOffset {
            throw fail(.zipOverlappingEntries(a.name, b.name), b.localHeaderOffset, entry: b.name)
        }
        self.entries = entries
        self.index = index
    }

    private static func checkName(_ name: String, nameBytes: UnsafeRawBufferPointer,
                                  fail: (CheckpointError.Kind) -> CheckpointError) throws {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if name.isEmpty || nameBytes.contains(0) || name.hasPrefix("/") || name.contains("\\")
            || parts.contains(where: { $0 == ".." }) || (name.count >= 2 && name.dropFirst().first == ":") {
            throw fail(.zipUnsafeName(name))
        }
    }

    func entry(named name: String) -> Entry? { index[name].map { entries[$0] } }

    /// A name with ASCII letters lowered, as miniz compares names (`MZ_TOLOWER`, byte by byte).
    static func caseFolded(_ name: String) -> String {
        String(decoding: name.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 32 : $0 }, as: UTF8.self)
    }

    /// The entry's bytes: a view of the mapped file when stored, inflated otherwise.
    func data(of entry: Entry, limits: ReaderLimits) throws -> ByteSlice {
        switch entry.method {
        case 0:
            guard let slice = ByteSlice(owner: file).slice(entry.dataOffset, entry.compressedSize) else {
                throw CheckpointError(.zipEntryOutOfBounds(name: entry.name), file: fileName, entry: entry.name,
                                      offset: entry.localHeaderOffset)
            }
            return slice
        case 8:
            return try inflate(entry, limits: limits)
        default:
            throw CheckpointError(.zipUnsupportedCompression(method: entry.method), file: fileName,
                                  entry: entry.name, offset: entry.localHeaderOffset)
        }
    }
}
