import SystemPackage

/// The parts of an ELF64 little-endian shared object that ``ELFCheck`` looks at, read once from the sealed
/// copy of a plugin file (which can neither shrink nor change while it is read), every offset checked
/// against the bytes before it is used.
struct ELFImage {
    /// One program header.
    struct Segment {
        let index: Int
        let type: UInt32
        let flags: UInt32
        let offset: UInt64
        let address: UInt64
        let fileSize: UInt64
        let memorySize: UInt64

        var isExecutable: Bool { flags & 1 != 0 }
        var isWritable: Bool { flags & 2 != 0 }
        /// `segment N (PT_LOAD)`.
        var label: String { "segment \(index) (\(ELFImage.segmentNames[type] ?? "type 0x\(hex(type))"))" }

        /// Whether `[start, start + count)` lies inside what this segment occupies in memory.
        func holds(address start: UInt64, count: UInt64) -> Bool {
            start >= address && count <= memorySize && start - address <= memorySize - count
        }
    }

    static let load: UInt32 = 1, dynamic: UInt32 = 2, relro: UInt32 = 0x6474_E552
    static let segmentNames = [load: "PT_LOAD", dynamic: "PT_DYNAMIC", relro: "PT_GNU_RELRO"]

    /// The path of the file, for the refusals.
    let path: String
    /// The whole file.
    let bytes: [UInt8]
    /// Every program header, in file order.
    private(set) var segments: [Segment] = []
    /// The loadable segments, in file order.
    var loads: [Segment] { segments.filter { $0.type == Self.load } }

    /// Reads the file open at `descriptor` (`size` bytes) and its program headers.
    init(path: String, descriptor: Int32, size: UInt64) throws(RegistryError) {
        self.path = path
        let file = FileDescriptor(rawValue: descriptor)
        var bytes = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        while done < bytes.count {
            let got = try? bytes.withUnsafeMutableBytes { raw in
                try file.read(fromAbsoluteOffset: Int64(done), into: UnsafeMutableRawBufferPointer(rebasing: raw[done...]))
            }
            guard let got, got > 0 else {
                throw RegistryError(path: path, reason: .notLoadable("cannot read its copy: it ended at byte \(done) of \(size)"))
            }
            done += got
        }
        self.bytes = bytes
        segments = try readSegments()
    }

    /// A refusal of this file as not a well-formed shared object, for `words`.
    func problem(_ words: String) -> RegistryError {
        RegistryError(path: path, reason: .invalidSharedObject(words))
    }

    /// The little-endian integer at file offset `offset`; the caller has checked that it lies inside the file.
    func integer<T: FixedWidthInteger>(at offset: UInt64, as type: T.Type = T.self) -> T {
        precondition(offset <= UInt64(bytes.count) && UInt64(bytes.count) - offset >= UInt64(MemoryLayout<T>.size),
                     "ELF read outside checked bytes")
        return T(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: Int(offset), as: T.self) })
    }

    /// The file offset of image address `address`, where one loadable segment backs all `count` bytes from
    /// there with bytes of the file; nil otherwise.
    func fileOffset(of address: UInt64, count: UInt64) -> UInt64? {
        guard let load = load(holding: address, count: count), address - load.address <= load.fileSize,
              count <= load.fileSize - (address - load.address) else { return nil }
        return load.offset + (address - load.address)
    }

    /// The loadable segment holding `[address, address + count)` in memory.
    func load(holding address: UInt64, count: UInt64 = 1) -> Segment? {
        loads.first { $0.holds(address: address, count: count) }
    }

    // MARK: - Header and program headers

    /// Checks the identification and the header, and reads the program headers.
    private func readSegments() throws(RegistryError) -> [Segment] {
        let size = UInt64(bytes.count)
        guard size > 0 else { throw problem("the file is empty (a copy that has not started?)") }
        guard bytes.prefix(4).elementsEqual([0x7F, 0x45, 0x4C, 0x46].prefix(bytes.count)) else {
            throw problem("it is not an ELF file (it does not start with the bytes 7f 45 4c 46, \"\\x7fELF\")")
        }
        guard size >= 64 else { throw problem("the file has \(size) bytes, fewer than the 64 of an ELF header: it is truncated") }
        switch bytes[4] {
        case 2: break
        case 1: throw problem("it is a 32-bit ELF file; this host (\(Self.machineName(Self.hostMachine))) loads 64-bit shared objects")
        default: throw problem("its ELF class byte is \(bytes[4]); allowed: 2 (64-bit)")
        }
        guard bytes[5] == 1 else {
            throw problem(bytes[5] == 2 ? "it is a big-endian ELF file; this host is little-endian"
                                        : "its ELF data-encoding byte is \(bytes[5]); allowed: 1 (little-endian)")
        }
        guard bytes[6] == 1 else { throw problem("its ELF identification version is \(bytes[6]); allowed: 1") }
        let type: UInt16 = integer(at: 16), machine: UInt16 = integer(at: 18), version: UInt32 = integer(at: 20)
        guard type == 3 else { throw problem(Self.wrongType(type)) }
        guard machine == Self.hostMachine else {
            throw problem("it is built for \(Self.machineName(machine)); this host is \(Self.machineName(Self.hostMachine))")
        }
        guard version == 1 else { throw problem("its ELF version (e_version) is \(version); allowed: 1") }
        let headerSize: UInt16 = integer(at: 52)
        guard headerSize == 64 else { throw problem("its header says the ELF header is \(headerSize) bytes; an ELF64 header is 64") }
        let programHeaders: UInt64 = integer(at: 32), sectionHeaders: UInt64 = integer(at: 40)
        let count = try checkTable("program header", offset: programHeaders, sizeAt: 54, countAt: 56, entrySize: 56, limit: 256)
        // The loader does not read the section headers, but they end the file: a copy cut short loses them first.
        if sectionHeaders > 0 || integer(at: 60, as: UInt16.self) > 0 {
            _ = try checkTable("section header", offset: sectionHeaders, sizeAt: 58, countAt: 60, entrySize: 64, limit: 65534)
        }
        return (0..<count).map { index in
            let at = programHeaders + 56 * UInt64(index)
            return Segment(index: index, type: integer(at: at), flags: integer(at: at + 4), offset: integer(at: at + 8),
                           address: integer(at: at + 16), fileSize: integer(at: at + 32), memorySize: integer(at: at + 40))
        }
    }

    /// Checks that a header table has entries of the ELF64 size, a sane count, and lies inside the file.
    private func checkTable(_ name: String, offset: UInt64, sizeAt: UInt64, countAt: UInt64, entrySize: UInt64,
                            limit: Int) throws(RegistryError) -> Int {
        let declaredSize: UInt16 = integer(at: sizeAt), count: UInt16 = integer(at: countAt)
        guard UInt64(declaredSize) == entrySize else {
            throw problem("its \(name) entries are \(declaredSize) bytes; ELF64 \(name)s are \(entrySize)")
        }
        guard count >= 1, Int(count) <= limit else { throw problem("it declares \(count) \(name)s; allowed: 1 to \(limit)") }
        guard offset <= UInt64(bytes.count), UInt64(count) * entrySize <= UInt64(bytes.count) - offset else {
            throw problem("its \(name) table (\(count) entries at byte \(offset)) ends past the end of the file "
                          + "(\(bytes.count) bytes): the file is truncated or its header is damaged")
        }
        return Int(count)
    }

    // MARK: - Names

    #if arch(x86_64)
    static let hostMachine: UInt16 = 62
    #elseif arch(arm64)
    static let hostMachine: UInt16 = 183
    #endif

    /// `e_machine` in words.
    static func machineName(_ value: UInt16) -> String {
        let names: [UInt16: String] = [3: "x86 (32-bit, EM_386)", 40: "ARM (32-bit)", 62: "x86_64", 183: "AArch64", 243: "RISC-V"]
        return names[value] ?? "machine \(value) (e_machine)"
    }

    /// Why an `e_type` other than `ET_DYN` cannot be loaded, in words.
    static func wrongType(_ value: UInt16) -> String {
        switch value {
        case 1: "it is a relocatable object file (.o), not a shared object; link it with -shared"
        case 2: "it is an executable (ET_EXEC), not a shared object; build it with -shared -fPIC"
        case 4: "it is a core dump, not a shared object"
        default: "its ELF type (e_type) is \(value); allowed: 3 (ET_DYN, a shared object)"
        }
    }
}

/// `value` in hexadecimal.
func hex<T: BinaryInteger>(_ value: T) -> String { String(value, radix: 16) }
