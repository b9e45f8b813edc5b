import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Where plugins are looked for, and what is said about what was not: relative search-path entries and
/// missing folders are named, the same file reached twice is loaded once, and `regula list` agrees with what
/// the commands offer, naming the example rules it does not load.
@Suite struct PluginSearchPathTests {
    @Test func relativeAndMissingEntriesOfThePluginPathAreReported() throws {
        let missing = "/nonexistent-regula-plugins"
        let registry = try RuleRegistry.standard(environment: [PluginSearchPath.pathVariable: "plugins::\(missing):"])
        #expect(registry.loadFailures == [RegistryError(path: "plugins", reason: .relativeSearchPathEntry),
                                          RegistryError(path: missing, reason: .folderNotFound)])
        let relative = "\(registry.loadFailures[0])"
        #expect(relative.hasPrefix("ignored REGULA_PLUGIN_PATH entry \"plugins\": it is not an absolute path"), "\(relative)")
        #expect(relative.contains("write it as \(FileManager.default.currentDirectoryPath)/plugins"), "\(relative)")
        #expect("\(registry.loadFailures[1])" == "plugin folder \(missing) does not exist")
        #expect(registry.loadFailures.allSatisfy { !$0.refusesAFile })
    }

    @Test func anUnknownRuleFromAnIgnoredEntryHasTheReasonInSight() throws {
        let folder = try TemporaryDirectory()
        let spec = try folder.write(#"{"rules": ["scale_test", "sgd"], "defaults": {"lr": 0.1}, "groups": [{"params": ["w"]}], "params": {"w": [1.0]}, "steps": []}"#,
                                    to: "spec.json")
        let output = try regula(["replay", spec.path], environment: [PluginSearchPath.pathVariable: "plugins"])
        #expect(output.status == 1)
        let lines = output.standardError.split(separator: "\n").map(String.init)
        let warning = try #require(lines.firstIndex { $0.hasPrefix("warning: ignored REGULA_PLUGIN_PATH entry \"plugins\"") },
                                   "\(output.standardError)")
        let error = try #require(lines.firstIndex { $0.hasPrefix("error: unknown rule \"scale_test\"") }, "\(output.standardError)")
        #expect(warning < error)
    }

    @Test func missingPluginDirIsSaidToBeMissing() throws {
        let output = try regula(["list", "--plugin-dir", "/nonexistent-regula-plugins"])
        #expect(output.status == 1)
        #expect(output.standardError.contains("error: plugin folder /nonexistent-regula-plugins does not exist"),
                "\(output.standardError)")
    }

    @Test func theSameFolderTwiceLoadsEachFileOnce() throws {
        let folder = try TemporaryDirectory()
        let file = try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: folder)
        let registry = RuleRegistry()
        #expect(try registry.loadPlugins(inDirectory: folder.path).isEmpty)
        #expect(try registry.loadPlugins(inDirectory: folder.path).isEmpty)
        #expect(try registry.loadPlugin(at: file.path).isEmpty, "already there: nothing added")
        #expect(registry.rules.map(\.name) == ["scale_test"])
        #expect(registry.loadFailures.isEmpty)
        let output = try regula(["list", "--plugin-dir", folder.path, "--plugin-dir", folder.path])
        #expect(output.status == 0)
        #expect(!output.standardError.contains("refused"), "\(output.standardError)")
        #expect(output.standardOutput.components(separatedBy: "scale_test  v1").count == 2, "listed once")
    }

    @Test func aHardLinkToALoadedFileIsTheSameFile() throws {
        let first = try TemporaryDirectory(), second = try TemporaryDirectory()
        let file = try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: first)
        let link = second.url.appendingPathComponent("libalso_scale_test.so")
        try FileManager.default.linkItem(at: file, to: link)
        let registry = RuleRegistry()
        try registry.loadPlugins(inDirectory: first.path)
        #expect(try registry.loadPlugins(inDirectory: second.path).isEmpty)
        #expect(try registry.rule(named: "scale_test").origin == .sharedObject(path: file.resolvingSymlinksInPath().path))
    }

    /// Where the built-in rules are loaded from (the build plugin's folder beside the test bundle), with the
    /// C examples beside them.
    static var builtins: String { PluginSearchPath.builtinDirectory(environment: [:])! }

    @Test func theBuiltinFolderAsAPluginDirAddsTheExamplesWithoutClashingWithTheBuiltins() throws {
        let output = try regula(["list", "--plugin-dir", Self.builtins])
        #expect(output.status == 0)
        #expect(!output.standardError.contains("refused"), "\(output.standardError)")
        for rule in ["l1", "sgd", "adamw", "prox_l1", "elastic_net", "max_norm"] {
            #expect(output.standardOutput.contains("\(rule)  v1"), "\(rule)")
        }
        #expect(!output.standardError.contains("not loaded"))
    }

    @Test func listNamesTheExampleRulesItDoesNotLoadAndHowToLoadThem() throws {
        let output = try regula(["list"])
        #expect(output.status == 0)
        #expect(!output.standardOutput.contains("prox_l1"))
        #expect(output.standardError.contains(
            "note: not loaded: the example rules elastic_net, max_norm, prox_l1, built beside regula in "
                + "\(Self.builtins); add --plugin-dir \(Self.builtins) to load them"),
            "\(output.standardError)")
    }

    @Test func anUnknownRuleThatIsAnExampleSaysHowToLoadIt() throws {
        let folder = try TemporaryDirectory()
        let spec = try folder.write(#"{"rules": ["sgd", "prox_l1"], "defaults": {"lr": 0.1}, "groups": [{"params": ["w"]}], "params": {"w": [1.0]}, "steps": []}"#,
                                    to: "spec.json")
        let unknown = try regula(["replay", spec.path])
        #expect(unknown.status == 1)
        #expect(unknown.standardError.contains("error: unknown rule \"prox_l1\""))
        #expect(unknown.standardError.contains("note: \"prox_l1\" is an example rule built beside regula"), "\(unknown.standardError)")
        let loaded = try regula(["replay", spec.path, "--plugin-dir", TestPaths.binDirectory.path])
        #expect(loaded.status == 0, "\(loaded.standardError)")
    }
}
