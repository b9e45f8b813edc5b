import Foundation
import Regula
import RegulaTestSupport
import Testing

/// `regula check`: every shipped rule passes, and each kind of broken kernel is caught by the check meant
/// for it, in a child process, without taking the tool down.
@Suite struct ConformanceTests {
    static let shippedPlugins: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: TestPaths.binDirectory.path)) ?? []
        return names.filter { $0.hasPrefix("libRegula") && $0.hasSuffix(".so") }.sorted()
    }()

    @Test func everyBuiltinAndExampleIsShipped() {
        #expect(Self.shippedPlugins.count == 25, "\(Self.shippedPlugins)")
    }

    @Test(arguments: shippedPlugins)
    func shippedPluginPassesEveryCheck(_ file: String) throws {
        let output = try regula(["check", TestPaths.binDirectory.appendingPathComponent(file).path])
        #expect(output.status == 0, "\(output.standardOutput)\(output.standardError)")
        // 13 checks per rule; a plugin with two rules (lamb) runs 26; a whole-tensor rule's block-split check
        // is counted as not applicable ("12 of 12 checks passed, 1 not applicable").
        let summary = try #require(output.standardOutput.split(separator: "\n").last { $0.hasPrefix("regula check: ") })
        let counts = summary.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .punctuationCharacters)) }
        let inapplicable = counts.count == 3 ? counts[2] : 0
        #expect((2...3).contains(counts.count) && counts[0] == counts[1] && (counts[0] + inapplicable) % 13 == 0 && counts[0] > 0,
                "\(summary)")
        #expect(!output.standardOutput.contains("FAIL"))
    }

    /// A broken plugin: its kernel body (T is the element type, `d`, `p` the block's update and parameter,
    /// `n` its length), and the check that must fail with words it must print.
    struct Broken: Sendable, CustomStringConvertible {
        let name: String
        let body: String
        var extra: String = ""
        var check: String = "NULL"
        let failing: ConformanceCheck
        let words: String
        var description: String { name }
        /// Whether the plugin crashes the check's child process on purpose.
        var crashes: Bool { words.hasPrefix("crashed") }
    }

    static let broken: [Broken] = [
        Broken(name: "kernel_error", body: #"return regula_message_set(message, REGULA_ERROR_NUMERIC, "overflow in block %zu", block->offset);"#,
               failing: .finite, words: "overflow in block"),
        Broken(name: "writes_past_end", body: "for (size_t i = 0; i <= n; i++) d[i] = 0;",
               failing: .guardAfter, words: "crashed the process with signal 11"),
        Broken(name: "reads_before_start", body: "for (size_t i = 0; i < n; i++) d[i] += (&p[0])[(ptrdiff_t)i - 1];",
               failing: .guardBefore, words: "crashed the process with signal 11"),
        Broken(name: "writes_neighbour", body: "if (n > 1 && block->offset > 0) d[-1] = 42; for (size_t i = 0; i < n; i++) d[i] *= 2;",
               failing: .writesInsideBlock, words: "update[511] changed"),
        Broken(name: "segfaults", body: "(void)d; (void)p; (void)n; *(volatile int *)0 = 1;",
               failing: .emptyBlock, words: "crashed the process with signal 11"),
        Broken(name: "makes_nan", body: "for (size_t i = 0; i < n; i++) d[i] = d[i] > 0 ? (T)NAN : d[i];",
               failing: .finite, words: "outputs are NaN or infinite"),
        Broken(name: "hidden_counter", body: "static int calls; calls++; for (size_t i = 0; i < n; i++) d[i] += (T)calls;",
               failing: .deterministic, words: "two identical runs differ"),
        Broken(name: "depends_on_split", body: "for (size_t i = 0; i < n; i++) d[i] += (T)(n % 3);",
               failing: .blockSplit, words: "differ from the host's blocks"),
        Broken(name: "refuses_everything", body: "(void)d; (void)p; (void)n;",
               extra: #"static regula_status refuse(const double *v, void *data, regula_message *m) { (void)v; (void)data; return regula_message_set(m, 1, "never"); }"#,
               check: "refuse", failing: .hyperparameters, words: "refused every combination"),
        Broken(name: "double_path_differs", body: "for (size_t i = 0; i < n; i++) d[i] *= sizeof(T) == 4 ? (T)1 : (T)1.001;",
               failing: .precision, words: "exceeds 1e-5"),
    ]

    static func source(_ plugin: Broken) -> String {
        """
        #include <math.h>
        #include <stddef.h>
        #include <regula/regula.h>
        \(plugin.extra)
        REGULA_KERNEL(broken, {
            T *d = (T *)block->update; const T *p = (const T *)block->param; size_t n = block->length;
            \(plugin.body)
        })
        static const regula_rule rules[] = {{ .struct_size = sizeof(regula_rule), .name = "\(plugin.name)",
            .summary = "broken on purpose", .version = 1, .dtypes = REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64,
            .kernel = broken, .check = \(plugin.check) }};
        REGULA_EXPORT_PLUGIN(rules)
        """
    }

    @Test(arguments: broken.filter { !$0.crashes })
    func brokenPluginIsCaughtByItsCheck(_ plugin: Broken) throws {
        try expectCaughtByItsCheck(plugin)
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes)), arguments: broken.filter(\.crashes))
    func crashingPluginIsCaughtByItsCheck(_ plugin: Broken) throws {
        try expectCaughtByItsCheck(plugin)
    }

    /// `regula check FILE --json` with `arguments`: what it printed, and the results read from its lines.
    static func checked(_ file: URL, _ arguments: [String] = []) throws -> (output: ProcessOutput, results: [ConformanceResult]) {
        let output = try regula(["check", file.path, "--json"] + arguments)
        let results = output.standardOutput.split(separator: "\n").compactMap {
            try? JSONDecoder().decode(ConformanceResult.self, from: Data($0.utf8))
        }
        return (output, results)
    }

    func expectCaughtByItsCheck(_ plugin: Broken) throws {
        let folder = try TemporaryDirectory()
        let file = try PluginCompiler.compile(Self.source(plugin), named: plugin.name, in: folder,
                                              extraArguments: ["-Wno-error", "-w"])
        let (output, results) = try Self.checked(file)
        #expect(output.status == 1, "\(output.standardError)")
        let result = try #require(results.first { $0.check == plugin.failing }, "\(output.standardOutput)")
        #expect(!result.passed)
        #expect(result.detail.contains(plugin.words), "\(result.detail)")
        #expect(results.first?.check == .descriptor, "the run went on past the failure: \(results.map(\.check))")
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes)))
    func crashingCheckIsReportedAndTheOthersStillRun() throws {
        let folder = try TemporaryDirectory()
        let file = try PluginCompiler.compile(Self.source(Self.broken[1]), named: "writes_past_end", in: folder,
                                              extraArguments: ["-w"])
        let output = try regula(["check", file.path])
        #expect(output.status == 1)
        #expect(output.standardOutput.contains("FAIL  no access past a block's end (guard page): crashed the process with signal 11 (Segmentation fault)"),
                "\(output.standardOutput)")
        #expect(output.standardOutput.contains("pass  the same inputs give the same bits twice"))
        #expect(output.standardOutput.contains("regula check: "))
    }

    @Test func unloadableFileExitsWithTwo() throws {
        let folder = try TemporaryDirectory()
        let file = try folder.write("not a plugin", to: "libnothing.so")
        let output = try regula(["check", file.path])
        #expect(output.status == 2)
        #expect(output.standardError.contains(file.path))
    }
}
