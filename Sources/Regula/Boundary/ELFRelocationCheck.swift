/// The relocation and initializer checks of ``ELFDynamicCheck``: every relocation writes inside a writable
/// segment, names an existing symbol and makes pointers into the image that point into it, and every
/// function the loader calls on its own (initializers, finalizers, IFUNC resolvers) is in the code.
extension ELFDynamicCheck {
    private var textRelocations: Bool {
        value(DynamicTag.textRelocations) != nil || (value(DynamicTag.flags) ?? 0) & 0x4 != 0
    }

    /// Checks that `[address, address + 8)` is inside a segment the loader may write during relocation.
    private func checkWritable(_ address: UInt64, what: String) throws(ELFProblem) {
        guard let load = image.load(holding: address, count: 8), load.isWritable || textRelocations else {
            throw ELFProblem("\(what) writes to 0x\(hex(address)), outside every writable segment")
        }
    }

    /// Whether `address` is inside, or just past the end of, a loadable segment: where a pointer into the
    /// image may point.
    private func isInImage(_ address: UInt64) -> Bool {
        image.loads.contains { address >= $0.address && address - $0.address <= $0.memorySize }
    }

    func relocationTable(_ tag: UInt64, size sizeTag: UInt64, symbols: [Symbol]) throws(ELFProblem) -> [Relocation] {
        let symbolCount = symbols.count
        let size = value(sizeTag) ?? 0
        guard size % 24 == 0 else { throw ELFProblem("a relocation table's size (\(size)) is not a multiple of 24") }
        let bytes = try table(tag, size: size, what: "relocation table")
        return try (0..<bytes.count / 24).map { index throws(ELFProblem) in
            let at = index * 24
            let relocation = Relocation(offset: bytes.u64(at), type: UInt32(truncatingIfNeeded: bytes.u64(at + 8)),
                                        symbol: bytes.u64(at + 8) >> 32, addend: bytes.u64(at + 16))
            guard relocation.type != 0 else { return relocation }
            try checkWritable(relocation.offset, what: "relocation \(index)")
            guard relocation.symbol < max(symbolCount, 1) else {
                throw ELFProblem("relocation \(index) refers to symbol \(relocation.symbol) of \(symbolCount)")
            }
            if relocation.type == ELFNames.indirectRelocation, !isCode(relocation.addend) {
                throw ELFProblem("relocation \(index) calls a resolver at 0x\(hex(relocation.addend)), outside the file's code")
            }
            // A pointer into the image (the load address plus an offset) must point into the image.
            let symbol = relocation.symbol < symbols.count ? symbols[Int(relocation.symbol)] : nil
            let local = relocation.symbol == 0 || (symbol?.isDefined == true && symbol?.section != 0xFFF1)
            let pointer: UInt64? = switch relocation.type {
            case ELFNames.relativeRelocation: relocation.addend
            case ELFNames.absoluteRelocation where local: (symbol?.value ?? 0) &+ relocation.addend
            default: nil
            }
            if ELFNames.bindingRelocations.contains(relocation.type), relocation.addend != 0 {
                throw ELFProblem("relocation \(index) binds a symbol with addend 0x\(hex(relocation.addend)); GOT and PLT "
                                 + "relocations have addend 0")
            }
            if let pointer, !isInImage(pointer) {
                throw ELFProblem("relocation \(index) makes a pointer to 0x\(hex(pointer)), outside the file's loaded image")
            }
            return relocation
        }
    }

    /// glibc takes the first `DT_RELACOUNT` relocations to be relative ones without looking, and asserts it
    /// (which ends the process).
    func checkRelativeCount(_ relocations: [Relocation]) throws(ELFProblem) {
        guard let count = value(DynamicTag.relativeCount) else { return }
        let table = relocations.prefix(Int(min(count, UInt64(relocations.count))))
        if let index = table.firstIndex(where: { $0.type != ELFNames.relativeRelocation }) {
            throw ELFProblem("DT_RELACOUNT says the first \(count) relocations are relative, but relocation \(index) is of type \(table[index].type)")
        }
    }

    /// The addresses the `DT_RELR` table relocates, each checked to be writable.
    func relrAddresses() throws(ELFProblem) -> Set<UInt64> {
        let size = value(DynamicTag.relrSize) ?? 0
        guard size % 8 == 0 else { throw ELFProblem("DT_RELRSZ (\(size)) is not a multiple of 8") }
        let bytes = try table(DynamicTag.relr, size: size, what: "DT_RELR table")
        var addresses: Set<UInt64> = [], next: UInt64 = 0
        for index in 0..<bytes.count / 8 {
            let word = bytes.u64(8 * index)
            if word & 1 == 0 {
                try checkWritable(word, what: "DT_RELR entry \(index)")
                addresses.insert(word)
                next = word &+ 8
            } else {
                for bit in 1..<64 where (word >> UInt64(bit)) & 1 == 1 {
                    let address = next &+ UInt64(bit - 1) * 8
                    try checkWritable(address, what: "DT_RELR entry \(index)")
                    addresses.insert(address)
                }
                next = next &+ 63 * 8
            }
        }
        return addresses
    }

    /// `DT_INIT`, `DT_FINI` and every entry of the initializer and finalizer arrays, as relocated, must point
    /// into the code: the loader calls them all, the finalizers when the process exits.
    func checkInitializers(relocations: [Relocation], relr: Set<UInt64>, symbols: [Symbol]) throws(ELFProblem) {
        for (tag, name) in [(DynamicTag.initializer, "DT_INIT"), (DynamicTag.finalizer, "DT_FINI")] {
            if let address = value(tag), !isCode(address) {
                throw ELFProblem("\(name) is 0x\(hex(address)), outside the file's code; the loader would call it")
            }
        }
        let byTarget = Dictionary(relocations.map { ($0.offset, $0) }, uniquingKeysWith: { _, last in last })
        for (tag, sizeTag, name) in [(DynamicTag.initializerArray, DynamicTag.initializerArraySize, "DT_INIT_ARRAY"),
                                     (DynamicTag.finalizerArray, DynamicTag.finalizerArraySize, "DT_FINI_ARRAY")] {
            guard let base = value(tag) else { continue }
            let size = value(sizeTag) ?? 0
            guard size % 8 == 0, size <= 8 * 65536 else { throw ELFProblem("\(name) has size \(size); allowed: a multiple of 8") }
            let slots = try table(tag, size: size, what: name)
            for index in 0..<Int(size / 8) {
                let slot = base + UInt64(8 * index)
                let target: UInt64?
                if let relocation = byTarget[slot] {
                    switch relocation.type {
                    case ELFNames.relativeRelocation: target = relocation.addend
                    case ELFNames.indirectRelocation: target = nil
                    default:
                        let symbol = relocation.symbol < symbols.count ? symbols[Int(relocation.symbol)] : nil
                        target = symbol.flatMap { $0.isDefined && $0.section != 0xFFF1 ? $0.value &+ relocation.addend : nil }
                    }
                } else if relr.contains(slot) {
                    target = slots.u64(8 * index)
                } else {
                    throw ELFProblem("\(name)[\(index)] is not relocated, so the loader would call the absolute address "
                                     + "0x\(hex(slots.u64(8 * index)))")
                }
                if let target, !isCode(target) {
                    throw ELFProblem("\(name)[\(index)] points at 0x\(hex(target)), outside the file's code; the loader would call it")
                }
            }
        }
    }
}
