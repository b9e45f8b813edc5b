#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why a file is not an ELF shared object the dynamic loader could map safely; the words say where.
struct ELFProblem: Error {
    let words: String
    init(_ words: String) { self.words = words }
}

/// The parts of an ELF64 little-endian file that the dynamic loader reads, read with `pread` through a
/// descriptor, every offset and length checked against the file's size before it is used.
///
/// Nothing is mapped: a file that shrinks while it is read (a copy being rewritten) gives short reads,
/// which are reported, never a `SIGBUS`.
struct ELFImage {
    /// `e_type`, `e_machine` and the table positions of the ELF header.
    struct Header {
        let type: UInt16
        let machine: UInt16
        let version: UInt32
        let programHeaderOffset: UInt64
        let sectionHeaderOffset: UInt64
        let headerSize: UInt16
        let programHeaderSize: UInt16
        let programHeaderCount: UInt16
        let sectionHeaderSize: UInt16
        let sectionHeaderCount: UInt16
    }

    /// One program header.
    struct Segment {
        let index: Int
        let type: UInt32
        let flags: UInt32
        let offset: UInt64
        let address: UInt64
        let fileSize: UInt64
        let memorySize: UInt64
        let alignment: UInt64

        var isExecutable: Bool { flags & 1 != 0 }
        var isWritable: Bool { flags & 2 != 0 }
        /// `segment N (PT_LOAD)`.
        var label: String { "segment \(index) (\(ELFNames.segmentType(type)))" }

        /// Whether `[address, address + count)` lies inside what this segment occupies in memory.
        func holds(address start: UInt64, count: UInt64) -> Bool {
            start >= address && count <= memorySize && start - address <= memorySize - count
        }
    }

    static let headerSize: UInt64 = 64
    static let programHeaderSize: UInt64 = 56

    let descriptor: Int32
    let fileSize: UInt64
    private(set) var header: Header!
    private(set) var segments: [Segment] = []

    /// The loadable segments, in file order.
    var loads: [Segment] { segments.filter { $0.type == ELFNames.load } }

    /// Reads the identification bytes, the header and the program headers of the file open at `descriptor`,
    /// checking the class, byte order, type and machine against this host.
    init(descriptor: Int32, fileSize: UInt64) throws(ELFProblem) {
        self.descriptor = descriptor
        self.fileSize = fileSize
        header = try readHeader()
        segments = try readSegments()
    }

    // MARK: - Reading

    /// `count` bytes at file offset `offset`, or nil when they are not all inside the file.
    func bytes(at offset: UInt64, count: UInt64) -> ELFBytes? {
        guard offset <= fileSize, count <= fileSize - offset, count <= UInt64(Int32.max) else { return nil }
        var buffer = [UInt8](repeating: 0, count: Int(count))
        var done = 0
        while done < buffer.count {
            let got = buffer.withUnsafeMutableBytes { raw in
                pread(descriptor, raw.baseAddress! + done, raw.count - done, off_t(offset) + off_t(done))
            }
            if got < 0, errno == EINTR { continue }
            guard got > 0 else { return nil }
            done += got
        }
        return ELFBytes(buffer)
    }

    /// The bytes the loader will see at image address `address`: from the file where the loadable segment
    /// holding them is backed by it, zero beyond (`.bss`). Nil unless one loadable segment holds all of them.
    func memory(at address: UInt64, count: UInt64) -> ELFBytes? {
        guard let load = loads.first(where: { $0.holds(address: address, count: count) }) else { return nil }
        let start = address - load.address
        let backed = start < load.fileSize ? min(count, load.fileSize - start) : 0
        guard var bytes = backed > 0 ? bytes(at: load.offset + start, count: backed) : ELFBytes([]) else { return nil }
        if backed < count { bytes.append(zeros: Int(count - backed)) }
        return bytes
    }

    /// The loadable segment holding `[address, address + count)` in memory.
    func load(holding address: UInt64, count: UInt64 = 1) -> Segment? {
        loads.first { $0.holds(address: address, count: count) }
    }

    // MARK: - Header and program headers

    private func readHeader() throws(ELFProblem) -> Header {
        guard fileSize > 0 else { throw ELFProblem("the file is empty (a copy that has not started?)") }
        let magic: [UInt8] = [0x7F, 0x45, 0x4C, 0x46]
        guard let ident = bytes(at: 0, count: min(fileSize, 16)),
              ident.data.prefix(4).elementsEqual(magic.prefix(ident.count)) else {
            throw ELFProblem("it is not an ELF file (it does not start with the bytes 7f 45 4c 46, \"\\x7fELF\")")
        }
        guard ident.count == 16, fileSize >= Self.headerSize, let raw = bytes(at: 0, count: Self.headerSize) else {
            throw ELFProblem("the file has \(fileSize) bytes, fewer than the \(Self.headerSize) of an ELF header: it is truncated")
        }
        switch raw.data[4] {
        case 2: break
        case 1: throw ELFProblem("it is a 32-bit ELF file; this host (\(ELFNames.hostMachineName)) loads 64-bit shared objects")
        default: throw ELFProblem("its ELF class byte is \(raw.data[4]); allowed: 2 (64-bit)")
        }
        guard raw.data[5] == 1 else {
            throw ELFProblem(raw.data[5] == 2 ? "it is a big-endian ELF file; this host is little-endian"
                                              : "its ELF data-encoding byte is \(raw.data[5]); allowed: 1 (little-endian)")
        }
        guard raw.data[6] == 1 else { throw ELFProblem("its ELF identification version is \(raw.data[6]); allowed: 1") }
        let header = Header(
            type: raw.u16(16), machine: raw.u16(18), version: raw.u32(20),
            programHeaderOffset: raw.u64(32), sectionHeaderOffset: raw.u64(40), headerSize: raw.u16(52),
            programHeaderSize: raw.u16(54), programHeaderCount: raw.u16(56), sectionHeaderSize: raw.u16(58),
            sectionHeaderCount: raw.u16(60))
        guard header.type == 3 else { throw ELFProblem(ELFNames.wrongType(header.type)) }
        guard header.machine == ELFNames.hostMachine else {
            throw ELFProblem("it is built for \(ELFNames.machine(header.machine)); this host is \(ELFNames.hostMachineName)")
        }
        guard header.version == 1 else { throw ELFProblem("its ELF version (e_version) is \(header.version); allowed: 1") }
        guard UInt64(header.headerSize) == Self.headerSize else {
            throw ELFProblem("its header says the ELF header is \(header.headerSize) bytes; an ELF64 header is \(Self.headerSize)")
        }
        try checkTable("program header", offset: header.programHeaderOffset, entrySize: header.programHeaderSize,
                       expectedSize: Self.programHeaderSize, count: header.programHeaderCount, limit: 256)
        if header.sectionHeaderCount > 0 || header.sectionHeaderOffset > 0 {
            try checkTable("section header", offset: header.sectionHeaderOffset, entrySize: header.sectionHeaderSize,
                           expectedSize: 64, count: header.sectionHeaderCount, limit: Int(UInt16.max) - 1)
        }
        return header
    }

    /// Checks that a header table has entries of the ELF64 size, a sane count, and lies inside the file.
    private func checkTable(_ name: String, offset: UInt64, entrySize: UInt16, expectedSize: UInt64, count: UInt16,
                            limit: Int) throws(ELFProblem) {
        guard UInt64(entrySize) == expectedSize else {
            throw ELFProblem("its \(name) entries are \(entrySize) bytes; ELF64 \(name)s are \(expectedSize)")
        }
        guard count >= 1, Int(count) <= limit else {
            throw ELFProblem("it declares \(count) \(name)s; allowed: 1 to \(limit)")
        }
        let size = UInt64(count) * expectedSize
        guard offset <= fileSize, size <= fileSize - offset else {
            throw ELFProblem("its \(name) table (\(count) entries at byte \(offset)) ends past the end of the file "
                             + "(\(fileSize) bytes): the file is truncated or its header is damaged")
        }
    }

    private func readSegments() throws(ELFProblem) -> [Segment] {
        let count = UInt64(header.programHeaderCount)
        guard let table = bytes(at: header.programHeaderOffset, count: count * Self.programHeaderSize) else {
            throw ELFProblem("its program headers could not be read (the file shrank while it was read?)")
        }
        return (0..<Int(count)).map { index in
            let at = index * Int(Self.programHeaderSize)
            return Segment(index: index, type: table.u32(at), flags: table.u32(at + 4), offset: table.u64(at + 8),
                           address: table.u64(at + 16), fileSize: table.u64(at + 32), memorySize: table.u64(at + 40),
                           alignment: table.u64(at + 48))
        }
    }
}

/// Bytes read from an ELF file, with little-endian loads that trap on no offset the caller checked.
struct ELFBytes {
    private(set) var data: [UInt8]
    init(_ data: [UInt8]) { self.data = data }

    var count: Int { data.count }

    mutating func append(zeros count: Int) { data += repeatElement(0, count: count) }

    func u16(_ offset: Int) -> UInt16 { load(offset, as: UInt16.self) }
    func u32(_ offset: Int) -> UInt32 { load(offset, as: UInt32.self) }
    func u64(_ offset: Int) -> UInt64 { load(offset, as: UInt64.self) }

    private func load<T: FixedWidthInteger>(_ offset: Int, as type: T.Type) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= data.count, "ELF read outside checked bytes")
        return T(littleEndian: data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) })
    }

    /// The NUL-terminated string at `offset`, or nil when no NUL ends it inside these bytes.
    func string(at offset: Int) -> String? {
        guard offset >= 0, offset < data.count, let end = data[offset...].firstIndex(of: 0) else { return nil }
        return String(decoding: data[offset..<end], as: UTF8.self)
    }
}
