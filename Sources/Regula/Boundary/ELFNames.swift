/// The ELF constants the shared-object checks use, and their names for messages.
enum ELFNames {
    // Segment types (p_type).
    static let load: UInt32 = 1
    static let dynamic: UInt32 = 2
    static let interpreter: UInt32 = 3
    static let note: UInt32 = 4
    static let programHeaders: UInt32 = 6
    static let threadLocal: UInt32 = 7
    static let ehFrame: UInt32 = 0x6474_E550
    static let stack: UInt32 = 0x6474_E551
    static let relro: UInt32 = 0x6474_E552
    static let property: UInt32 = 0x6474_E553

    #if arch(x86_64)
    static let hostMachine: UInt16 = 62
    static let relativeRelocation: UInt32 = 8
    static let indirectRelocation: UInt32 = 37
    static let absoluteRelocation: UInt32 = 1
    static let bindingRelocations: Set<UInt32> = [6, 7]
    #elseif arch(arm64)
    static let hostMachine: UInt16 = 183
    static let relativeRelocation: UInt32 = 1027
    static let indirectRelocation: UInt32 = 1032
    static let absoluteRelocation: UInt32 = 257
    static let bindingRelocations: Set<UInt32> = [1025, 1026]
    #endif
    static var hostMachineName: String { machine(hostMachine) }

    /// `e_machine` in words.
    static func machine(_ value: UInt16) -> String {
        switch value {
        case 3: "x86 (32-bit, EM_386)"
        case 8: "MIPS"
        case 20: "PowerPC"
        case 21: "PowerPC64"
        case 22: "s390"
        case 40: "ARM (32-bit)"
        case 62: "x86_64"
        case 183: "AArch64"
        case 243: "RISC-V"
        case 258: "LoongArch"
        default: "machine \(value) (e_machine)"
        }
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

    /// `PT_LOAD`, `PT_DYNAMIC`, … for messages.
    static func segmentType(_ value: UInt32) -> String {
        switch value {
        case load: "PT_LOAD"
        case dynamic: "PT_DYNAMIC"
        case interpreter: "PT_INTERP"
        case note: "PT_NOTE"
        case programHeaders: "PT_PHDR"
        case threadLocal: "PT_TLS"
        case ehFrame: "PT_GNU_EH_FRAME"
        case stack: "PT_GNU_STACK"
        case relro: "PT_GNU_RELRO"
        case property: "PT_GNU_PROPERTY"
        default: "type 0x\(String(value, radix: 16))"
        }
    }
}

/// Dynamic-section tags (d_tag) the checks read.
enum DynamicTag {
    static let null: UInt64 = 0
    static let needed: UInt64 = 1
    static let pltRelocationSize: UInt64 = 2
    static let pltGOT: UInt64 = 3
    static let hash: UInt64 = 4
    static let stringTable: UInt64 = 5
    static let symbolTable: UInt64 = 6
    static let rela: UInt64 = 7
    static let relaSize: UInt64 = 8
    static let relaEntrySize: UInt64 = 9
    static let stringTableSize: UInt64 = 10
    static let symbolEntrySize: UInt64 = 11
    static let initializer: UInt64 = 12
    static let finalizer: UInt64 = 13
    static let soname: UInt64 = 14
    static let rpath: UInt64 = 15
    static let rel: UInt64 = 17
    static let pltRelocationKind: UInt64 = 20
    static let textRelocations: UInt64 = 22
    static let pltRelocations: UInt64 = 23
    static let initializerArray: UInt64 = 25
    static let finalizerArray: UInt64 = 26
    static let initializerArraySize: UInt64 = 27
    static let finalizerArraySize: UInt64 = 28
    static let runpath: UInt64 = 29
    static let flags: UInt64 = 30
    static let preinitializerArray: UInt64 = 32
    static let relrSize: UInt64 = 35
    static let relr: UInt64 = 36
    static let relrEntrySize: UInt64 = 37
    static let gnuHash: UInt64 = 0x6FFF_FEF5
    static let relativeCount: UInt64 = 0x6FFF_FFF9
    static let versionSymbols: UInt64 = 0x6FFF_FFF0
    static let versionDefinitions: UInt64 = 0x6FFF_FFFC
    static let versionDefinitionCount: UInt64 = 0x6FFF_FFFD
    static let versionNeeds: UInt64 = 0x6FFF_FFFE
    static let versionNeedCount: UInt64 = 0x6FFF_FFFF
    static let auxiliary: UInt64 = 0x7FFF_FFFD
    static let filter: UInt64 = 0x7FFF_FFFF

    /// Tags whose value is an address in the image that the loader reads, writes or calls.
    static let addresses: [UInt64: String] = [
        pltGOT: "DT_PLTGOT", hash: "DT_HASH", stringTable: "DT_STRTAB", symbolTable: "DT_SYMTAB", rela: "DT_RELA",
        initializer: "DT_INIT", finalizer: "DT_FINI", rel: "DT_REL", pltRelocations: "DT_JMPREL",
        initializerArray: "DT_INIT_ARRAY", finalizerArray: "DT_FINI_ARRAY", preinitializerArray: "DT_PREINIT_ARRAY",
        relr: "DT_RELR", gnuHash: "DT_GNU_HASH", versionSymbols: "DT_VERSYM", versionDefinitions: "DT_VERDEF",
        versionNeeds: "DT_VERNEED",
    ]

    /// Tags whose value is an offset into the string table.
    static let strings: [UInt64: String] = [
        needed: "DT_NEEDED", soname: "DT_SONAME", rpath: "DT_RPATH", runpath: "DT_RUNPATH",
        auxiliary: "DT_AUXILIARY", filter: "DT_FILTER",
    ]
}
