#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The checks a plugin file passes before the dynamic loader sees it, kept to what a probe process cannot
/// catch. A file that crashes or trips the loader does so in a probe process first and is refused with what
/// happened (``PluginProbe``); what is checked here is what would load in a probe and still go wrong in the
/// host, and the commonest accident, named in words even where no probe runs:
///
/// - a copy cut short (still being written): the header tables and the loadable and dynamic segments must lie
///   inside the file, or it is refused as truncated;
/// - what the loader maps wrongly without failing: loadable segments that share a page (the later one is
///   mapped over the earlier) and a RELRO range in a segment that is not writable (the loader makes that code
///   read-only, which a probe meets only if the code runs while loading);
/// - where the result depends on what else the process has mapped: a relocation that writes outside every
///   writable segment, a pointer it makes outside the image, or a function the loader calls (`DT_INIT`,
///   `DT_FINI`, an IFUNC resolver) outside the code lands in a neighbour in one process and in a hole in another.
///
/// Damage the loader meets alike in every process (symbol, hash and version tables, notes) is left to the
/// probe. A file that passes can still hold broken code: it runs as the user (Docs/ABI.md, section 13).
enum ELFCheck {
    /// Checks the sealed copy of `file`.
    /// - Throws: ``RegistryError/Reason/invalidSharedObject(_:)`` saying what is wrong and where.
    static func check(_ file: PluginFile) throws(RegistryError) {
        let image = try ELFImage(path: file.path, descriptor: file.descriptor, size: file.stamp.size)
        try checkLoads(image)
        try checkRelocations(image, try dynamicEntries(image))
    }

    private static func checkLoads(_ image: ELFImage) throws(RegistryError) {
        let loads = image.loads
        guard !loads.isEmpty else { throw image.problem("it has no loadable (PT_LOAD) segment") }
        let page = UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 4096))
        for load in loads {
            try checkInsideFile(load, image)
            guard load.fileSize <= load.memorySize else {
                throw image.problem("\(load.label) has more bytes in the file (\(load.fileSize)) than in memory (\(load.memorySize))")
            }
            guard load.memorySize <= UInt64.max - page, load.address <= UInt64.max - page - load.memorySize else {
                throw image.problem("\(load.label) ends past the top of the address space")
            }
        }
        for (before, after) in zip(loads, loads.dropFirst()) {
            let end = (before.address + before.memorySize + page - 1) / page * page
            guard after.address / page * page >= end else {
                throw image.problem("\(after.label) starts at 0x\(hex(after.address)), inside the page(s) of \(before.label) "
                                    + "(0x\(hex(before.address)) to 0x\(hex(before.address + before.memorySize))); loadable "
                                    + "segments must ascend without sharing a page, or the loader maps one over the other")
            }
        }
        for relro in image.segments where relro.type == ELFImage.relro {
            if let load = image.load(holding: relro.address, count: max(relro.memorySize, 1)), !load.isWritable {
                throw image.problem("\(relro.label) lies in \(load.label), which is not writable; the loader would make "
                                    + "part of the code read-only-and-not-executable")
            }
        }
    }

    private static func checkInsideFile(_ segment: ELFImage.Segment, _ image: ELFImage) throws(RegistryError) {
        let size = UInt64(image.bytes.count)
        guard segment.offset <= size, segment.fileSize <= size - segment.offset else {
            let end = segment.offset.addingReportingOverflow(segment.fileSize)
            throw image.problem("\(segment.label) ends at byte \(end.overflow ? "beyond 2^64" : "\(end.partialValue)") but "
                                + "the file has \(size) bytes: it is truncated (a copy still in progress?) or its "
                                + "program header is damaged")
        }
    }

    /// The dynamic entries up to `DT_NULL`, by tag; the last of a tag wins, as in glibc.
    private static func dynamicEntries(_ image: ELFImage) throws(RegistryError) -> [UInt64: UInt64] {
        let dynamics = image.segments.filter { $0.type == ELFImage.dynamic }
        guard let dynamic = dynamics.first else {
            throw image.problem("it has no dynamic section (PT_DYNAMIC), which every shared object has")
        }
        guard dynamics.count == 1 else { throw image.problem("it has \(dynamics.count) dynamic sections (PT_DYNAMIC); allowed: 1") }
        try checkInsideFile(dynamic, image)
        guard let start = image.fileOffset(of: dynamic.address, count: dynamic.fileSize) else {
            throw image.problem("\(dynamic.label) (0x\(hex(dynamic.address)), \(dynamic.fileSize) bytes) lies outside the "
                                + "file's loaded data, where the loader would read it")
        }
        var entries: [UInt64: UInt64] = [:]
        for at in stride(from: start, to: start + dynamic.fileSize / 16 * 16, by: 16) {
            let tag: UInt64 = image.integer(at: at)
            if tag == 0 { return entries }
            entries[tag] = image.integer(at: at + 8)
        }
        throw image.problem("the dynamic section has no DT_NULL entry before it ends, so the loader would read past it")
    }

    #if arch(x86_64)
    /// `R_X86_64_RELATIVE` and `R_X86_64_IRELATIVE`.
    private static let relative: UInt64 = 8, indirect: UInt64 = 37
    #elseif arch(arm64)
    /// `R_AARCH64_RELATIVE` and `R_AARCH64_IRELATIVE`.
    private static let relative: UInt64 = 1027, indirect: UInt64 = 1032
    #endif

    /// Every write the loader makes while relocating (`DT_RELA`, `DT_JMPREL`, `DT_RELR`) lands in a writable
    /// segment, every relative pointer points into the image, and every function it calls is in the code.
    private static func checkRelocations(_ image: ELFImage, _ dynamic: [UInt64: UInt64]) throws(RegistryError) {
        let textRelocations = dynamic[22] != nil || (dynamic[30] ?? 0) & 0x4 != 0
        func isCode(_ address: UInt64) -> Bool { image.load(holding: address)?.isExecutable == true }
        func checkWritable(_ address: UInt64, _ what: String) throws(RegistryError) {
            guard let load = image.load(holding: address, count: 8), load.isWritable || textRelocations else {
                throw image.problem("\(what) writes to 0x\(hex(address)), outside every writable segment")
            }
        }
        /// The file offsets of the entries of the table at `tag`'s address, `sizeTag`'s value long.
        func entries(_ tag: UInt64, size sizeTag: UInt64, of entry: UInt64, _ name: String) throws(RegistryError) -> [UInt64] {
            guard let address = dynamic[tag] else { return [] }
            let size = dynamic[sizeTag] ?? 0
            guard size % entry == 0, let start = image.fileOffset(of: address, count: size) else {
                throw image.problem("its \(name) table (\(size) bytes at 0x\(hex(address))) does not lie inside the file's "
                                    + "loaded data in whole entries of \(entry) bytes")
            }
            return Array(stride(from: start, to: start + size, by: Int(entry)))
        }
        for (tag, name) in [(UInt64(12), "DT_INIT"), (13, "DT_FINI")] {
            if let address = dynamic[tag], !isCode(address) {
                throw image.problem("\(name) is 0x\(hex(address)), outside the file's code; the loader would call it")
            }
        }
        for (tag, sizeTag, name) in [(UInt64(7), UInt64(8), "DT_RELA"), (23, 2, "DT_JMPREL")] {
            for (index, at) in try entries(tag, size: sizeTag, of: 24, name).enumerated() {
                let target: UInt64 = image.integer(at: at), type = image.integer(at: at + 8, as: UInt64.self) & 0xFFFF_FFFF
                let addend: UInt64 = image.integer(at: at + 16), what = "relocation \(index) of \(name)"
                guard type != 0 else { continue }
                try checkWritable(target, what)
                if type == relative, !image.loads.contains(where: { addend >= $0.address && addend - $0.address <= $0.memorySize }) {
                    throw image.problem("\(what) makes a pointer to 0x\(hex(addend)), outside the file's loaded image")
                }
                if type == indirect, !isCode(addend) {
                    throw image.problem("\(what) calls a resolver at 0x\(hex(addend)), outside the file's code")
                }
            }
        }
        // DT_RELR: an even word is an address to relocate; an odd one a bitmap of the 63 words after the last.
        var next: UInt64 = 0
        for (index, at) in try entries(36, size: 35, of: 8, "DT_RELR").enumerated() {
            let word: UInt64 = image.integer(at: at)
            if word & 1 == 0 {
                try checkWritable(word, "DT_RELR entry \(index)")
                next = word &+ 8
            } else {
                for bit in 1..<64 where (word >> UInt64(bit)) & 1 == 1 {
                    try checkWritable(next &+ UInt64(bit - 1) * 8, "DT_RELR entry \(index)")
                }
                next = next &+ 63 * 8
            }
        }
    }
}
