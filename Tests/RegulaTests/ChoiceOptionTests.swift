import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Choice hyperparameters (`REGULA_HYPERPARAMETER_CHOICE`, ABI 1.3): given by name from Swift, the command
/// line and replay specs, received by the kernel as the name's index, refused with the list of names.
@Suite struct ChoiceOptionTests {
    /// A C rule whose choice `scale` multiplies the step: `p -= lr * k * d`, k = 1, 2, 3 for once, twice, thrice.
    static let scaledSource = """
        #include <regula/regula.h>
        static const char *const scales[] = {"once", "twice", "thrice"};
        static const regula_hyperparameter hyperparameters[] = {
            REGULA_REAL("lr", "step size", 0.1, 0, HUGE_VAL),
            REGULA_CHOICE("scale", "how many steps in one", 0, scales),
        };
        REGULA_KERNEL(scaled_kernel, {
            T *p = block->param; const T *d = block->update;
            const T factor = (T)(block->hyperparameters[0] * (block->hyperparameters[1] + 1.0));
            for (size_t i = 0; i < block->length; i++) p[i] -= factor * d[i];
        })
        static const regula_rule rules[] = {
            REGULA_RULE("scaled_sgd", "sgd whose step is taken once, twice or thrice", .version = 1,
                        .dtypes = REGULA_KERNEL_DTYPES, .kernel = scaled_kernel, REGULA_HYPERPARAMETERS(hyperparameters)),
        };
        REGULA_EXPORT_PLUGIN(rules)
        """

    /// The compiled plugin, in its folder (kept alive with the registry), and a registry that loaded it.
    static func scaledRule() throws -> (folder: TemporaryDirectory, library: URL, registry: RuleRegistry) {
        let folder = try TemporaryDirectory()
        let library = try PluginCompiler.compile(scaledSource, named: "scaled_sgd", in: folder)
        let registry = try RuleRegistry.standard(environment: [:])
        try registry.loadPlugin(at: library.path)
        return (folder, library, registry)
    }

    /// One step of `scaled_sgd` from w = [1, -2] with gradient [0.5, 0.25] and lr 0.1.
    static func stepped(_ choices: [String: String], defaults: [String: String] = [:], registry: RuleRegistry) throws -> [Double] {
        let w = Parameter("w", values: [1.0, -2.0])
        let optimizer = try Optimizer([ParamGroup([w], choices: choices)], rules: ["scaled_sgd"], defaults: ["lr": 0.1],
                                      choices: defaults, registry: registry)
        try w.setGradient([0.5, 0.25])
        try optimizer.step()
        return try w.values(as: Double.self)
    }

    @Test func eachNameGivesItsArithmetic() throws {
        let (folder, _, registry) = try Self.scaledRule()
        defer { withExtendedLifetime(folder) {} }
        for (name, factor) in [("once", 1.0), ("twice", 2.0), ("thrice", 3.0)] {
            let expected = [1 - 0.1 * factor * 0.5, -2 - 0.1 * factor * 0.25]
            #expect(try Self.stepped(["scale": name], registry: registry) == expected, "\(name)")
            #expect(try Self.stepped([:], defaults: ["scale": name], registry: registry) == expected, "default \(name)")
        }
        // Without a choice the declared default, "once", is used.
        #expect(try Self.stepped([:], registry: registry) == [1 - 0.05, -2 - 0.025])
        let rule = try registry.rule(named: "scaled_sgd")
        #expect(rule.hyperparameters[1].kind == .choice)
        #expect(rule.hyperparameters[1].choices == ["once", "twice", "thrice"])
        #expect(rule.hyperparameters[1].defaultChoice == "once")
    }

    @Test func refusalsNameTheChoices() throws {
        let (folder, _, registry) = try Self.scaledRule()
        defer { withExtendedLifetime(folder) {} }
        let w = Parameter("w", values: [1.0])
        func refusal(_ build: () throws -> Void) -> String {
            do { try build() } catch { return "\(error)" }
            return "accepted"
        }
        #expect(refusal { _ = try Optimizer([ParamGroup([w], options: ["scale": 1])], rules: ["scaled_sgd"], registry: registry) }
            == "hyperparameter \"scale\" in group 0 is a choice: give it by name in choices, not as the number 1 in options; "
            + "its names: once, twice, thrice")
        #expect(refusal { _ = try Optimizer([w], rules: ["scaled_sgd"], defaults: ["scale": 2], registry: registry) }
            .hasPrefix("hyperparameter \"scale\" in the optimizer's defaults is a choice: give it by name in choices"))
        #expect(refusal { _ = try Optimizer([ParamGroup([w], choices: ["scale": "twise"])], rules: ["scaled_sgd"], registry: registry) }
            == "hyperparameter \"scale\" = \"twise\" in group 0 is not a choice of rule scaled_sgd (did you mean \"twice\"?); "
            + "allowed: once, twice, thrice")
        #expect(refusal { _ = try Optimizer([w], rules: ["scaled_sgd"], choices: ["scal": "once"], registry: registry) }
            == "unknown hyperparameter \"scal\" in the optimizer's defaults (did you mean \"scale\"?); rules scaled_sgd take: lr, scale")
        #expect(refusal { _ = try Optimizer([ParamGroup([w], choices: ["lr": "fast"])], rules: ["scaled_sgd"], registry: registry) }
            == "hyperparameter \"lr\" in group 0 takes a number, so give it in options, not as \"fast\" in choices; the chain's choices: scale")
    }

    @Test func aChoiceChangedBetweenStepsIsCheckedAndTakesEffect() throws {
        let (folder, _, registry) = try Self.scaledRule()
        defer { withExtendedLifetime(folder) {} }
        let w = Parameter("w", values: [1.0])
        let optimizer = try Optimizer([w], rules: ["scaled_sgd"], defaults: ["lr": 0.5], registry: registry)
        #expect(optimizer.groups[0].choices == ["scale": "once"])
        try w.setGradient([1.0])
        try optimizer.step()
        #expect(try w.values(as: Double.self) == [0.5])
        optimizer.groups[0].choices["scale"] = "thrice"
        try optimizer.step()
        #expect(try w.values(as: Double.self) == [0.5 - 1.5])
        optimizer.groups[0].choices["scale"] = "four_times"
        #expect(throws: OptimizerError.unknownChoice("scale", choice: "four_times", group: 0, rule: "scaled_sgd", suggestion: nil,
                                                     choices: ["once", "twice", "thrice"])) { try optimizer.step() }
        #expect(try w.values(as: Double.self) == [-1.0])
        optimizer.groups[0].choices = [:]
        optimizer.groups[0].options["scale"] = 2
        #expect(throws: OptimizerError.choiceGivenAsNumber("scale", value: 2, group: 0, choices: ["once", "twice", "thrice"])) {
            try optimizer.step()
        }
    }

    @Test func checkpointsRecordChoicesByNameAndRefuseOnesTheChainLacks() throws {
        let (folder, _, registry) = try Self.scaledRule()
        defer { withExtendedLifetime(folder) {} }
        let file = folder.url.appendingPathComponent("run.safetensors")
        let w = Parameter("w", values: [1.0])
        let saved = try Optimizer([ParamGroup([w], choices: ["scale": "twice"])], rules: ["scaled_sgd"], registry: registry)
        try w.setGradient([1.0])
        try saved.step()
        try saved.saveCheckpoint(to: file)
        let header = SafeTensorsParts(try Data(contentsOf: file)).header
        #expect(header.contains(#"\"choices\":{\"scale\":\"twice\"}"#), "\(header)")

        let restored = try Optimizer([Parameter("w", values: [1.0])], rules: ["scaled_sgd"], registry: registry)
        try restored.loadCheckpoint(from: file)
        #expect(restored.groups[0].choices == ["scale": "twice"])

        // A rule of the same name and version that offers no "twice" refuses the file, and nothing changes.
        let otherFolder = try TemporaryDirectory()
        let other = try RuleRegistry.standard(environment: [:])
        try other.loadPlugin(at: PluginCompiler.compile(Self.scaledSource.replacingOccurrences(of: #""twice", "#, with: ""),
                                                         named: "scaled_sgd", in: otherFolder).path)
        let refusing = try Optimizer([Parameter("w", values: [1.0])], rules: ["scaled_sgd"], registry: other)
        #expect {
            try refusing.loadCheckpoint(from: file)
        } throws: { error in
            "\(error)".contains("the checkpoint's options for group 0 are refused: hyperparameter \"scale\" = \"twice\" in group 0 "
                                + "is not a choice of rule scaled_sgd")
        }
        #expect(refusing.groups[0].choices == ["scale": "once"])
    }

    @Test func aSwiftRuleDeclaresAChoice() throws {
        let rule = try Rule(name: "swift_scaled", summary: "scales the update by 1 or -1",
                            hyperparameters: [Hyperparameter("sign", choices: ["plus", "minus"], default: "plus")]) { block in
            let d = block.update(as: Double.self), p = block.parameter(as: Double.self)
            let sign = block.hyperparameter(0) == 0 ? 1.0 : -1.0
            for i in 0..<block.count { p[i] -= sign * d[i] }
        }
        let registry = try RuleRegistry.standard(environment: [:])
        try registry.register(rule)
        let w = Parameter("w", values: [1.0])
        let optimizer = try Optimizer([ParamGroup([w], choices: ["sign": "minus"])], rules: ["swift_scaled"], registry: registry)
        try w.setGradient([0.25])
        try optimizer.step()
        #expect(try w.values(as: Double.self) == [1.25])
        #expect("\(rule.hyperparameters[0])" == "sign (choice, default plus, one of plus, minus)")
        #expect {
            try Rule(name: "bad_choice", summary: "x", hyperparameters: [Hyperparameter("mode", choices: ["a", "a"], default: "b")]) { _ in }
        } throws: { error in
            "\(error)".contains("choice \"a\" is named twice") && "\(error)".contains("the default (index 2) is none of its names, which are a, a")
        }
    }

    /// A plugin whose one choice is declared wrongly, loaded: the refusal's words.
    static func malformedRefusal(_ declaration: String, names: String = #"{"a", "b"}"#) throws -> String {
        let folder = try TemporaryDirectory()
        let source = """
            #include <regula/regula.h>
            static const char *const names[] = \(names);
            static const regula_hyperparameter hyperparameters[] = { \(declaration) };
            REGULA_KERNEL(kernel, { (void)block; })
            static const regula_rule rules[] = {
                REGULA_RULE("bad_choice", "x", .dtypes = REGULA_KERNEL_DTYPES, .kernel = kernel, REGULA_HYPERPARAMETERS(hyperparameters)),
            };
            REGULA_EXPORT_PLUGIN(rules)
            """
        let library = try PluginCompiler.compile(source, named: "bad_choice", in: folder, extraArguments: ["-Wno-unused-variable", "-Wno-unused-local-typedefs"])
        do { try RuleRegistry().loadPlugin(at: library.path) } catch { return "\(error)" }
        return "loaded"
    }

    @Test(arguments: [
        (#"REGULA_CHOICE("mode", "x", 0, names)"#, #"{"a", "a"}"#, "choice \"a\" is named twice"),
        (#"REGULA_CHOICE("mode", "x", 0, names)"#, #"{"only"}"#, "count is 1; allowed: 2 to 64"),
        (#"REGULA_CHOICE("mode", "x", 2, names)"#, #"{"a", "b"}"#, "the default (index 2) is none of its names, which are a, b"),
        (#"REGULA_CHOICE("mode", "x", 0, names)"#, #"{"a", "not a name"}"#, "choice \"not a name\" is not an identifier"),
        (#"{ .struct_size = sizeof(regula_hyperparameter), .name = "mode", .type = REGULA_HYPERPARAMETER_CHOICE, .maximum = 1, .choice_count = 2 }"#,
         #"{"a", "b"}"#, "count is 2 but the array is NULL"),
        (#"{ .struct_size = sizeof(regula_hyperparameter), .name = "mode", .type = REGULA_HYPERPARAMETER_CHOICE, .maximum = 1, .choice_count = 2, .choices = (const char *const[]){"a", NULL} }"#,
         #"{"a", "b"}"#, "entry 1 is NULL"),
        (#"{ .struct_size = sizeof(regula_hyperparameter), .name = "mode", .type = REGULA_HYPERPARAMETER_CHOICE, .maximum = 5, .choice_count = 2, .choices = names }"#,
         #"{"a", "b"}"#, "a choice's range must be [0, 1], the indices of its names, not [0, 5]"),
    ])
    func aMalformedChoiceIsRefusedAtLoad(declaration: String, names: String, words: String) throws {
        let refusal = try Self.malformedRefusal(declaration, names: names)
        #expect(refusal.contains(words), "\(refusal)")
    }

    @Test func theCommandLineTakesAChoiceByName() throws {
        let (folder, _, _) = try Self.scaledRule()
        let bench = ["bench", "--plugin-dir", folder.url.path, "--rules", "scaled_sgd", "--elements", "1000", "--steps", "1"]
        let twice = try regula(bench + ["--option", "scale=twice"])
        #expect(twice.status == 0, "\(twice.standardError)")
        let wrong = try regula(bench + ["--option", "scale=twise"])
        #expect(wrong.status != 0)
        #expect(wrong.standardError.contains("hyperparameter \"scale\" = \"twise\" in the optimizer's defaults is not a choice of rule "
                                             + "scaled_sgd (did you mean \"twice\"?); allowed: once, twice, thrice"), "\(wrong.standardError)")
        let number = try regula(bench + ["--option", "scale=1"])
        #expect(number.standardError.contains("is a choice: give it by name in choices"), "\(number.standardError)")
        let list = try regula(["list", "--plugin-dir", folder.url.path])
        #expect(list.standardOutput.contains("scale (choice, default once, one of once, twice, thrice): how many steps in one"),
                "\(list.standardOutput)")
        withExtendedLifetime(folder) {}
    }

    @Test func aReplaySpecGivesChoicesAsStrings() throws {
        let (folder, _, registry) = try Self.scaledRule()
        defer { withExtendedLifetime(folder) {} }
        let spec = try ReplaySpec(json: Data("""
            {"dtype": "float64", "rules": ["scaled_sgd"], "defaults": {"lr": 0.5, "scale": "twice"},
             "groups": [{"params": ["w"]}, {"params": ["v"], "scale": "thrice"}], "params": {"w": [1.0], "v": [1.0]},
             "steps": [{"grads": {"w": [1.0], "v": [1.0]}}, {"grads": {"w": [1.0], "v": [1.0]}, "set": [{"group": 1, "scale": "once"}]}]}
            """.utf8))
        let result = try spec.run(registry: registry)
        #expect(result.parameters["w"] == [1 - 1.0 - 1.0])
        #expect(result.parameters["v"] == [1 - 1.5 - 0.5])
        let wrong = try ReplaySpec(json: Data("""
            {"rules": ["scaled_sgd"], "groups": [{"params": ["w"]}], "params": {"w": [1.0]},
             "steps": [{"grads": {"w": [1.0]}, "set": [{"group": 0, "scale": "thrise"}]}]}
            """.utf8))
        #expect {
            try wrong.run(registry: registry)
        } throws: { error in
            "\(error)" == "spec.steps[0]: hyperparameter \"scale\" = \"thrise\" in group 0 is not a choice of rule scaled_sgd "
                + "(did you mean \"thrice\"?); allowed: once, twice, thrice"
        }
    }
}
