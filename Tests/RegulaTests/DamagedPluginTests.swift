import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Plugin files whose damage a probe process once missed, and the two ways the host no longer depends on a
/// probe seeing everything: commands that only show plugins take what they show from the probe and load
/// nothing themselves, and a file is loaded from a sealed copy of the bytes that were checked and probed.
@Suite(.timeLimit(.minutes(2)))
struct DamagedPluginTests {
    /// The three damaged copies of `sgd` that crashed the host together (Tests/Fixtures/damaged-plugins),
    /// copied into a fresh folder that passes the trust checks.
    private func damagedCopies() throws -> (folder: TemporaryDirectory, files: [String: String]) {
        let folder = try TemporaryDirectory()
        var files: [String: String] = [:]
        for number in ["153", "159", "160"] {
            let name = "libanywhere\(number).so"
            let copy = folder.url.appendingPathComponent(name)
            try Data(contentsOf: TestPaths.fixtures("damaged-plugins/\(name)")).write(to: copy)
            files[number] = copy.path
        }
        return (folder, files)
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes)))
    func inspectRefusesTheTwoThatCrashAndShowsTheThird() throws {
        let (folder, files) = try damagedCopies()
        defer { withExtendedLifetime(folder) {} }
        for order in [["153", "159", "160"], ["159", "160", "153"], ["160", "153", "159"]] {
            let output = try regula(["inspect"] + order.map { files[$0]! })
            #expect(output.status == 1, "order \(order): \(output.standardError.suffix(1500))")
            #expect(output.standardError.contains(
                "error: cannot load plugin \(files["153"]!): a probe process that loaded it crashed with signal 4 (Illegal instruction)"))
            #expect(output.standardError.contains(
                "error: cannot load plugin \(files["160"]!): a probe process that loaded it crashed with signal 11 (Segmentation fault)"))
            #expect(output.standardOutput.contains("\(files["159"]!): a Regula plugin with 1 rule"))
        }
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes)))
    func listOfTheirFolderRefusesTwoAndCarriesOn() throws {
        let (folder, files) = try damagedCopies()
        defer { withExtendedLifetime(folder) {} }
        let output = try regula(["list", "--plugin-dir", folder.path])
        #expect(output.status == 0, "\(output.standardError.suffix(1500))")
        #expect(output.standardOutput.contains("sgd  v1"))
        for number in ["153", "160"] {
            #expect(output.standardError.contains("refused: cannot load plugin \(files[number]!): a probe process that loaded it crashed"))
        }
        // 159 loads, but its rule's name is the built-in's.
        #expect(output.standardError.contains("refused: cannot load plugin \(files["159"]!): rule \"sgd\" is already provided by"))
    }

    /// A registry that loads refuses 160 in its probe, so this process, which then casts dynamically (as any
    /// Swift program soon does), never meets the damaged metadata. Were 160 loaded here, the cast would crash
    /// the test run.
    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes)))
    func aLoadingRegistryKeepsTheCopyThatDamagesTheSwiftRuntimeOut() throws {
        let (folder, files) = try damagedCopies()
        defer { withExtendedLifetime(folder) {} }
        let registry = RuleRegistry(probe: regulaProbe())
        let refused = try registry.loadPlugins(inDirectory: folder.path)
        #expect(Set(refused.map(\.path)) == [files["153"]!, files["160"]!])
        #expect(try registry.rule(named: "sgd").origin == .sharedObject(path: files["159"]!))
        let value: Any = DamagedPluginTests()
        #expect((value as? any NeverAdopted) == nil)
    }

    /// Each process that runs the plugin's constructor appends "pid parent-pid" to a file. A probe's parent is
    /// the command; so the command loaded the plugin itself exactly when some line's pid is another's parent.
    @Test func listAndInspectRunNoPluginCodeInTheirOwnProcess() throws {
        let folder = try TemporaryDirectory()
        let log = folder.url.appendingPathComponent("loads.txt").path
        let plugin = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("counted"), .summary = "says who loaded it", .kernel = scale }"#],
            declarations: """
                #include <stdio.h>
                #include <unistd.h>
                __attribute__((constructor)) static void say_who(void) {
                    FILE *file = fopen("\(log)", "a");
                    if (!file) return;
                    fprintf(file, "%d %d\\n", (int)getpid(), (int)getppid());
                    fclose(file);
                }
                """), named: "counted", in: folder)
        let listed = try regula(["list", "--plugin-dir", folder.path])
        #expect(listed.status == 0, "\(listed.standardError)")
        #expect(listed.standardOutput.contains("counted  v1"))
        let inspected = try regula(["inspect", plugin.path])
        #expect(inspected.status == 0, "\(inspected.standardError)")
        #expect(inspected.standardOutput.contains("says who loaded it"))
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ") }
        #expect(lines.count >= 2, "each command probed the file")
        let pids = Set(lines.map { $0[0] })
        let parents = Set(lines.map { $0[1] })
        #expect(pids.isDisjoint(with: parents), "a command loaded the plugin into itself: \(lines)")
    }

    @Test func anOptimizerRefusesARuleThatWasOnlyDescribed() throws {
        let folder = try TemporaryDirectory()
        let plugin = try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: folder)
        let registry = RuleRegistry(describingWith: regulaProbe())
        let rules = try registry.loadPlugin(at: plugin.path)
        #expect(rules.map(\.name) == ["scale_test"])
        #expect(rules.first?.origin == .sharedObject(path: plugin.path))
        let w = Parameter("w", values: [Float(1)])
        #expect(throws: OptimizerError.ruleOnlyDescribed("scale_test", origin: plugin.path)) {
            _ = try Optimizer([ParamGroup([w])], rules: ["scale_test"], registry: registry)
        }
        #expect("\(OptimizerError.ruleOnlyDescribed("scale_test", origin: plugin.path))".contains("never loaded into this one"))
    }

    /// The probe loaded one set of bytes; the file was then changed in place, keeping its size and, set back
    /// by hand, its modification time. The host compares the bytes it copied with those the probe loaded.
    @Test func aFileRewrittenInPlaceAfterItsProbeIsRefused() throws {
        let folder = try TemporaryDirectory()
        let plugin = try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: folder)
        let probe = regulaProbe()
        probe.probe([plugin.path])
        var before = stat()
        #expect(stat(plugin.path, &before) == 0)
        // Change one byte of the compiler's note in `.comment`, which nothing reads, through the same inode.
        var bytes = [UInt8](try Data(contentsOf: plugin))
        let note = try #require(bytes.firstRange(of: Array("clang".utf8)) ?? bytes.firstRange(of: Array("GCC".utf8)))
        bytes[note.lowerBound] ^= 0x20
        let handle = try FileHandle(forWritingTo: plugin)
        try handle.write(contentsOf: Data(bytes))
        try handle.close()
        var times = [before.st_atim, before.st_mtim]
        #expect(utimensat(AT_FDCWD, plugin.path, &times, 0) == 0)
        #expect(throws: RegistryError.self) { try RuleRegistry(probe: probe).loadPlugin(at: plugin.path) }
        do {
            try RuleRegistry(probe: probe).loadPlugin(at: plugin.path)
        } catch {
            #expect("\(error)".contains("its bytes are not the ones the probe process loaded"), "\(error)")
        }
    }
}

/// A protocol nothing adopts, so that asking whether a value conforms reads every image's conformances.
private protocol NeverAdopted {}
