import Foundation
@testable import Regula
import RegulaTestSupport
import Testing

/// Damaged copies of a built-in rule's shared object, as a half-finished copy or a flipped bit leaves them:
/// truncated, with bytes changed in the ELF header, in the program headers, or anywhere. 200 copies of a fixed
/// file from a fixed seed, so every run in every clone checks the same files. Whatever the file, the tools that look at unknown files
/// must account for it (loaded, or refused with words) and never crash, and the checks made before the
/// dynamic loader must refuse what they can be sure of.
@Suite(.timeLimit(.minutes(2)))
struct SharedObjectMutationTests {
    /// How a copy was damaged.
    enum Damage: String, CaseIterable {
        case truncated, elfHeader, programHeaders, anywhere
    }

    /// One damaged copy.
    struct Mutant {
        let file: URL
        let damage: Damage
    }

    /// The original: a fixed debug build of the `sgd` built-in, as SwiftPM links it (with the Swift runtime's
    /// image constructor). Not the checkout's own build, whose bytes depend on the path it was built at: the
    /// same seed would damage other bytes in another clone, and a test could pass in one and fail in another.
    static let original = TestPaths.fixtures("damaged-plugins/libsgd-original.so")

    /// Writes `perKind` copies of the original for each kind of damage into `folders` folders (round robin).
    static func mutants(perKind: Int = 50, seed: UInt64 = 0x5EED_0010, into folders: [TemporaryDirectory]) throws -> [Mutant] {
        let bytes = [UInt8](try Data(contentsOf: original))
        let programHeaders = Int(bytes[32]) | Int(bytes[33]) << 8          // e_phoff (small in practice)
        let programHeaderBytes = 56 * (Int(bytes[56]) | Int(bytes[57]) << 8)  // 56 × e_phnum
        var random = SeededGenerator(seed: seed)
        var made: [Mutant] = []
        for damage in Damage.allCases {
            for _ in 0..<perKind {
                var copy = bytes
                switch damage {
                case .truncated:
                    copy.removeLast(Int.random(in: 1...bytes.count, using: &random))
                case .elfHeader:
                    scramble(&copy, in: 0..<64, times: Int.random(in: 1...4, using: &random), using: &random)
                case .programHeaders:
                    scramble(&copy, in: programHeaders..<(programHeaders + programHeaderBytes),
                             times: Int.random(in: 1...4, using: &random), using: &random)
                case .anywhere:
                    scramble(&copy, in: 0..<copy.count, times: Int.random(in: 1...8, using: &random), using: &random)
                }
                let folder = folders[made.count % folders.count]
                let file = folder.url.appendingPathComponent(String(format: "lib%@%03d.so", damage.rawValue, made.count))
                try Data(copy).write(to: file)
                made.append(Mutant(file: file, damage: damage))
            }
        }
        return made
    }

    /// Replaces `times` bytes at random places of `range` with random values, or flips one bit of them.
    static func scramble(_ bytes: inout [UInt8], in range: Range<Int>, times: Int, using random: inout SeededGenerator) {
        for _ in 0..<times {
            let at = Int.random(in: range, using: &random)
            if Bool.random(using: &random) {
                bytes[at] = UInt8.random(in: 0...255, using: &random)
            } else {
                bytes[at] ^= 1 << UInt8.random(in: 0...7, using: &random)
            }
        }
    }

    @Test func everyTruncatedCopyIsRefusedBeforeTheLoaderSeesIt() throws {
        let folder = try TemporaryDirectory()
        defer { withExtendedLifetime(folder) {} }
        for mutant in try Self.mutants(into: [folder]) where mutant.damage == .truncated {
            do {
                try PluginLoader.checkWithoutLoading(mutant.file.path)
                Issue.record("\(mutant.file.lastPathComponent) passed the checks")
            } catch {
                guard case .invalidSharedObject(let words) = error.reason else {
                    Issue.record("\(mutant.file.lastPathComponent): \(error)")
                    continue
                }
                #expect(words.contains("truncated") || words.contains("empty"), "\(error)")
                #expect("\(error)".contains(mutant.file.path))
            }
        }
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes))) func listOfFoldersOfDamagedCopiesAccountsForEachAndDoesNotCrash() throws {
        let folders = try (0..<5).map { _ in try TemporaryDirectory() }
        defer { withExtendedLifetime(folders) {} }
        let mutants = try Self.mutants(into: folders)
        let output = try regula(["list"] + folders.flatMap { ["--plugin-dir", $0.path] })
        #expect(output.status == 0, "\(output.standardError.suffix(2000))")
        #expect(output.standardOutput.contains("sgd  v1"), "the built-ins are still listed")
        let refusals = output.standardError.split(separator: "\n").filter { $0.hasPrefix("refused: cannot load plugin ") }
        for mutant in mutants {
            let refused = refusals.filter { $0.hasPrefix("refused: cannot load plugin \(mutant.file.path): ") }.count
            let listed = output.standardOutput.contains("from \(mutant.file.path)\n")
            #expect(refused + (listed ? 1 : 0) == 1,
                    "\(mutant.file.lastPathComponent) (\(mutant.damage)): refused \(refused) times, listed: \(listed)")
        }
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes))) func inspectAccountsForEachDamagedCopyAndDoesNotCrash() throws {
        let folder = try TemporaryDirectory()
        defer { withExtendedLifetime(folder) {} }
        let mutants = try Self.mutants(into: [folder])
        let output = try regula(["inspect"] + mutants.map(\.file.path))
        #expect(output.status == 1, "some copies are refused: \(output.standardError.suffix(2000))")
        for mutant in mutants {
            let loaded = output.standardOutput.contains("\(mutant.file.path): a Regula plugin with")
            let refused = output.standardError.contains("error: cannot load plugin \(mutant.file.path): ")
            #expect(loaded != refused, "\(mutant.file.lastPathComponent) (\(mutant.damage)): loaded \(loaded), refused \(refused)")
        }
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes))) func registryWithAProbeSurvivesEveryDamagedCopy() throws {
        let folder = try TemporaryDirectory()
        defer { withExtendedLifetime(folder) {} }
        let mutants = try Self.mutants(into: [folder])
        let registry = RuleRegistry(probe: regulaProbe())
        let refused = try registry.loadPlugins(inDirectory: folder.path)
        let loadedFrom = Set(registry.rules.map { "\($0.origin)" })
        let refusedPaths = Set(refused.map(\.path))
        #expect(refusedPaths.isDisjoint(with: loadedFrom))
        #expect(refusedPaths.union(loadedFrom) == Set(mutants.map(\.file.path)))
        for error in refused { #expect("\(error)".hasPrefix("cannot load plugin \(error.path): ")) }
        // Truncated copies are refused before the loader runs any of them.
        let early = refused.filter { if case .invalidSharedObject = $0.reason { true } else { false } }
        #expect(Set(early.map(\.path)).isSuperset(of: mutants.filter { $0.damage == .truncated }.map(\.file.path)))
    }
}
