import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Plugin folders: who may have written a plugin, which of two same-named rules wins, and unloading.
@Suite struct PluginDirectoryTests {
    private func scalePlugin(in folder: TemporaryDirectory, named name: String = "scale_test") throws -> URL {
        try PluginCompiler.compile(PluginSource.scaleTest, named: name, in: folder)
    }

    private func untrustedReason(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as RegistryError {
            guard case .untrusted(let why) = error.reason else { return "wrong reason: \(error.reason)" }
            return why
        } catch {
            return "wrong error: \(error)"
        }
    }

    @Test func worldWritablePluginIsRefusedUntilItsModeIsFixed() throws {
        let folder = try TemporaryDirectory()
        let file = try scalePlugin(in: folder)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: file.path)
        let registry = RuleRegistry()
        let why = untrustedReason { try registry.loadPlugin(at: file.path) }
        #expect(why?.contains("the file is writable by anyone") == true, "\(why ?? "loaded")")
        #expect(registry.rules.isEmpty)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file.path)
        #expect(try registry.loadPlugin(at: file.path).map(\.name) == ["scale_test"])
    }

    @Test func groupWritableFolderIsRefused() throws {
        let folder = try TemporaryDirectory()
        let file = try scalePlugin(in: folder)
        try FileManager.default.setAttributes([.posixPermissions: 0o775], ofItemAtPath: folder.path)
        let why = untrustedReason { try RuleRegistry().loadPlugin(at: file.path) }
        #expect(why?.contains("its folder \(folder.url.resolvingSymlinksInPath().path) is writable by its group") == true,
                "\(why ?? "loaded")")
    }

    @Test(.enabled(if: getuid() == 0, "changing a file's owner needs root"))
    func pluginOwnedBySomeoneElseIsRefused() throws {
        let folder = try TemporaryDirectory()
        let file = try scalePlugin(in: folder)
        #expect(chown(file.path, 65534, 65534) == 0)
        let why = untrustedReason { try RuleRegistry().loadPlugin(at: file.path) }
        #expect(why?.contains("owned by user 65534") == true, "\(why ?? "loaded")")
    }

    @Test func untrustedPluginIsReportedByTheCommandLineAndTheRestStillLoads() throws {
        let folder = try TemporaryDirectory()
        let bad = try scalePlugin(in: folder, named: "open_to_all")
        try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: bad.path)
        let output = try regula(["list"], environment: [PluginSearchPath.pathVariable: folder.path])
        #expect(output.status == 0)
        #expect(output.standardOutput.contains("sgd  v1"))
        #expect(output.standardError.contains(bad.path))
        #expect(output.standardError.contains("writable by anyone"))
    }

    @Test func symlinkedPluginLoadsFromItsTarget() throws {
        let folder = try TemporaryDirectory()
        let file = try scalePlugin(in: folder)
        let link = folder.url.appendingPathComponent("libalias.so")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: file)
        let rules = try RuleRegistry().loadPlugin(at: link.path)
        #expect(rules.map(\.origin) == [.sharedObject(path: file.resolvingSymlinksInPath().path)])
    }

    @Test func sameRuleNameInTwoFoldersIsRefusedNamingBothFiles() throws {
        let first = try TemporaryDirectory(), second = try TemporaryDirectory()
        let kept = try scalePlugin(in: first), refusedFile = try scalePlugin(in: second)
        let registry = RuleRegistry()
        try registry.loadPlugins(inDirectory: first.path)
        let refused = try registry.loadPlugins(inDirectory: second.path)
        #expect(refused.count == 1)
        let message = refused.first.map { "\($0)" } ?? ""
        #expect(message.contains(refusedFile.resolvingSymlinksInPath().path))
        #expect(message.contains(kept.resolvingSymlinksInPath().path))
        #expect(try registry.rule(named: "scale_test").origin == .sharedObject(path: kept.resolvingSymlinksInPath().path))
    }

    @Test func userMayChooseWhichOfTwoSameNamedRulesWins() throws {
        let first = try TemporaryDirectory(), second = try TemporaryDirectory()
        let a = try scalePlugin(in: first), b = try scalePlugin(in: second)
        let keep = RuleRegistry(), replace = RuleRegistry()
        try keep.loadPlugins(inDirectory: first.path)
        try replace.loadPlugins(inDirectory: first.path)
        #expect(try keep.loadPlugins(inDirectory: second.path, onConflict: .keepExisting).isEmpty)
        #expect(try replace.loadPlugins(inDirectory: second.path, onConflict: .replaceExisting).isEmpty)
        #expect(try keep.rule(named: "scale_test").origin == .sharedObject(path: a.resolvingSymlinksInPath().path))
        #expect(try replace.rule(named: "scale_test").origin == .sharedObject(path: b.resolvingSymlinksInPath().path))
    }

    @Test func builtinCanBeOverriddenOnlyWhenAskedFor() throws {
        let folder = try TemporaryDirectory()
        let impostor = try PluginCompiler.compile(PluginSource.plugin(rules: [#"{ RULE("l1"), .kernel = scale }"#]),
                                                  named: "my_l1", in: folder)
        let strict = try RuleRegistry.standard(environment: [PluginSearchPath.pathVariable: folder.path])
        #expect(strict.loadFailures.map(\.path) == [impostor.resolvingSymlinksInPath().path])
        #expect(try strict.rule(named: "l1").origin.description.hasSuffix("libRegulaRuleL1.so"))
        let lenient = try RuleRegistry.standard(environment: [PluginSearchPath.pathVariable: folder.path],
                                                onConflict: .replaceExisting)
        #expect(lenient.loadFailures.isEmpty)
        #expect(try lenient.rule(named: "l1").origin == .sharedObject(path: impostor.resolvingSymlinksInPath().path))
    }

    @Test func pluginInUseCannotBeUnloadedUntilItsOptimizerIsGone() throws {
        let folder = try TemporaryDirectory()
        let file = try scalePlugin(in: folder)
        let registry = try RuleRegistry.standard(environment: [:])
        try registry.loadPlugin(at: file.path)
        var optimizer: Optimizer? = try Optimizer([Parameter("w", values: [1.0])], rules: ["scale_test", "sgd"],
                                                  defaults: ["lr": 0.1], registry: registry)
        #expect(throws: UnloadError.inUse(rule: "scale_test", optimizers: 1, path: file.resolvingSymlinksInPath().path)) {
            try registry.unloadPlugin(at: file.path)
        }
        #expect(try registry.rule(named: "scale_test").name == "scale_test")
        try optimizer?.step()
        optimizer = nil
        #expect(try registry.unloadPlugin(at: file.path) == ["scale_test"])
        #expect(throws: OptimizerError.self) { try registry.rule(named: "scale_test") }
        #expect(throws: UnloadError.notLoaded(path: file.resolvingSymlinksInPath().path)) {
            try registry.unloadPlugin(at: file.path)
        }
        #expect(try registry.loadPlugin(at: file.path).map(\.name) == ["scale_test"])
    }

    @Test func refusedOptimizerDoesNotHoldItsRules() throws {
        let folder = try TemporaryDirectory()
        let file = try scalePlugin(in: folder)
        let registry = try RuleRegistry.standard(environment: [:])
        try registry.loadPlugin(at: file.path)
        let w = Parameter("w", values: [1.0])
        // Refused while reading the defaults, and later, while validating the groups.
        #expect(throws: OptimizerError.self) {
            try Optimizer([w], rules: ["scale_test", "sgd"], defaults: ["lr": -1], registry: registry)
        }
        #expect(throws: OptimizerError.parameterInSeveralGroups("w", groups: [0, 1])) {
            try Optimizer([ParamGroup([w]), ParamGroup([w])], rules: ["scale_test", "sgd"], defaults: ["lr": 1],
                          registry: registry)
        }
        #expect(try registry.unloadPlugin(at: file.path) == ["scale_test"])
    }
}
