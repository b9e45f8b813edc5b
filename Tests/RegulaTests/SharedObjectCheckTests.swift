import Foundation
@testable import Regula
import RegulaTestSupport
import Testing

/// The checks made before the dynamic loader sees a file: damage whose nature is known is named in words,
/// and sound plugins linked in the other ways common linkers offer (packed relative relocations, only the
/// SysV hash table, no RELRO, 64 KiB pages, thread-local data, gold and lld) still pass and load.
@Suite struct SharedObjectCheckTests {
    /// Link options, each making a plugin whose dynamic section or segments differ from the default's.
    static let linkings: [[String]] = [
        ["-Wl,-z,pack-relative-relocs"], ["-Wl,--hash-style=sysv"], ["-Wl,--hash-style=both"],
        ["-Wl,-z,noseparate-code"], ["-Wl,-z,norelro"], ["-Wl,-z,max-page-size=65536"], ["-Wl,-z,now", "-fno-plt"],
        ["-O0", "-g"], ["-Wl,--build-id=none"],
    ]

    @Test(arguments: linkings)
    func soundPluginLinkedAnotherWayLoads(_ flags: [String]) throws {
        let folder = try TemporaryDirectory()
        let file = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("scale_test"), .kernel = scale }"#],
            declarations: "__thread int calls = 1;\n__attribute__((constructor)) static void count(void) { calls++; }"),
            named: "linked", in: folder, extraArguments: flags)
        try PluginLoader.checkWithoutLoading(file.path)
        #expect(try RuleRegistry().loadPlugin(at: file.path).map(\.name) == ["scale_test"])
    }

    @Test(arguments: ["gold", "lld"])
    func soundPluginLinkedByAnotherLinkerLoads(_ linker: String) throws {
        let folder = try TemporaryDirectory()
        let file: URL
        do {
            file = try PluginCompiler.compile(PluginSource.scaleTest, named: "linked_by_\(linker)", in: folder,
                                              extraArguments: ["-fuse-ld=\(linker)"])
        } catch {
            // Not every machine has every linker; the compiler's words say which is missing.
            withKnownIssue("ld.\(linker) is not installed here") { throw error }
            return
        }
        #expect(try RuleRegistry().loadPlugin(at: file.path).map(\.name) == ["scale_test"])
    }

    // MARK: - Damage whose nature is known

    /// The original with `patch` applied, in a fresh folder; the refusal of the checks made before loading.
    private func refusal(_ name: String, _ patch: (inout [UInt8]) -> Void) throws -> RegistryError {
        let folder = try TemporaryDirectory()
        var bytes = [UInt8](try Data(contentsOf: SharedObjectMutationTests.original))
        patch(&bytes)
        let file = folder.url.appendingPathComponent("lib\(name).so")
        try Data(bytes).write(to: file)
        do {
            try PluginLoader.checkWithoutLoading(file.path)
        } catch {
            return error
        }
        throw CheckPassed(name: name)
    }

    private struct CheckPassed: Error { let name: String }

    private func words(_ error: RegistryError) -> String {
        if case .invalidSharedObject(let words) = error.reason { return words }
        return "not .invalidSharedObject: \(error)"
    }

    @Test func damagedIdentificationIsNamed() throws {
        #expect(words(try refusal("class") { $0[4] = 1 }).contains("32-bit ELF file"))
        #expect(words(try refusal("endian") { $0[5] = 2 }).contains("big-endian"))
        #expect(words(try refusal("object") { $0[16] = 1 }).contains("relocatable object file (.o)"))
        #expect(words(try refusal("executable") { $0[16] = 2 }).contains("executable (ET_EXEC)"))
        let host = UInt16(Self.readUInt(Self.originalBytes, at: 18, size: 2))
        let other: (UInt16, String) = host == 62 ? (183, "AArch64") : (62, "x86_64")
        let machine = words(try refusal("machine") { $0[18] = UInt8(other.0 & 0xFF); $0[19] = UInt8(other.0 >> 8) })
        #expect(machine.contains("built for \(other.1)"), "\(machine)")
    }

    @Test func damagedProgramHeadersAreNamed() throws {
        let bytes = Self.originalBytes
        // e_phoff and e_phnum, then the program headers of one type (p_type is their first field).
        let offset = Self.readUInt(bytes, at: 32, size: 8), count = Self.readUInt(bytes, at: 56, size: 2)
        func segments(ofType type: UInt64) -> [Int] {
            (0..<count).map { offset + 56 * $0 }.filter { Self.readUInt(bytes, at: $0, size: 4) == type }
        }
        let past = words(try refusal("phoff") { $0.replaceSubrange(32..<40, with: Self.littleEndian(UInt64(bytes.count), size: 8)) })
        #expect(past.contains("program header table") && past.contains("ends past the end of the file"), "\(past)")
        let dynamic = try #require(segments(ofType: 2).first)
        #expect(words(try refusal("nodynamic") { $0[dynamic] = 0 }).contains("no dynamic section"))
        // The code segment loses its execute permission: the initializers the loader calls are no longer code.
        let code = try #require(segments(ofType: 1).first { Self.readUInt(bytes, at: $0 + 4, size: 4) & 1 != 0 })
        let noExec = words(try refusal("noexec") { $0[code + 4] &= ~1 })
        #expect(noExec.contains("outside the file's code"), "\(noExec)")
        // A loadable segment that claims more bytes of the file than there are.
        let first = try #require(segments(ofType: 1).first)
        let long = words(try refusal("long") { $0.replaceSubrange((first + 32)..<(first + 40), with: Self.littleEndian(UInt64(bytes.count) * 2, size: 8)) })
        #expect(long.contains("segment") && long.contains("truncated"), "\(long)")
    }

    static let originalBytes = [UInt8]((try? Data(contentsOf: SharedObjectMutationTests.original)) ?? Data())

    static func readUInt(_ bytes: [UInt8], at offset: Int, size: Int) -> Int {
        (0..<size).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
    }

    static func littleEndian(_ value: UInt64, size: Int) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
}
