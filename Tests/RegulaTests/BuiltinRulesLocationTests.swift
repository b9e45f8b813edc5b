import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Where the built-in rules come from: the copy SwiftPM's build plugin compiles into the `Regula` library's
/// resource bundle (what every program built against Regula uses), and the order of the folders searched.
@Suite struct BuiltinRulesLocationTests {
    static let bundle = TestPaths.binDirectory.appendingPathComponent(PluginSearchPath.resourceBundleName)

    /// The `.so` files in `folder` whose name starts with `prefix`.
    static func libraries(in folder: URL, prefix: String) -> Set<String> {
        Set(((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasPrefix(prefix) && $0.hasSuffix(".so") })
    }

    @Test func everyBuiltinRuleIsInTheResourceBundleAndIsWhatTheHostLoads() throws {
        let products = Self.libraries(in: TestPaths.binDirectory, prefix: PluginSearchPath.builtinPrefix)
        #expect(products.count >= 5, "SwiftPM's own rule products: \(products)")
        #expect(Self.libraries(in: Self.bundle, prefix: PluginSearchPath.builtinPrefix) == products,
                "the build plugin compiles every C target named RegulaRule*; a built-in written in Swift would be missing")
        #expect(Self.libraries(in: Self.bundle, prefix: PluginSearchPath.examplePrefix).contains("libRegulaExampleProxL1.so"),
                "regula train's proximal chain needs prox_l1 beside the built-ins")
        #expect(PluginSearchPath.builtinDirectory(environment: [:]) == Self.bundle.path)
        let registry = try RuleRegistry.standard(environment: [:])
        #expect(try registry.rule(named: "sgd").origin == .sharedObject(path: Self.bundle.appendingPathComponent("libRegulaRuleSGD.so").path))
    }

    /// The build plugin must compile with the flags SwiftPM uses for the rule products, or the two copies of
    /// a rule could compute different bits.
    @Test func buildPluginUsesThePackagesPluginFlags() throws {
        func flags(in file: String, after marker: String) throws -> [String] {
            let text = try String(contentsOf: TestPaths.packageRoot.appendingPathComponent(file), encoding: .utf8)
            guard let start = text.range(of: marker) else { return [] }
            let line = text[start.upperBound...].prefix { $0 != "\n" }
            guard let open = line.firstIndex(of: "["), let close = line[open...].firstIndex(of: "]") else { return [] }
            return line[line.index(after: open)..<close].split(separator: ",")
                .map { $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        }
        let package = try flags(in: "Package.swift", after: "let pluginCSettings: [CSetting] = [.unsafeFlags(")
        let plugin = try flags(in: "Sources/BuildBuiltinRules/BuildBuiltinRules.swift", after: "static let compileFlags = ")
        #expect(package.contains("-ffp-contract=off") && package.count >= 3, "\(package)")
        #expect(plugin == package)
    }

    /// Each rule from the bundle computes, bit for bit, what SwiftPM's product of the same rule computes.
    @Test(arguments: DType.allCases)
    func bundledRulesComputeWhatTheProductsCompute(dtype: DType) throws {
        let names = Self.libraries(in: Self.bundle, prefix: "libRegula")
            .intersection(Self.libraries(in: TestPaths.binDirectory, prefix: "libRegula")).sorted()
        #expect(names.count >= 8)
        for name in names {
            let bundled = try trajectory(of: name, from: Self.bundle, dtype: dtype)
            let product = try trajectory(of: name, from: TestPaths.binDirectory, dtype: dtype)
            #expect(!bundled.isEmpty && bundled == product, "\(name), \(dtype)")
        }
    }

    /// Bits of the parameters and state after three steps of `[rule, sgd]` (just `sgd` for sgd itself), the
    /// rules loaded from `folder`, every hyperparameter set to a value that makes it act.
    func trajectory(of file: String, from folder: URL, dtype: DType) throws -> [UInt64] {
        let registry = RuleRegistry()
        let rules = try registry.loadPlugin(at: folder.appendingPathComponent(file).path)
        if file != "libRegulaRuleSGD.so" { try registry.loadPlugin(at: folder.appendingPathComponent("libRegulaRuleSGD.so").path) }
        let chain = (rules.map(\.name) + ["sgd"]).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        // Values that make each known rule act (a penalty of 0 would test nothing); other hyperparameters
        // take their default, or a small value when they have none.
        let acting = ["lr": 0.05, "momentum": 0.9, "dampening": 0, "weight_decay1": 0.01, "weight_decay2": 0.01,
                      "alpha": 0.01, "l1_ratio": 0.5, "max_norm": 0.5]
        // (Choices keep their default names.)
        var options: [String: Double] = [:]
        let declared = try chain.map { try registry.rule(named: $0) }
        for hyperparameter in declared.flatMap(\.hyperparameters) where hyperparameter.kind != .choice {
            options[hyperparameter.name] = acting[hyperparameter.name] ?? hyperparameter.defaultValue
                ?? min(max(0.05, hyperparameter.range.lowerBound), hyperparameter.range.upperBound)
        }
        // A matrix and two vectors (matrices with one column where a rule steps matrices only, as muon does).
        let vectors = declared.allSatisfy { $0.ranks.contains(1) }
        let shapes = [[40, 25], vectors ? [7] : [7, 1], vectors ? [3001] : [3001, 1]]
        let parameters = try shapes.enumerated().map { index, shape in
            let values = (0..<shape.reduce(1, *)).map { Double(($0 * 37 + index * 11) % 201) / 100 - 1 }
            return dtype == .float32 ? try Parameter("p\(index)", values: values.map(Float.init), shape: shape)
                                     : try Parameter("p\(index)", values: values, shape: shape)
        }
        let optimizer = try Optimizer(parameters, rules: chain, defaults: options, registry: registry)
        var bits: [UInt64] = []
        for step in 0..<3 {
            for (index, parameter) in parameters.enumerated() {
                let gradient = (0..<parameter.count).map { Double(($0 * 13 + index + step * 7) % 101) / 50 - 1 }
                if dtype == .float32 { try parameter.setGradient(gradient.map(Float.init)) } else { try parameter.setGradient(gradient) }
            }
            try optimizer.step()
        }
        for parameter in parameters {
            bits += dtype == .float32 ? try parameter.values(as: Float.self).map { UInt64($0.bitPattern) }
                : try parameter.values(as: Double.self).map(\.bitPattern)
            let state = optimizer.state(of: parameter)
            bits += state.map { state in state.slots.keys.sorted().flatMap { state.slots[$0]!.map(\.bitPattern) } } ?? []
        }
        return bits
    }

    @Test func searchOrderIsTheVariableAloneOrTheBundleTheExecutablesFolderThePrefixAndTheStandardFolders() {
        #expect(PluginSearchPath.builtinSearchFolders(environment: [PluginSearchPath.builtinVariable: "/opt/rules"]) == ["/opt/rules"])
        let bin = TestPaths.binDirectory
        #expect(PluginSearchPath.builtinSearchFolders(environment: ["HOME": "/home/someone"]) == [
            bin.appendingPathComponent("Regula_Regula.resources").path, bin.path,
            bin.deletingLastPathComponent().appendingPathComponent("lib/regula").path,
            "/home/someone/.local/lib/regula", "/usr/local/lib/regula", "/usr/lib/regula",
        ])
        // Without a usable home folder the user folder is left out rather than guessed.
        #expect(!PluginSearchPath.builtinSearchFolders(environment: ["HOME": "relative"]).contains { $0.hasSuffix(".local/lib/regula") })
    }

    @Test func notFoundNamesEveryFolderSearchedAndTheWaysToProvideThem() {
        let error = RegistryError.builtinsNotFound(environment: ["HOME": "/home/someone"])
        guard case .builtinsNotFound(_, let fromEnvironment) = error.reason else {
            Issue.record("expected builtinsNotFound, got \(error.reason)")
            return
        }
        #expect(!fromEnvironment)
        #expect(!error.refusesAFile)
        for folder in PluginSearchPath.builtinSearchFolders(environment: ["HOME": "/home/someone"]) {
            #expect(error.description.contains(folder))
        }
        #expect(error.description.contains("regula install --prefix"))
        #expect(error.description.contains(PluginSearchPath.builtinVariable))
    }

    /// The registry, the optimizer and a replay each throw their own type, and the built-ins' absence reaches
    /// an optimizer's user in the optimizer's type with the registry's words.
    @Test func theBuiltinsAbsenceIsARegistryErrorWrappedByTheOptimizerAndTheReplay() throws {
        let empty = try TemporaryDirectory("regula-no-builtins")
        let environment = [PluginSearchPath.builtinVariable: empty.url.path]
        let load: () throws(RegistryError) -> Void = { try RuleRegistry().loadBuiltins(environment: environment) }
        do {
            try load()
            Issue.record("an empty REGULA_BUILTIN_DIR gave rules")
        } catch {
            #expect(error.reason == .builtinsNotFound(searched: [empty.url.path], fromEnvironment: true))
            #expect(error.path == empty.url.path)
            #expect(error.description.hasPrefix("built-in rules not found: no libRegulaRule*.so in \(empty.url.path), the folder REGULA_BUILTIN_DIR names"))
            let wrapped = OptimizerError.rulesUnavailable(error)
            #expect(wrapped.description == error.description)
        }
        let spec = Data(#"{"dtype": "float64", "rules": ["sgd", "momentun"], "defaults": {"lr": 0.1}, "groups": [{"params": ["w"]}], "params": {"w": [1.0]}, "steps": [{"grads": {"w": [1.0]}}]}"#.utf8)
        let run: () throws(ReplayError) -> ReplayResult = { try ReplaySpec(json: spec).run() }
        do {
            _ = try run()
            Issue.record("a misspelt rule was accepted")
        } catch {
            guard case .unknownRule("momentun", suggestion: "momentum", _, _)? = error.optimizerError else {
                Issue.record("expected the optimizer's unknownRule inside, got \(String(describing: error.optimizerError))")
                return
            }
            #expect(error.description == error.optimizerError?.description)
        }
    }

    /// A program copied out of the build folder, with no rules beside it, finds them in the user's standard
    /// folder.
    @Test func programCopiedElsewhereFindsTheRulesInTheUsersStandardFolder() throws {
        let home = try TemporaryDirectory("regula-home")
        let bin = home.url.appendingPathComponent("apps/bin"), rules = home.url.appendingPathComponent(".local/lib/regula")
        for folder in [bin, rules] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        try FileManager.default.copyItem(at: TestPaths.regula, to: bin.appendingPathComponent("regula"))
        for name in Self.libraries(in: Self.bundle, prefix: PluginSearchPath.builtinPrefix) {
            try FileManager.default.copyItem(at: Self.bundle.appendingPathComponent(name), to: rules.appendingPathComponent(name))
        }
        let found = try run(bin.appendingPathComponent("regula"), ["config", "--builtin-dir"], environment: ["HOME": home.path])
        #expect(found.status == 0, "\(found.standardError)")
        #expect(found.standardOutput == rules.path + "\n")
        let list = try run(bin.appendingPathComponent("regula"), ["list"], environment: ["HOME": home.path])
        #expect(list.status == 0 && list.standardOutput.contains("from \(rules.path)/libRegulaRuleSGD.so"), "\(list.standardError)")
    }
}
