import Foundation
import Regula
import RegulaTestSupport
import Testing

/// `regula check` on whole-tensor rules, with `--shape` and `--option`: a kernel that sees its parameter whole
/// is called as the host calls it, passes when it keeps the contract and fails the check named for what it
/// breaks; a shape or an option the plugin's rules cannot be checked with is refused with words; `regula list`
/// and `regula inspect` say which rules need which ranks.
@Suite struct WholeTensorConformanceTests {
    /// `row_center` compiled into a folder of its own.
    static func rowCenter() throws -> (folder: TemporaryDirectory, path: String) {
        let folder = try TemporaryDirectory()
        return (folder, try PluginCompiler.compile(PluginSource.rowCenter, named: "row_center", in: folder).path)
    }

    /// The readable report's line for `check`.
    static func line(_ check: ConformanceCheck, in output: ProcessOutput) -> String? {
        output.standardOutput.split(separator: "\n").map(String.init).first { $0.contains(check.summary) }
    }

    @Test func aWholeTensorRulePassesOnAMatrixOfItsRankWithTheBlockSplitNotApplicable() throws {
        let (folder, path) = try Self.rowCenter()
        defer { _ = folder }
        let output = try regula(["check", path])
        #expect(output.status == 0, "\(output.standardOutput)\(output.standardError)")
        #expect(output.standardOutput.contains("regula check: 12 of 12 checks passed, 1 not applicable"), "\(output.standardOutput)")
        #expect(Self.line(.hyperparameters, in: output)?.contains("shape [24, 40] (rank 2), whole tensor") == true,
                "\(output.standardOutput)")
        #expect(Self.line(.blockSplit, in: output)?.hasPrefix("  n/a   ") == true, "\(output.standardOutput)")
        #expect(Self.line(.blockSplit, in: output)?.contains("never split into blocks") == true)
        #expect(Self.line(.threads, in: output)?.contains("4 parameters of shape [24, 40] agree") == true, "\(output.standardOutput)")
        #expect(Self.line(.emptyBlock, in: output)?.contains("on shape [0, 40]") == true, "\(output.standardOutput)")
    }

    /// The shape given is the one the kernel sees: row_center refuses a matrix of 7 rows, and only that one.
    @Test func theShapeGivenIsTheShapeTheKernelSees() throws {
        let (folder, path) = try Self.rowCenter()
        defer { _ = folder }
        let wide = try regula(["check", path, "--shape", "48,16"])
        #expect(wide.status == 0, "\(wide.standardOutput)\(wide.standardError)")
        #expect(Self.line(.hyperparameters, in: wide)?.contains("shape [48, 16] (rank 2)") == true, "\(wide.standardOutput)")
        let seven = try regula(["check", path, "--shape", "7,5", "--json"])
        #expect(seven.status == 1)
        #expect(seven.standardOutput.contains("seven rows are refused"), "\(seven.standardOutput)")
    }

    /// A broken whole-tensor rule (rank 2; `d`, `p` its update and parameter, `n` their length, `T` the element
    /// type), the check it must fail and the words that check must print.
    struct Broken: Sendable, CustomStringConvertible {
        let name: String
        let body: String
        let failing: ConformanceCheck
        let words: String
        /// Checks left out: those the rule crashes on purpose, which a sanitizer's run would report instead.
        var skipping: [ConformanceCheck] = []
        var description: String { name }
    }

    static let broken: [Broken] = [
        // Carries a value from one call to the next in a static variable instead of a slot.
        Broken(name: "static_carry", body: "static double carried; for (size_t i = 0; i < n; i++) d[i] += (T)carried; if (n) carried = d[0];",
               failing: .noHiddenState, words: "stepping another parameter ([9, 13]) in between changed the result"),
        // Works in a static buffer, so two parameters stepped at once overwrite each other's work.
        Broken(name: "static_workspace", body: """
            static double work[1 << 16]; if (n > (1 << 16)) return REGULA_OK;
            for (size_t i = 0; i < n; i++) work[i] = (double)d[i] * 0.5;
            usleep(3000);
            for (size_t i = 0; i < n; i++) d[i] = (T)work[i];
            """, failing: .threads, words: "at once"),
        // Writes one element past the end of its update.
        Broken(name: "writes_past_parameter", body: "(void)p; if (n) d[n] = 1;",
               failing: .writesInsideBlock, words: "update[960] changed, outside the parameter's 960 elements",
               skipping: [.guardAfter]),
    ]

    static func source(_ plugin: Broken) -> String {
        PluginSource.plugin(rules: ["""
            { RULE("\(plugin.name)"), .summary = "broken on purpose", .kernel = broken,
              .flags = REGULA_RULE_WHOLE_TENSOR | REGULA_RULE_USES_ABI_1_3, .min_rank = 2, .max_rank = 2 }
            """], declarations: """
            #include <unistd.h>
            REGULA_KERNEL(broken, {
                T *d = (T *)block->update; const T *p = (const T *)block->param; size_t n = block->length; (void)p;
                \(plugin.body)
            })
            """)
    }

    /// Run in `--json`, the check named fails with its words.
    @Test(arguments: broken)
    func aBrokenWholeTensorRuleFailsTheCheckForWhatItBreaks(_ plugin: Broken) throws {
        let folder = try TemporaryDirectory()
        let file = try PluginCompiler.compile(Self.source(plugin), named: plugin.name, in: folder, extraArguments: ["-w"])
        let (output, results) = try ConformanceTests.checked(file, plugin.skipping.flatMap { ["--skip", "\(plugin.name):\($0.rawValue)"] })
        #expect(output.status == 1, "\(output.standardError)")
        let result = try #require(results.first { $0.check == plugin.failing }, "\(output.standardOutput)")
        #expect(!result.passed)
        #expect(result.detail.contains(plugin.words), "\(result.detail)")
        let split = try #require(results.first { $0.check == .blockSplit })
        #expect(!split.isApplicable && split.passed)
    }

    @Test(arguments: [
        (["--shape", "24"], #"--shape 24 has rank 1, but rule "row_center" steps parameters of rank 2 only"#),
        (["--shape", "24,16,2"], #"--shape 24,16,2 has rank 3, but rule "row_center" steps parameters of rank 2 only"#),
        (["--shape", "24x16"], #"--shape "24x16" is not a list of sizes; write whole numbers separated by commas, such as 24,16"#),
        (["--shape", "24,0"], "--shape 24,0 is refused: a size is 0; every size must be at least 1"),
        (["--shape", "4096,2048"], "--shape 4096,2048 is refused: it holds 8388608 elements; allowed: at most 4194304"),
        (["--option", "lr=0.1"], #"--option lr: no rule of the plugin takes "lr"; rule row_center takes: nothing"#),
    ])
    func aShapeOrOptionTheRuleCannotBeCheckedWithIsRefused(arguments: [String], words: String) throws {
        let (folder, path) = try Self.rowCenter()
        defer { _ = folder }
        let output = try regula(["check", path] + arguments)
        #expect(output.status == 64, "\(output.standardOutput)")
        #expect(output.standardError.contains(words), "\(output.standardError)")
        #expect(!output.standardOutput.contains("pass"), "no check ran: \(output.standardOutput)")
    }

    /// `--option` values reach the rule as given, a choice by its name, and the report says where each came from.
    @Test func optionsAreUsedAsGivenAndTheReportSaysWhereEachValueCameFrom() throws {
        let folder = try TemporaryDirectory()
        let path = try PluginCompiler.compile(ChoiceOptionTests.scaledSource, named: "scaled_sgd", in: folder).path
        let chosen = try regula(["check", path, "--option", "scale=thrice", "--option", "lr=0.25"])
        #expect(chosen.status == 0, "\(chosen.standardOutput)\(chosen.standardError)")
        #expect(Self.line(.hyperparameters, in: chosen)?.contains("lr=0.25 (given), scale=thrice (given); shape [5003] (rank 1)") == true,
                "\(chosen.standardOutput)")
        // Without options, the zero default (scale's index 0, "once") is raised to the next name.
        let plain = try regula(["check", path])
        #expect(Self.line(.hyperparameters, in: plain)?.contains("lr=0.1 (default), scale=twice (default once, raised)") == true,
                "\(plain.standardOutput)")
    }

    @Test(arguments: [
        (["--option", "scal=twice"], #"no rule of the plugin takes "scal" (did you mean "scale"?); rule scaled_sgd takes: lr, scale"#),
        (["--option", "scale=twyce"], #"--option scale=twyce: "twyce" is not a choice of rule scaled_sgd (did you mean "twice"?); allowed: once, twice, thrice"#),
        (["--option", "scale=2"], #"--option scale=2: "scale" is a choice; give one of its names: once, twice, thrice"#),
        (["--option", "lr=fast"], #"--option lr=fast: "lr" takes a number, not a name"#),
        (["--option", "lr=-1"], "--option lr=-1 is not allowed by rule scaled_sgd; allowed: ≥ 0"),
    ])
    func anOptionTheRulesDoNotTakeIsRefusedWithWhatIsAllowed(arguments: [String], words: String) throws {
        let folder = try TemporaryDirectory()
        let path = try PluginCompiler.compile(ChoiceOptionTests.scaledSource, named: "scaled_sgd", in: folder).path
        let output = try regula(["check", path] + arguments)
        #expect(output.status == 64, "\(output.standardOutput)")
        #expect(output.standardError.contains(words), "\(output.standardError)")
    }

    /// `regula list` and `regula inspect` put the ranks and whole tensors under the summary, and nothing for a
    /// block rule of any rank.
    @Test func listAndInspectShowTheRanksAndWholeTensors() throws {
        let (folder, path) = try Self.rowCenter()
        defer { _ = folder }
        let note = "    rank 2 only, whole tensor (one call per parameter and step)"
        let listed = try regula(["list", "--plugin-dir", folder.url.path])
        let lines = listed.standardOutput.split(separator: "\n").map(String.init)
        let header = try #require(lines.firstIndex { $0.hasPrefix("row_center  v1") }, "\(listed.standardOutput)")
        #expect(Array(lines[(header + 1)...].prefix(2)) == ["    subtracts each row's mean from d", note])
        let sgd = try #require(lines.firstIndex { $0.hasPrefix("sgd  v1") })
        #expect(!lines[sgd + 2].contains("rank") && !lines[sgd + 2].contains("whole tensor"), "\(lines[sgd + 2])")
        let inspected = try regula(["inspect", path])
        #expect(inspected.status == 0)
        #expect(inspected.standardOutput.contains("\n    subtracts each row's mean from d\n\(note)\n"), "\(inspected.standardOutput)")
    }
}
