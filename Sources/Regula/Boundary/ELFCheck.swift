#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The checks a plugin file passes before the dynamic loader sees it: everything glibc's loader reads from
/// the file while mapping, relocating and initializing it must lie where it says, so that a truncated or
/// damaged copy is refused with words instead of crashing the process inside `dlopen`.
///
/// What is checked: the ELF identification (64-bit, little-endian, `ET_DYN`, this host's machine), that
/// the header tables and every segment lie inside the file, that loadable segments ascend without sharing
/// a page, that every segment the loader reads (dynamic section, notes, TLS image, RELRO range) lies inside
/// a loadable one, and then the dynamic section (``ELFDynamicCheck``). What cannot be checked is whether
/// the code in the file does what it should: a well-formed file runs as the user (Docs/ABI.md, section 13).
enum ELFCheck {
    /// How the file exports the plugin entry point, as far as its symbol table says.
    enum Entry: Equatable {
        /// No defined, exported `regula_plugin_entry` in the file itself.
        case missing
        /// Exported as data (`STT_OBJECT`): calling it would jump into data.
        case data
        /// Exported as a function inside the file's code.
        case function
    }

    /// Checks the shared object open at `descriptor` (`fileSize` bytes).
    /// - Returns: How it exports `symbol`.
    /// - Throws: ``ELFProblem`` saying what is wrong and where.
    static func check(descriptor: Int32, fileSize: UInt64, entrySymbol symbol: String) throws(ELFProblem) -> Entry {
        let image = try ELFImage(descriptor: descriptor, fileSize: fileSize)
        try checkLoads(image)
        let dynamic = try checkSegments(image)
        return try ELFDynamicCheck(image: image, dynamic: dynamic).check(entrySymbol: symbol)
    }

    /// The largest distance from the first loadable byte to the last that is believed: 4 GiB.
    static let largestSpan: UInt64 = 1 << 32

    private static func checkLoads(_ image: ELFImage) throws(ELFProblem) {
        let loads = image.loads
        guard !loads.isEmpty else { throw ELFProblem("it has no loadable (PT_LOAD) segment") }
        let page = UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 4096))
        for load in loads {
            try checkInsideFile(load, image)
            guard load.fileSize <= load.memorySize else {
                throw ELFProblem("\(load.label) has more bytes in the file (\(load.fileSize)) than in memory (\(load.memorySize))")
            }
            guard load.memorySize <= UInt64.max - page, load.address <= UInt64.max - page - load.memorySize else {
                throw ELFProblem("\(load.label) ends past the top of the address space")
            }
        }
        for (before, after) in zip(loads, loads.dropFirst()) {
            let end = (before.address + before.memorySize + page - 1) / page * page
            guard after.address / page * page >= end else {
                throw ELFProblem("\(after.label) starts at 0x\(hex(after.address)), inside the page(s) of \(before.label) "
                                 + "(0x\(hex(before.address)) to 0x\(hex(before.address + before.memorySize))); loadable "
                                 + "segments must ascend without sharing a page, or the loader maps one over the other")
            }
        }
        let span = loads.last!.address + loads.last!.memorySize - loads.first!.address / page * page
        guard span <= largestSpan else {
            throw ELFProblem("its loadable segments span \(span) bytes; more than \(largestSpan) is not believed")
        }
    }

    /// Checks the segments the loader reads through memory; returns the dynamic segment.
    private static func checkSegments(_ image: ELFImage) throws(ELFProblem) -> ELFImage.Segment {
        let dynamics = image.segments.filter { $0.type == ELFNames.dynamic }
        guard let dynamic = dynamics.first else {
            throw ELFProblem("it has no dynamic section (PT_DYNAMIC), which every shared object has")
        }
        guard dynamics.count == 1 else { throw ELFProblem("it has \(dynamics.count) dynamic sections (PT_DYNAMIC); allowed: 1") }
        for segment in image.segments {
            switch segment.type {
            case ELFNames.dynamic, ELFNames.note, ELFNames.property, ELFNames.programHeaders, ELFNames.ehFrame,
                 ELFNames.interpreter:
                try checkInsideFile(segment, image)
                try checkInsideLoad(segment, image, count: segment.memorySize)
            case ELFNames.threadLocal:
                try checkInsideFile(segment, image)
                try checkInsideLoad(segment, image, count: segment.fileSize)
                guard segment.fileSize <= segment.memorySize, segment.memorySize <= 1 << 30 else {
                    throw ELFProblem("\(segment.label) declares \(segment.fileSize) bytes in the file and \(segment.memorySize) "
                                     + "in memory; allowed: file ≤ memory ≤ 1 GiB")
                }
                guard segment.alignment > 0, segment.alignment & (segment.alignment - 1) == 0, segment.alignment <= 1 << 20 else {
                    throw ELFProblem("\(segment.label) has alignment \(segment.alignment); allowed: a power of two up to 1 MiB")
                }
            case ELFNames.relro:
                let load = try checkInsideLoad(segment, image, count: segment.memorySize)
                guard load.isWritable else {
                    throw ELFProblem("\(segment.label) lies in \(load.label), which is not writable; the loader would make "
                                     + "part of the code read-only-and-not-executable")
                }
            default:
                break
            }
            if segment.type == ELFNames.note || segment.type == ELFNames.property { try checkNotes(segment, image) }
        }
        let load = try checkInsideLoad(dynamic, image, count: dynamic.memorySize)
        guard !dynamic.isWritable || load.isWritable else {
            throw ELFProblem("\(dynamic.label) is marked writable but lies in \(load.label), which is not; the loader "
                             + "would write to read-only memory")
        }
        return dynamic
    }

    private static func checkInsideFile(_ segment: ELFImage.Segment, _ image: ELFImage) throws(ELFProblem) {
        guard segment.offset <= image.fileSize, segment.fileSize <= image.fileSize - segment.offset else {
            let end = segment.offset.addingReportingOverflow(segment.fileSize)
            throw ELFProblem("\(segment.label) ends at byte \(end.overflow ? "beyond 2^64" : "\(end.partialValue)") but "
                             + "the file has \(image.fileSize) bytes: it is truncated (a copy still in progress?) or "
                             + "its program header is damaged")
        }
    }

    @discardableResult
    private static func checkInsideLoad(_ segment: ELFImage.Segment, _ image: ELFImage, count: UInt64) throws(ELFProblem)
        -> ELFImage.Segment {
        guard let load = image.load(holding: segment.address, count: max(count, 1)) else {
            throw ELFProblem("\(segment.label) (0x\(hex(segment.address)), \(count) bytes) lies outside every loadable "
                             + "segment, where the loader would read it")
        }
        return load
    }

    /// Walks the notes of a `PT_NOTE` or `PT_GNU_PROPERTY` segment: each header, name and description must end
    /// inside it (the loader reads GNU property notes on x86_64 and AArch64).
    private static func checkNotes(_ segment: ELFImage.Segment, _ image: ELFImage) throws(ELFProblem) {
        guard segment.memorySize <= 1 << 20, let notes = image.memory(at: segment.address, count: segment.memorySize) else {
            throw ELFProblem("\(segment.label) cannot be read where it is loaded, or is larger than 1 MiB")
        }
        let align = segment.alignment == 8 ? 8 : 4
        func padded(_ size: Int) -> Int { (size + align - 1) / align * align }
        var at = 0
        while at + 12 <= notes.count {
            let name = Int(notes.u32(at)), description = Int(notes.u32(at + 4))
            let end = at + 12 + padded(name) + padded(description)
            guard name <= notes.count, description <= notes.count, end <= notes.count else {
                throw ELFProblem("a note in \(segment.label) (at offset \(at)) runs past the segment's end")
            }
            at = end
        }
    }
}

/// `value` in hexadecimal.
func hex<T: BinaryInteger>(_ value: T) -> String { String(value, radix: 16) }
