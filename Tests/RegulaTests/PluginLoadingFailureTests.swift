import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Every way a plugin file can be refused: each bad plugin is compiled from C source into a temporary
/// folder beside a good one, and the refusal must name the file and the reason while the good plugin still
/// loads.
@Suite struct PluginLoadingFailureTests {
    // MARK: Files that are not Regula plugins

    @Test func textFileNamedLikeASharedObjectIsRefusedBeforeTheLoaderSeesIt() throws {
        let folder = try TemporaryDirectory()
        let bad = try folder.write("this is not an ELF file\n", to: "libjunk.so")
        let error = try refusal(of: bad, in: folder)
        guard case .invalidSharedObject(let words) = error.reason else {
            Issue.record("expected .invalidSharedObject, got \(error.reason)")
            return
        }
        #expect(words.contains("not an ELF file"), "\(words)")
        expectDescription(of: error, names: bad, says: ["not a well-formed shared object", words, "before the dynamic loader"])
    }

    @Test func sharedObjectWithoutEntrySymbolIsRefused() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile("int regula_plugin_entry_misspelt(void) { return 0; }\n",
                                             named: "no_entry", in: folder)
        let error = try refusal(of: bad, in: folder)
        #expect(error.reason == .missingEntrySymbol)
        expectDescription(of: error, names: bad, says: ["regula_plugin_entry", "not a Regula plugin"])
    }

    /// dlsym finds a symbol in the libraries a file links too; a plugin must export its entry itself.
    @Test func entryOfALibraryThePluginLinksIsNotTakenForItsOwn() throws {
        let folder = try TemporaryDirectory(), elsewhere = try TemporaryDirectory()
        try PluginCompiler.compile(PluginSource.scaleTest, named: "provider", in: elsewhere)
        let bad = try PluginCompiler.compile("int borrows_an_entry(void) { return 1; }\n", named: "borrower", in: folder,
                                             extraArguments: ["-Wl,--no-as-needed", "-L", elsewhere.path, "-lprovider",
                                                              "-Wl,-rpath,\(elsewhere.path)"])
        let error = try refusal(of: bad, in: folder)
        #expect(error.reason == .missingEntrySymbol)
    }

    @Test func pluginBuiltForAnotherMajorVersionIsRefusedNamingBothVersions() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile("""
            #include <regula/regula.h>
            static const regula_plugin plugin = { 2, 3, sizeof(regula_plugin), 0, NULL };
            REGULA_EXPORT const regula_plugin *regula_plugin_entry(void) { return &plugin; }
            """, named: "abi_two", in: folder)
        let error = try refusal(of: bad, in: folder)
        #expect(error.reason == .incompatibleABI(pluginMajor: 2, pluginMinor: 3))
        expectDescription(of: error, names: bad, says: ["ABI 2.3", "ABI 1.", "rebuild"])
    }

    @Test func entryReturningNullIsRefused() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile("""
            #include <regula/regula.h>
            REGULA_EXPORT const regula_plugin *regula_plugin_entry(void) { return NULL; }
            """, named: "null_entry", in: folder)
        let error = try refusal(of: bad, in: folder)
        expectMalformed(error, naming: bad, says: ["regula_plugin_entry()", "returned NULL"])
    }

    // MARK: Descriptions that break the contract

    @Test func emptyRuleNameIsRefused() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(rules: [#"{ RULE(""), .kernel = scale }"#]),
                                             named: "empty_name", in: folder)
        let error = try refusal(of: bad, in: folder)
        expectMalformed(error, naming: bad, says: [#"rule name """#, "not an identifier"])
    }

    @Test func nullRuleNameIsRefused() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(rules: ["{ RULE(NULL), .kernel = scale }"]),
                                             named: "null_name", in: folder)
        let error = try refusal(of: bad, in: folder)
        expectMalformed(error, naming: bad, says: ["rules[0]", "NULL name"])
    }

    @Test func ruleNameTwiceInOneFileIsRefused() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(
            PluginSource.plugin(rules: [#"{ RULE("twin"), .kernel = scale }"#, #"{ RULE("twin"), .kernel = scale }"#]),
            named: "twins", in: folder)
        let error = try refusal(of: bad, in: folder)
        expectMalformed(error, naming: bad, says: [#""twin""#, "appears twice"])
    }

    @Test func absurdRuleCountIsRefusedBeforeTheRulesAreRead() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("counted"), .kernel = scale }"#],
            export: """
                static const regula_plugin plugin = { REGULA_ABI_MAJOR, REGULA_ABI_MINOR, sizeof(regula_plugin), 100000, rules };
                REGULA_EXPORT const regula_plugin *regula_plugin_entry(void) { return &plugin; }
                """), named: "many_rules", in: folder)
        let error = try refusal(of: bad, in: folder)
        expectMalformed(error, naming: bad, says: ["rule_count is 100000", "1024"])
    }

    @Test func absurdHyperparameterCountIsRefused() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("greedy"), .kernel = scale, .hyperparameter_count = 1000, .hyperparameters = rate }"#],
            declarations: rateHyperparameter(default: 0.5)), named: "many_hyperparameters", in: folder)
        let error = try refusal(of: bad, in: folder)
        expectMalformed(error, naming: bad, says: ["hyperparameters", #""greedy""#, "count is 1000", "64"])
    }

    @Test func defaultOutsideItsRangeIsRefused() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("wayward"), .kernel = scale, .hyperparameter_count = 1, .hyperparameters = rate }"#],
            declarations: rateHyperparameter(default: 2)), named: "bad_default", in: folder)
        let error = try refusal(of: bad, in: folder)
        expectMalformed(error, naming: bad, says: [#""rate""#, #""wayward""#, "default 2", "outside its range", "[0, 1]"])
    }

    @Test func ruleWithoutKernelIsRefused() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(rules: [#"{ RULE("idle"), .kernel = NULL }"#]),
                                             named: "no_kernel", in: folder)
        let error = try refusal(of: bad, in: folder)
        expectMalformed(error, naming: bad, says: [#""idle""#, "no kernel"])
    }

    // MARK: Plugins that clash with each other

    @Test func ruleNameAnotherPluginProvidesIsRefusedAndTheFirstKeepsIt() throws {
        let folder = try TemporaryDirectory()
        let source = PluginSource.plugin(rules: [#"{ RULE("contested"), .kernel = scale }"#])
        let first = try PluginCompiler.compile(source, named: "a_first", in: folder)
        let second = try PluginCompiler.compile(source, named: "b_second", in: folder)
        let registry = RuleRegistry()
        let error = try refusal(of: second, in: folder, registry: registry, loaded: ["contested", "scale_test"])
        #expect(error.reason == .duplicateRule(name: "contested", alreadyFrom: first.path))
        expectDescription(of: error, names: second, says: [#""contested""#, "already provided by \(first.path)"])
        #expect(try registry.rule(named: "contested").origin == .sharedObject(path: first.path))
    }

    // MARK: The command line

    @Test func inspectOfBadFileFailsWithTheReasonOnStandardError() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(rules: [#"{ RULE("idle"), .kernel = NULL }"#]),
                                             named: "no_kernel", in: folder)
        let output = try regula(["inspect", bad.path])
        #expect(output.status != 0)
        #expect(output.standardOutput.isEmpty)
        #expect(output.standardError.contains(bad.path), "\(output.standardError)")
        #expect(output.standardError.contains("no kernel"), "\(output.standardError)")
    }

    @Test func inspectOfGoodFilePrintsItsRule() throws {
        let folder = try TemporaryDirectory()
        let good = try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: folder)
        let output = try regula(["inspect", good.path])
        #expect(output.status == 0, "\(output.standardError)")
        #expect(ruleNames(listedIn: output.standardOutput).contains("scale_test"), "\(output.standardOutput)")
    }

    @Test func entryExportedAsDataIsRefusedInsteadOfCalled() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("data_entry"), .kernel = scale }"#],
            export: "REGULA_EXPORT const regula_plugin regula_plugin_entry = { REGULA_ABI_MAJOR, REGULA_ABI_MINOR, sizeof(regula_plugin), 1, rules };"),
            named: "data_entry", in: folder)
        let error = try refusal(of: bad, in: folder)
        expectMalformed(error, naming: bad, says: ["regula_plugin_entry is data, not a function"])
        let inspected = try regula(["inspect", bad.path])
        #expect(inspected.status == 1)
        #expect(inspected.standardError.contains("is data, not a function"))
    }

    @Test func booleanWithAnotherRangeIsRefused() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("flag_rule"), .kernel = scale, .hyperparameter_count = 1, .hyperparameters = flag }"#],
            declarations: """
                static const regula_hyperparameter flag[] = {{ .struct_size = sizeof(regula_hyperparameter), .name = "on",
                    .type = REGULA_HYPERPARAMETER_BOOLEAN, .default_value = 1, .minimum = 0, .maximum = 5 }};
                """), named: "boolean_range", in: folder)
        expectMalformed(try refusal(of: bad, in: folder), naming: bad, says: ["boolean", "[0, 1]"])
    }

    /// A description whose pointers lead nowhere (a damaged data section) is refused in this very process,
    /// without a probe: every pointer is checked readable before it is followed.
    @Test(arguments: [
        (#"{ .struct_size = sizeof(regula_rule), .name = (const char *)0x10, .kernel = scale, .dtypes = 3 }"#, "the name of rules[0] points to 0x10"),
        (#"{ RULE("bad_summary"), .summary = (const char *)0x18, .kernel = scale }"#, "the summary of rule \"bad_summary\""),
        (#"{ RULE("bad_slots"), .kernel = scale, .slot_count = 2, .slots = (const regula_state_slot *)0x20 }"#, "slots of rule \"bad_slots\""),
    ])
    func unreadablePointersInADescriptionAreRefusedInWords(rule: String, words: String) throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(rules: [rule]), named: "wild_pointer", in: folder)
        expectMalformed(try refusal(of: bad, in: folder), naming: bad, says: [words, "not readable memory"])
    }

    @Test func unknownRuleFlagsAreRefused() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(rules: [#"{ RULE("flagged"), .kernel = scale, .flags = 0x20 }"#]),
                                             named: "flagged", in: folder)
        expectMalformed(try refusal(of: bad, in: folder), naming: bad,
                        says: ["sets unknown flags 0x20", "REGULA_RULE_NEVER_FAILS (0x1)", "REGULA_RULE_USES_ABI_1_2 (0x4)",
                               "REGULA_RULE_WHOLE_TENSOR (0x8)", "REGULA_RULE_USES_ABI_1_3 (0x10)"])
    }

    @Test func missingPluginFolderIsNamedPlainly() throws {
        let folder = try TemporaryDirectory()
        let missing = folder.url.appendingPathComponent("nowhere").path
        #expect(throws: RegistryError(path: missing, reason: .folderNotFound)) {
            try RuleRegistry().loadPlugins(inDirectory: missing)
        }
        let registry = try RuleRegistry.standard(environment: [PluginSearchPath.pathVariable: missing])
        #expect(registry.loadFailures.map(\.description) == ["plugin folder \(missing) does not exist"])
    }

    @Test func swiftPluginFromAnotherToolchainIsRefusedNamingBoth() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("other_swift"), .kernel = scale }"#],
            export: """
                static const regula_plugin description = { REGULA_ABI_MAJOR, REGULA_ABI_MINOR, sizeof(regula_plugin), 1, rules,
                                                           "swift/clang 1.0.0 (some other build)" };
                REGULA_EXPORT const regula_plugin *regula_plugin_entry(void) { return &description; }
                """), named: "other_toolchain", in: folder)
        expectMalformed(try refusal(of: bad, in: folder), naming: bad,
                        says: ["built with swift/clang 1.0.0 (some other build), but this host with swift/clang", "same Swift toolchain"])
    }

    @Test func pluginWithTheABI10LayoutStillLoads() throws {
        // A plugin compiled before 1.1 appended `toolchain`: its struct ends after `rules`, 24 bytes.
        let folder = try TemporaryDirectory()
        let old = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("from_1_0"), .kernel = scale }"#],
            export: """
                struct v1_0 { uint32_t major, minor, size, count; const regula_rule *rules; };
                static const struct v1_0 description = { 1, 0, sizeof(struct v1_0), 1, rules };
                REGULA_EXPORT const void *regula_plugin_entry(void) { return &description; }
                """), named: "abi_1_0", in: folder)
        #expect(try RuleRegistry().loadPlugin(at: old.path).map(\.name) == ["from_1_0"])
    }

    @Test func listShowsGoodAndBuiltinRulesAndReportsTheBadFile() throws {
        let folder = try TemporaryDirectory()
        let bad = try PluginCompiler.compile(PluginSource.plugin(rules: [#"{ RULE("idle"), .kernel = NULL }"#]),
                                             named: "no_kernel", in: folder)
        try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: folder)
        let output = try regula(["list"], environment: ["REGULA_PLUGIN_PATH": folder.path])
        #expect(output.status == 0, "\(output.standardError)")
        let listed = ruleNames(listedIn: output.standardOutput)
        #expect(listed.isSuperset(of: ["scale_test", "l1", "l2", "momentum", "nesterov", "sgd"]), "\(output.standardOutput)")
        #expect(!listed.contains("idle"))
        #expect(output.standardError.contains(bad.path), "\(output.standardError)")
    }
}

// MARK: - Helpers

/// Declares `rate`, one real hyperparameter in [0, 1] with the given default.
private func rateHyperparameter(default value: Double) -> String {
    """
    static const regula_hyperparameter rate[] = {
        { .struct_size = sizeof(regula_hyperparameter), .name = "rate", .type = REGULA_HYPERPARAMETER_REAL,
          .default_value = \(value), .minimum = 0.0, .maximum = 1.0 },
    };
    """
}

/// Compiles the good plugin into `folder`, loads the whole folder into `registry` and expects `bad`, and
/// only it, to be refused while the rules `loaded` are there; returns the refusal.
private func refusal(of bad: URL, in folder: TemporaryDirectory, registry: RuleRegistry = RuleRegistry(),
                     loaded: [String] = ["scale_test"],
                     sourceLocation: SourceLocation = #_sourceLocation) throws -> RegistryError {
    try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: folder)
    let refused = try registry.loadPlugins(inDirectory: folder.path)
    #expect(registry.rules.map(\.name) == loaded, sourceLocation: sourceLocation)
    #expect(registry.loadFailures == refused, sourceLocation: sourceLocation)
    let error = try #require(refused.count == 1 ? refused.first : nil, "refused: \(refused)", sourceLocation: sourceLocation)
    #expect(error.path == bad.path, sourceLocation: sourceLocation)
    return error
}

/// Expects the error's description to name `file` and to contain every one of `words`.
private func expectDescription(of error: RegistryError, names file: URL, says words: [String],
                               sourceLocation: SourceLocation = #_sourceLocation) {
    let description = "\(error)"
    #expect(description.contains(file.path), "\(description)", sourceLocation: sourceLocation)
    for word in words { #expect(description.contains(word), "\(description)", sourceLocation: sourceLocation) }
}

/// Expects `.malformed` and a description that names `file` and says every one of `words`.
private func expectMalformed(_ error: RegistryError, naming file: URL, says words: [String],
                             sourceLocation: SourceLocation = #_sourceLocation) {
    guard case .malformed = error.reason else {
        Issue.record("expected .malformed, got \(error.reason)", sourceLocation: sourceLocation)
        return
    }
    expectDescription(of: error, names: file, says: ["malformed description"] + words, sourceLocation: sourceLocation)
}

/// The rule names `regula list` or `regula inspect` printed: the first word of each unindented line.
private func ruleNames(listedIn output: String) -> Set<String> {
    Set(output.split(separator: "\n").filter { !$0.hasPrefix(" ") }.compactMap { $0.split(separator: " ").first.map(String.init) })
}
