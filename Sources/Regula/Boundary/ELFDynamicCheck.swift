/// The checks on a shared object's dynamic section: every table the loader walks (strings, symbols, the
/// hash tables, symbol versions, relocations) lies inside a loadable segment and inside the file, every
/// index stays inside its table, every relocation writes inside a writable segment, and every function
/// the loader calls before the plugin's entry (initializers, finalizers, IFUNC resolvers) is in the code.
///
/// The conditions are those under which glibc's loader (`elf/dl-load.c`, `dl-reloc.c`, `dl-version.c`,
/// `dl-lookup.c`, `dl-init.c`) would read, write or jump outside the mapped file, divide by zero or fail one
/// of its own assertions (which ends the process): a file that passes can still hold broken code.
struct ELFDynamicCheck {
    struct Symbol {
        let name: UInt32
        let info: UInt8
        let other: UInt8
        let section: UInt16
        let value: UInt64
        var type: UInt8 { info & 0xF }
        var binding: UInt8 { info >> 4 }
        var isDefined: Bool { section != 0 }
    }

    struct Relocation {
        let offset: UInt64
        let type: UInt32
        let symbol: UInt64
        let addend: UInt64
    }

    let image: ELFImage
    private var entries: [(tag: UInt64, value: UInt64)] = []

    /// Reads the dynamic entries up to `DT_NULL`, which must come before the segment ends.
    init(image: ELFImage, dynamic: ELFImage.Segment) throws(ELFProblem) {
        self.image = image
        let size = min(dynamic.memorySize, image.fileSize) / 16 * 16
        guard let bytes = image.memory(at: dynamic.address, count: size) else {
            throw ELFProblem("the dynamic section cannot be read where it is loaded")
        }
        for at in stride(from: 0, to: bytes.count, by: 16) {
            let tag = bytes.u64(at)
            if tag == DynamicTag.null { return }
            entries.append((tag, bytes.u64(at + 8)))
        }
        throw ELFProblem("the dynamic section has no DT_NULL entry before it ends, so the loader would read past it")
    }

    /// The value of `tag`; the last one wins, as in glibc.
    func value(_ tag: UInt64) -> UInt64? { entries.last { $0.tag == tag }?.value }

    /// Runs every check; returns how `symbol` is exported.
    func check(entrySymbol symbol: String) throws(ELFProblem) -> ELFCheck.Entry {
        try checkAddressesAndPairs()
        let strings = try table(DynamicTag.stringTable, size: value(DynamicTag.stringTableSize) ?? 0, what: "string table")
        for entry in entries {
            if let name = DynamicTag.strings[entry.tag] { _ = try string(entry.value, in: strings, for: name) }
        }
        let count = try symbolCount()
        guard count <= image.fileSize / 24 else {
            throw ELFProblem("its hash table counts \(count) symbols, more than the file could hold")
        }
        let symbolBytes = try table(DynamicTag.symbolTable, size: count * 24, what: "symbol table (\(count) symbols)")
        let symbols = (0..<Int(count)).map { index in
            let at = index * 24
            return Symbol(name: symbolBytes.u32(at), info: symbolBytes.data[at + 4], other: symbolBytes.data[at + 5],
                          section: symbolBytes.u16(at + 6), value: symbolBytes.u64(at + 8))
        }
        for (index, symbol) in symbols.enumerated() {
            _ = try string(UInt64(symbol.name), in: strings, for: "symbol \(index)'s name")
            if index > 0, !symbol.isDefined, symbol.other & 3 != 0 {
                throw ELFProblem("undefined symbol \(index) has non-default visibility (\(symbol.other & 3)), so the loader "
                                 + "would bind it to the start of the file itself")
            }
            if symbol.isDefined, symbol.type == 10, !isCode(symbol.value) {
                throw ELFProblem("IFUNC symbol \(index) points at 0x\(hex(symbol.value)), outside the file's code; the "
                                 + "loader would call it")
            }
        }
        try checkVersions(strings: strings, symbolCount: count)
        let rela = try relocationTable(DynamicTag.rela, size: DynamicTag.relaSize, symbols: symbols)
        try checkRelativeCount(rela)
        let relocations = try rela + relocationTable(DynamicTag.pltRelocations, size: DynamicTag.pltRelocationSize, symbols: symbols)
        let relative = try relrAddresses()
        try checkInitializers(relocations: relocations, relr: relative, symbols: symbols)
        return try entry(named: symbol, symbols: symbols, strings: strings)
    }

    // MARK: - Entries

    private func checkAddressesAndPairs() throws(ELFProblem) {
        for entry in entries {
            if let name = DynamicTag.addresses[entry.tag], image.load(holding: entry.value) == nil {
                throw ELFProblem("\(name) is 0x\(hex(entry.value)), outside every loadable segment")
            }
        }
        func require(_ tag: UInt64, _ name: String, when present: UInt64, _ presentName: String, equals: UInt64? = nil)
            throws(ELFProblem) {
            guard value(present) != nil else { return }
            guard let found = value(tag) else { throw ELFProblem("it has \(presentName) but no \(name)") }
            if let equals, found != equals { throw ELFProblem("\(name) is \(found); allowed: \(equals)") }
        }
        guard value(DynamicTag.stringTable) != nil, value(DynamicTag.symbolTable) != nil else {
            throw ELFProblem("its dynamic section has no symbol table (DT_SYMTAB) or no string table (DT_STRTAB)")
        }
        guard value(DynamicTag.hash) != nil || value(DynamicTag.gnuHash) != nil else {
            throw ELFProblem("its dynamic section has no symbol hash table (DT_HASH or DT_GNU_HASH)")
        }
        guard value(DynamicTag.rel) == nil else {
            throw ELFProblem("it has REL relocations (DT_REL); shared objects for this machine use RELA")
        }
        try require(DynamicTag.stringTableSize, "DT_STRSZ", when: DynamicTag.stringTable, "DT_STRTAB")
        try require(DynamicTag.symbolEntrySize, "DT_SYMENT", when: DynamicTag.symbolEntrySize, "DT_SYMENT", equals: 24)
        try require(DynamicTag.relaSize, "DT_RELASZ", when: DynamicTag.rela, "DT_RELA")
        try require(DynamicTag.relaEntrySize, "DT_RELAENT", when: DynamicTag.rela, "DT_RELA", equals: 24)
        try require(DynamicTag.pltRelocationSize, "DT_PLTRELSZ", when: DynamicTag.pltRelocations, "DT_JMPREL")
        try require(DynamicTag.pltRelocationKind, "DT_PLTREL", when: DynamicTag.pltRelocations, "DT_JMPREL", equals: DynamicTag.rela)
        try require(DynamicTag.pltRelocationKind, "DT_PLTREL", when: DynamicTag.pltRelocationKind, "DT_PLTREL", equals: DynamicTag.rela)
        try require(DynamicTag.initializerArraySize, "DT_INIT_ARRAYSZ", when: DynamicTag.initializerArray, "DT_INIT_ARRAY")
        try require(DynamicTag.finalizerArraySize, "DT_FINI_ARRAYSZ", when: DynamicTag.finalizerArray, "DT_FINI_ARRAY")
        try require(DynamicTag.relrSize, "DT_RELRSZ", when: DynamicTag.relr, "DT_RELR")
        try require(DynamicTag.relrEntrySize, "DT_RELRENT", when: DynamicTag.relr, "DT_RELR", equals: 8)
        // The other way round: the loader reads a size's table through the address entry without asking.
        try require(DynamicTag.stringTable, "DT_STRTAB", when: DynamicTag.stringTableSize, "DT_STRSZ")
        try require(DynamicTag.rela, "DT_RELA", when: DynamicTag.relaSize, "DT_RELASZ")
        try require(DynamicTag.pltRelocations, "DT_JMPREL", when: DynamicTag.pltRelocationSize, "DT_PLTRELSZ")
        try require(DynamicTag.initializerArray, "DT_INIT_ARRAY", when: DynamicTag.initializerArraySize, "DT_INIT_ARRAYSZ")
        try require(DynamicTag.finalizerArray, "DT_FINI_ARRAY", when: DynamicTag.finalizerArraySize, "DT_FINI_ARRAYSZ")
        try require(DynamicTag.relr, "DT_RELR", when: DynamicTag.relrSize, "DT_RELRSZ")
        try require(DynamicTag.versionSymbols, "DT_VERSYM", when: DynamicTag.versionDefinitions, "DT_VERDEF")
        try require(DynamicTag.versionSymbols, "DT_VERSYM", when: DynamicTag.versionNeeds, "DT_VERNEED")
    }

    /// The bytes of the table at the address `tag` holds, `size` long, inside one loadable segment and backed
    /// by the file.
    func table(_ tag: UInt64, size: UInt64, what: String) throws(ELFProblem) -> ELFBytes {
        guard let address = value(tag) else { return ELFBytes([]) }
        guard size <= image.fileSize, let load = image.load(holding: address, count: max(size, 1)),
              address - load.address <= load.fileSize, size <= load.fileSize - (address - load.address),
              let bytes = image.memory(at: address, count: size) else {
            throw ELFProblem("its \(what) (\(size) bytes at 0x\(hex(address))) does not lie inside the file's loaded data")
        }
        return bytes
    }

    private func string(_ offset: UInt64, in strings: ELFBytes, for what: String) throws(ELFProblem) -> String {
        guard offset < UInt64(strings.count), let text = strings.string(at: Int(offset)) else {
            throw ELFProblem("\(what) is at offset \(offset) of a string table of \(strings.count) bytes, or is not terminated")
        }
        return text
    }

    func isCode(_ address: UInt64) -> Bool { image.load(holding: address)?.isExecutable == true }

    // MARK: - Symbols

    /// The number of dynamic symbols, from the hash tables, each of which must be consistent.
    private func symbolCount() throws(ELFProblem) -> UInt64 {
        var count: UInt64 = 0
        if value(DynamicTag.hash) != nil {
            let head = try table(DynamicTag.hash, size: 8, what: "DT_HASH table")
            let (buckets, chains) = (UInt64(head.u32(0)), UInt64(head.u32(4)))
            guard buckets >= 1 else { throw ELFProblem("its DT_HASH table has no buckets; the loader would divide by zero") }
            let hash = try table(DynamicTag.hash, size: 8 + 4 * (buckets + chains), what: "DT_HASH table")
            for index in 0..<Int(buckets + chains) where UInt64(hash.u32(8 + 4 * index)) >= chains {
                throw ELFProblem("its DT_HASH table refers to symbol \(hash.u32(8 + 4 * index)) of \(chains)")
            }
            count = chains
        }
        if value(DynamicTag.gnuHash) != nil {
            count = max(count, try gnuHashSymbolCount())
        }
        // A GNU hash table counts only the symbols the file exports; undefined ones come before them, and a
        // file that exports nothing leaves them all uncounted. The section header of .dynsym, where there is
        // one for the same address, says how many there are.
        return max(count, dynamicSymbolSectionCount() ?? 0)
    }

    /// The entries of the SHT_DYNSYM section at DT_SYMTAB's address, when the file has a readable section
    /// header table that lists one (the loader does not need it, so it may be absent).
    private func dynamicSymbolSectionCount() -> UInt64? {
        guard let header = image.header, header.sectionHeaderSize == 64, let address = value(DynamicTag.symbolTable),
              let table = image.bytes(at: header.sectionHeaderOffset, count: 64 * UInt64(header.sectionHeaderCount)) else {
            return nil
        }
        for index in 0..<Int(header.sectionHeaderCount) {
            let at = 64 * index
            guard table.u32(at + 4) == 11, table.u64(at + 16) == address, table.u64(at + 56) == 24 else { continue }
            return table.u64(at + 32) / 24
        }
        return nil
    }

    /// Walks the GNU hash table as the loader does and returns one past the highest symbol it reaches.
    private func gnuHashSymbolCount() throws(ELFProblem) -> UInt64 {
        let head = try table(DynamicTag.gnuHash, size: 16, what: "DT_GNU_HASH table")
        let (buckets, first, bloom, shift) = (UInt64(head.u32(0)), UInt64(head.u32(4)), UInt64(head.u32(8)), head.u32(12))
        guard buckets >= 1 else { throw ELFProblem("its DT_GNU_HASH table has no buckets; the loader would divide by zero") }
        guard bloom >= 1, bloom & (bloom - 1) == 0, shift < 64 else {
            throw ELFProblem("its DT_GNU_HASH bloom filter has \(bloom) words and shift \(shift); allowed: a power of two, "
                             + "shift below 64 (the loader asserts this)")
        }
        let fixed = 16 + 8 * bloom + 4 * buckets
        let whole = try table(DynamicTag.gnuHash, size: min(fixed, image.fileSize + 1), what: "DT_GNU_HASH table")
        let address = value(DynamicTag.gnuHash)!
        var count = first, steps: UInt64 = 0
        for bucket in 0..<Int(buckets) {
            var index = UInt64(whole.u32(Int(16 + 8 * bloom) + 4 * bucket))
            guard index != 0 else { continue }
            guard index >= first else {
                throw ELFProblem("a DT_GNU_HASH bucket starts at symbol \(index), below the first hashed symbol \(first)")
            }
            while true {
                steps += 1
                guard steps <= image.fileSize / 4, index - first < image.fileSize / 4,
                      let word = image.memory(at: address &+ fixed &+ 4 * (index - first), count: 4) else {
                    throw ELFProblem("a DT_GNU_HASH chain runs past the file's loaded data (symbol \(index))")
                }
                count = max(count, index + 1)
                if word.u32(0) & 1 == 1 { break }
                index += 1
            }
        }
        return count
    }

    /// How the file exports `name`: a defined, global or weak, visible symbol of the file itself.
    private func entry(named name: String, symbols: [Symbol], strings: ELFBytes) throws(ELFProblem) -> ELFCheck.Entry {
        let exported = symbols.first {
            $0.isDefined && [1, 2, 10].contains($0.binding) && [0, 3].contains($0.other & 3)
                && strings.string(at: Int($0.name)) == name
        }
        guard let symbol = exported else { return .missing }
        switch symbol.type {
        case 2, 10:
            guard isCode(symbol.value) else {
                throw ELFProblem("\(name) is at 0x\(hex(symbol.value)), outside the file's code")
            }
            return .function
        case 0:
            return isCode(symbol.value) ? .function : .data
        default:
            return .data
        }
    }

    // MARK: - Versions

    /// Walks the version needs and definitions as `dl-version.c` does; every version index a symbol uses
    /// must have an entry there.
    private func checkVersions(strings: ELFBytes, symbolCount: UInt64) throws(ELFProblem) {
        var highest: UInt64 = 0
        let needed = Set(entries.filter { $0.tag == DynamicTag.needed }
            .compactMap { Int(exactly: $0.value).flatMap(strings.string(at:)) })
        if var address = value(DynamicTag.versionNeeds) {
            for _ in 0..<4096 {
                let need = try versionRecord(at: address, count: 16, what: "DT_VERNEED")
                let file = try string(UInt64(need.u32(4)), in: strings, for: "a version need's file name")
                guard needed.contains(file) else {
                    throw ELFProblem("it needs versions of \(quoted(file)), which is not among its DT_NEEDED libraries")
                }
                var aux = address &+ UInt64(need.u32(8))
                for _ in 0..<4096 {
                    let record = try versionRecord(at: aux, count: 16, what: "DT_VERNEED")
                    _ = try string(UInt64(record.u32(8)), in: strings, for: "a needed version's name")
                    highest = max(highest, UInt64(record.u16(6) & 0x7FFF))
                    if record.u32(12) == 0 { break }
                    aux &+= UInt64(record.u32(12))
                }
                if need.u32(12) == 0 { break }
                address &+= UInt64(need.u32(12))
            }
        }
        if var address = value(DynamicTag.versionDefinitions) {
            for _ in 0..<4096 {
                let definition = try versionRecord(at: address, count: 20, what: "DT_VERDEF")
                highest = max(highest, UInt64(definition.u16(4) & 0x7FFF))
                let aux = try versionRecord(at: address &+ UInt64(definition.u32(12)), count: 8, what: "DT_VERDEF")
                _ = try string(UInt64(aux.u32(0)), in: strings, for: "a defined version's name")
                if definition.u32(16) == 0 { break }
                address &+= UInt64(definition.u32(16))
            }
        }
        guard value(DynamicTag.versionSymbols) != nil else { return }
        guard highest >= 1 else {
            throw ELFProblem("it has symbol versions (DT_VERSYM) but defines and needs no version")
        }
        let versions = try table(DynamicTag.versionSymbols, size: 2 * symbolCount, what: "symbol version table")
        for index in 0..<Int(symbolCount) where UInt64(versions.u16(2 * index) & 0x7FFF) > highest {
            throw ELFProblem("symbol \(index) has version index \(versions.u16(2 * index) & 0x7FFF); the file has versions up to \(highest)")
        }
    }

    private func versionRecord(at address: UInt64, count: UInt64, what: String) throws(ELFProblem) -> ELFBytes {
        guard let bytes = image.memory(at: address, count: count) else {
            throw ELFProblem("a \(what) record at 0x\(hex(address)) lies outside the file's loaded data")
        }
        return bytes
    }
}
