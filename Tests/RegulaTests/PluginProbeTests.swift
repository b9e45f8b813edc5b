import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Plugins that misbehave while they are loaded (a constructor that crashes, exits or never returns, an
/// entry that aborts, a finalizer that crashes at exit), compiled from C beside a good plugin. Loaded through
/// a probe, each is refused with what happened and the good one still loads; the tools report each and go
/// on; `regula check` says the file could not be loaded instead of reporting "0 of 0 checks passed".
@Suite(.timeLimit(.minutes(2)))
struct PluginProbeTests {
    /// A way to misbehave, and the words the refusal must contain.
    struct Misbehaviour: CustomTestStringConvertible, Sendable {
        let name: String
        let declarations: String
        let export: String
        let words: String
        /// What `regula check` says: loading fails (status 2), or the checks run and the process fails at exit.
        let failsAtExit: Bool
        var testDescription: String { name }
    }

    static let misbehaviours = [
        Misbehaviour(name: "exit_in_constructor",
                     declarations: "#include <stdlib.h>\n__attribute__((constructor)) static void leave(void) { exit(0); }",
                     export: "REGULA_EXPORT_PLUGIN(rules)", words: "exit status 0", failsAtExit: false),
        Misbehaviour(name: "abort_in_entry", declarations: "#include <stdlib.h>",
                     export: "REGULA_EXPORT const regula_plugin *regula_plugin_entry(void) { abort(); }",
                     words: "signal 6 (Aborted)", failsAtExit: false),
        Misbehaviour(name: "crash_in_constructor",
                     declarations: "__attribute__((constructor)) static void crash(void) { *(volatile int *)16 = 1; }",
                     export: "REGULA_EXPORT_PLUGIN(rules)", words: "signal 11 (Segmentation fault)", failsAtExit: false),
        Misbehaviour(name: "hang_in_constructor",
                     declarations: "#include <unistd.h>\n__attribute__((constructor)) static void wait_forever(void) { for (;;) pause(); }",
                     export: "REGULA_EXPORT_PLUGIN(rules)", words: "within 1 s", failsAtExit: false),
        Misbehaviour(name: "crash_at_exit",
                     declarations: "__attribute__((destructor)) static void crash(void) { *(volatile int *)16 = 1; }",
                     export: "REGULA_EXPORT_PLUGIN(rules)", words: "when it exited", failsAtExit: true),
    ]

    /// Compiles the good plugin (named to load first) and the bad one into a fresh folder, which lives as long
    /// as the value returned.
    private func folder(with misbehaviour: Misbehaviour) throws -> (folder: TemporaryDirectory, good: URL, bad: URL) {
        let folder = try TemporaryDirectory()
        let good = try PluginCompiler.compile(PluginSource.scaleTest, named: "a_good", in: folder)
        let bad = try PluginCompiler.compile(
            PluginSource.plugin(rules: [#"{ RULE("misbehaving"), .summary = "misbehaves", .kernel = scale }"#],
                                declarations: misbehaviour.declarations, export: misbehaviour.export),
            named: "b_\(misbehaviour.name)", in: folder, extraArguments: ["-Wno-error"])
        return (folder, good, bad)
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes)), arguments: misbehaviours)
    func registryWithAProbeRefusesTheFileAndLoadsTheRest(_ misbehaviour: Misbehaviour) throws {
        let (folder, good, bad) = try folder(with: misbehaviour)
        defer { withExtendedLifetime(folder) {} }
        let registry = RuleRegistry(probe: regulaProbe(timeout: 1))
        let refused = try registry.loadPlugins(inDirectory: folder.path)
        #expect(registry.rules.map(\.name) == ["scale_test"])
        #expect(try registry.rule(named: "scale_test").origin == .sharedObject(path: good.path))
        let error = try #require(refused.count == 1 ? refused.first : nil, "\(refused)")
        #expect(error.path == bad.path)
        guard case .probeFailed(let words) = error.reason else {
            Issue.record("expected .probeFailed, got \(error)")
            return
        }
        #expect(words.contains(misbehaviour.words), "\(words)")
        #expect("\(error)".contains("it was not loaded into this process"))
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes)), arguments: misbehaviours)
    func listAndInspectReportTheFileAndCarryOn(_ misbehaviour: Misbehaviour) throws {
        let (folder, _, bad) = try folder(with: misbehaviour)
        defer { withExtendedLifetime(folder) {} }
        let quick = ["REGULA_PROBE_TIMEOUT": "1"]
        let listed = try regula(["list", "--plugin-dir", folder.path], environment: quick)
        #expect(listed.status == 0, "\(listed.standardError)")
        #expect(listed.standardOutput.contains("scale_test  v1"))
        #expect(!listed.standardOutput.contains("misbehaving"))
        #expect(listed.standardError.contains("refused: cannot load plugin \(bad.path): a probe process that loaded it"),
                "\(listed.standardError)")
        #expect(listed.standardError.contains(misbehaviour.words), "\(listed.standardError)")
        let inspected = try regula(["inspect", bad.path], environment: quick)
        #expect(inspected.status == 1)
        #expect(inspected.standardError.contains(misbehaviour.words), "\(inspected.standardError)")
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes)), arguments: misbehaviours.filter { $0.name != "hang_in_constructor" })
    func checkSaysTheFileCouldNotBeLoaded(_ misbehaviour: Misbehaviour) throws {
        let (folder, _, bad) = try folder(with: misbehaviour)
        defer { withExtendedLifetime(folder) {} }
        let output = try regula(["check", bad.path])
        #expect(!output.standardOutput.contains("0 of 0 checks passed"))
        if misbehaviour.failsAtExit {
            #expect(output.status == 1)
            #expect(output.standardError.contains("crashed the process with signal 11"), "\(output.standardError)")
            #expect(output.standardError.contains("as it exited"), "\(output.standardError)")
        } else {
            #expect(output.status == 2, "\(output.standardOutput)")
            #expect(output.standardError.contains("cannot load plugin \(bad.path): loading it"), "\(output.standardError)")
            #expect(output.standardError.contains(misbehaviour.words), "\(output.standardError)")
        }
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes))) func checkOfAConstructorThatHangsGivesUpAfterTheTimeout() throws {
        let (folder, _, bad) = try folder(with: Self.misbehaviours.first { $0.name == "hang_in_constructor" }!)
        defer { withExtendedLifetime(folder) {} }
        let output = try regula(["check", bad.path, "--timeout", "1"])
        #expect(output.status == 2)
        #expect(output.standardError.contains("did not finish within --timeout (1 s)"), "\(output.standardError)")
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes))) func checkReportsAKernelThatHangsAndRunsTheOtherChecks() throws {
        // The kernel never returns for a block of one element, which only the block-split check hands over.
        let folder = try TemporaryDirectory()
        let file = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("stuck_on_one"), .summary = "hangs on one-element blocks", .kernel = stuck }"#],
            declarations: """
                #include <unistd.h>
                REGULA_KERNEL(stuck, {
                    if (block->length == 1) for (;;) pause();
                    T *d = (T *)block->update;
                    for (size_t i = 0; i < block->length; i++) d[i] *= (T)2;
                })
                """), named: "stuck", in: folder)
        let output = try regula(["check", file.path, "--timeout", "1"])
        #expect(output.status == 1)
        #expect(output.standardOutput.contains(
            "FAIL  results do not depend on the block split (bit for bit): did not finish within --timeout (1 s), so the process was killed"),
            "\(output.standardOutput)")
        #expect(output.standardOutput.contains("pass  the same inputs give the same bits twice"))
        #expect(output.standardOutput.contains("regula check: 12 of 13 checks passed; 1 FAILED"), "\(output.standardOutput)")
    }

    @Test func entryReturningAnUnreadablePointerIsRefusedWithoutAProbe() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile("""
            #include <stdint.h>
            #include <regula/regula.h>
            REGULA_EXPORT const regula_plugin *regula_plugin_entry(void) { return (const regula_plugin *)(uintptr_t)16; }
            """, named: "garbage_pointer", in: folder)
        #expect(throws: RegistryError(path: bad.path, reason: .malformed(
            "regula_plugin_entry() returned 0x10, which does not point to readable memory holding a regula_plugin"))) {
            try RuleRegistry().loadPlugin(at: bad.path)
        }
    }

    @Test func theRegulaToolAsAProbeLoadsEveryBuiltin() throws {
        // Copies, so that no file is loaded in this process yet and each must pass the probe to be loaded.
        let folder = try TemporaryDirectory()
        let builtins = try #require(PluginSearchPath.builtinDirectory())
        for name in try FileManager.default.contentsOfDirectory(atPath: builtins) where name.hasPrefix(PluginSearchPath.builtinPrefix) {
            try FileManager.default.copyItem(atPath: builtins + "/" + name, toPath: folder.url.appendingPathComponent(name).path)
        }
        let registry = try RuleRegistry.standard(environment: [PluginSearchPath.builtinVariable: folder.path], probe: regulaProbe())
        #expect(registry.loadFailures.isEmpty, "\(registry.loadFailures)")
        #expect(registry.rules.contains { $0.name == "sgd" } && registry.rules.contains { $0.name == "adamw" })
    }

    /// Damaged code can crash one process and spare another (where a stray write lands depends on the memory
    /// layout), so one clean probe run is not enough: this plugin's constructor crashes every process that
    /// loads it after the first, and it must be refused before `regula list` loads it into itself.
    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes)))
    func aFileThatSparesOneProbeProcessIsStillRefused() throws {
        let folder = try TemporaryDirectory()
        let loads = folder.url.appendingPathComponent("loads").path
        let bad = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("sometimes_crashing"), .summary = "crashes all but the first process", .kernel = scale }"#],
            declarations: """
                #include <stdio.h>
                __attribute__((constructor)) static void crash_after_the_first_load(void) {
                    FILE *file = fopen("\(loads)", "a");
                    if (!file) return;
                    fseek(file, 0, SEEK_END);
                    long before = ftell(file);
                    fputc('x', file);
                    fclose(file);
                    if (before > 0) *(volatile int *)16 = 1;
                }
                """), named: "sometimes_crashing", in: folder, extraArguments: ["-Wno-error"])
        let listed = try regula(["list", "--plugin-dir", folder.path])
        #expect(listed.status == 0, "\(listed.standardError)")
        #expect(!listed.standardOutput.contains("sometimes_crashing"))
        #expect(listed.standardError.contains("refused: cannot load plugin \(bad.path): a probe process that loaded it crashed with signal 11"),
                "\(listed.standardError)")
        #expect(try String(contentsOfFile: loads, encoding: .utf8) == "xx", "one clean probe run, then one that crashed; never loaded by list")
    }

    @Test func aProbeThatCannotStartRefusesTheFilesSayingWhy() throws {
        let folder = try TemporaryDirectory()
        let file = try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: folder)
        let registry = RuleRegistry(probe: PluginProbe(executable: folder.url.appendingPathComponent("no-such-probe").path))
        #expect(throws: RegistryError.self) { try registry.loadPlugin(at: file.path) }
        let words = "\(registry.loadFailures.first.map { "\($0)" } ?? "")"
        #expect(words.contains("no-such-probe") && words.contains("before loading anything"), "\(words)")
    }

    @Test func aFileFixedInPlaceLoadsAfterItsFirstVersionWasRefused() throws {
        // The verdict belongs to the version of the file probed: a broken file fixed in place loads.
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("libfixed.so")
        let broken = try folder.write("not yet a plugin", to: "libfixed.so")
        let probe = regulaProbe()
        probe.probe([broken.path])
        #expect(throws: RegistryError.self) { try RuleRegistry(probe: probe).loadPlugin(at: file.path) }
        let good = try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: folder)
        try FileManager.default.removeItem(at: file)
        try FileManager.default.copyItem(at: good, to: file)
        #expect(try RuleRegistry(probe: probe).loadPlugin(at: file.path).map(\.name) == ["scale_test"])
    }
}
