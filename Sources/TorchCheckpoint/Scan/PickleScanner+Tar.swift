import TorchportCore
// MARK: - The pre-0.4 tar format, as torch.load meets it

/// One 512-byte tar header, read by the rules of Python's `tarfile` (`TarInfo.frombuf`), which
/// torch.load tries on every file that is not a zip before it unpickles anything. Python does not
/// need the `ustar` magic: an old V7 header whose checksum is right is a tar.
struct TarHeader {
    static let block = 512

    let name: String
    let size: Int
    let type: UInt8

    /// Whether Python's `tarfile.open` accepts the file's first header (torch.load then reads its
    /// `storages`, `tensors` and `pickle` members instead of unpickling the file).
    static func pythonAccepts(_ buf: UnsafeRawBufferPointer) -> Bool {
        buf.count >= block && TarHeader(UnsafeRawBufferPointer(rebasing: buf[0..<block])) != nil
    }

    /// nil where Python raises (an all-zero block, a bad checksum or number field).
    init?(_ b: UnsafeRawBufferPointer) {
        guard b.count == Self.block, b.contains(where: { $0 != 0 }) else { return nil }
        guard let checksum = Self.number(b, 148, 8) else { return nil }
        var unsigned = 256, signed = 256
        for i in 0..<Self.block where !(148..<156).contains(i) {
            unsigned += Int(b[i])
            signed += Int(Int8(bitPattern: b[i]))
        }
        guard checksum == unsigned || checksum == signed else { return nil }
        // Every number field must parse, as frombuf reads them all.
        for (at, length) in [(100, 8), (108, 8), (116, 8), (136, 12), (329, 8), (337, 8)] {
            guard Self.number(b, at, length) != nil else { return nil }
        }
        guard let size = Self.number(b, 124, 12), size >= 0 else { return nil }
        self.size = size
        self.type = b[156]
        let name = Self.string(b, 0, 100)
        let prefix = Self.string(b, 345, 155)
        // A ustar prefix makes the full name (not for GNU's own header types).
        self.name = prefix.isEmpty || [UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "S")].contains(type)
            ? name : prefix + "/" + name
    }

    /// `nts`: up to the first NUL.
    static func string(_ b: UnsafeRawBufferPointer, _ at: Int, _ length: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: b[at..<(at + length)]).prefix { $0 != 0 }, as: UTF8.self)
    }

    /// `nti`: base-256 when the first byte is 0o200 or 0o377, else `int(text.strip() or "0", 8)`
    /// (a sign, an `0o` prefix and single underscores allowed, as Python's `int` allows them).
    static func number(_ b: UnsafeRawBufferPointer, _ at: Int, _ length: Int) -> Int? {
        let field = UnsafeRawBufferPointer(rebasing: b[at..<(at + length)])
        if field[0] == 0o377 { return nil }  // negative: refused anyway
        if field[0] == 0o200 { return PythonInt(magnitude: field.dropFirst().reversed()).intValue }  // big-endian
        let text = Array(field.prefix { $0 != 0 })
        guard text.allSatisfy({ $0 < 0x80 }) else { return nil }  // decoded as ASCII, strictly
        if text.allSatisfy(PythonInt.isSpace) { return 0 }  // `or "0"`
        return PythonInt.fromLiteral(text, base: 8)?.intValue
    }
}

extension FileScan {
    /// The members torch's `legacy_load` unpickles, in its order: `storages`, `tensors`, `pickle`
    /// (the last member of each name, as `tarfile.getmember` finds it).
    static let tarMembers = ["storages", "tensors", "pickle"]

    /// A file Python's `tarfile` opens: its members are walked as `TarFile.next` walks them, and
    /// the pickles of `storages`, `tensors` and `pickle` scanned. Raw storage data sits between
    /// the pickles of `storages` and `tensors`, whose sizes depend on values only running the
    /// pickles gives: the scan stops there, and the file is not called safe.
    mutating func scanTar(_ buf: UnsafeRawBufferPointer, limits: ReaderLimits) {
        format = .tar
        var members: [String: Range<Int>] = [:]
        var offset = 0, count = 0
        var longName: String?
        while offset <= buf.count - TarHeader.block, count < limits.maxEntries {
            guard let h = TarHeader(UnsafeRawBufferPointer(rebasing: buf[offset..<(offset + TarHeader.block)])) else { break }
            count += 1
            let start = offset + TarHeader.block
            let (padded, overflow) = h.size.addingReportingOverflow(TarHeader.block - 1)
            guard !overflow else { break }
            let end = min(buf.count, start + min(h.size, buf.count))
            let name = longName ?? h.name
            longName = nil
            switch h.type {
            case UInt8(ascii: "L"):  // GNU long name: the data is the next member's name
                longName = String(decoding: buf[start..<end].prefix { $0 != 0 }, as: UTF8.self)
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                notes.append("tar member '\(name)': a pax header, not interpreted (it may rename the next member)")
            default:
                members[name] = start..<end
            }
            let next = start.addingReportingOverflow(padded / TarHeader.block * TarHeader.block)
            guard !next.overflow else { break }
            offset = next.partialValue
        }
        notes.append("a tar archive (torch < 0.4): torch.load reads its members \(Self.tarMembers.joined(separator: ", "))")
        for member in Self.tarMembers {
            guard let range = members[member] else {
                notes.append("no tar member '\(member)' (torch.load would stop there)")
                continue
            }
            let data = UnsafeRawBufferPointer(rebasing: buf[range])
            var pos = 0
            var scanned = 0
            while pos < data.count, data[pos] == Op.proto || scanned == 0, scanned < Self.maxTarPickles {
                let start = pos
                guard scanPickle(data, from: &pos, entry: "tar:\(member)", baseOffset: range.lowerBound, limits: limits,
                                 afterStop: false) != nil, pos > start else { break }
                scanned += 1
            }
            if pos < data.count {
                fatal = fatal ?? "tar member '\(member)' holds \(data.count - pos) bytes after its first \(scanned) pickles "
                    + "(raw storage data whose size only running them tells): not followed"
            }
        }
    }

    /// Pickles scanned per tar member at most.
    static let maxTarPickles = 10_000
}
