import ArgumentParser
import Foundation
import Regula

/// `regula check FILE`: the conformance run of every rule in a shared object, in a child process so that a
/// crashing plugin is reported instead of ending the tool.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check that every rule in a plugin keeps the contract (exit status 0 when all pass).",
        discussion: """
            Runs each check in a child process: a check that crashes it, ends it or runs past --timeout is \
            reported as failed with what happened, and the remaining checks run in a new child. Exit status: \
            0 all passed, 1 a check failed, crashed or hung, 2 the file could not be loaded (refused, or \
            loading it crashed, ended or hung the child), 64 a --shape or --option that the plugin's rules \
            cannot be checked with.

            The test parameter has the --shape given (sizes separated by commas, row-major: 24,16), else \
            [5003] for a rule that steps rank 1 and a 24 × 40 matrix for one that steps only rank 2 or keeps \
            rows or columns slots (with leading sizes of 2 for higher ranks). Each --option sets a hyperparameter for every rule that \
            declares it; every other one keeps its default, but a default of 0 is raised to a typical value \
            (0.1, or 1 for a count, a flag or a choice) where the rule's check allows it. The report says \
            the shape and every value used, and where each value came from. A whole-tensor rule is called \
            once per parameter and step on all of it, as the host calls it: its block-split check does not \
            apply, and its thread check steps several parameters at once and changes the BLAS's thread count.
            """)

    @Argument(help: "A shared object built against regula.h.")
    var file: String

    @Flag(help: "Print one JSON object per check instead of the readable report.")
    var json = false

    @Flag(name: .customLong("in-process"), help: "Run in this process (a crashing plugin then ends the tool).")
    var inProcess = false

    @Option(name: .customLong("skip"), help: ArgumentHelp("Skip a check, as RULE:CHECK (repeatable).", valueName: "rule:check"))
    var skipped: [String] = []

    @Option(help: ArgumentHelp("The test parameter's shape, as sizes separated by commas (24,16); by default one within each rule's ranks.",
                               valueName: "sizes"))
    var shape: String?

    @OptionGroup var options: HyperparameterOptions

    @Option(help: ArgumentHelp("Seconds one check (or loading the file) may take before its process is killed and it fails.",
                               valueName: "seconds"))
    var timeout: Double = 60

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds") }
        _ = try setup()
    }

    /// The shape and options given, as the checks take them.
    func setup() throws -> ConformanceSetup {
        ConformanceSetup(shape: try shape.map(Self.parseShape), options: options.given, choices: options.choices)
    }

    /// `24,16` as `[24, 16]`, or a validation error naming the text and what is allowed.
    static func parseShape(_ text: String) throws -> [Int] {
        let sizes = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--shape \"\(text)\" is not a list of sizes; write whole numbers separated by commas, such as 24,16")
        }
        return sizes.compactMap { $0 }
    }

    func run() throws {
        if inProcess {
            try runInProcess()
            return
        }
        let results = try runInChildren()
        if json {
            for result in results { print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self)) }
        } else {
            report(results)
        }
        if results.contains(where: { !$0.passed }) { throw ExitCode.failure }
    }

    /// Loads the file and checks each rule here. On standard output (kept for this protocol; anything plugin
    /// code prints goes to standard error): `loaded N` once the file is loaded (or `refused REASON`), `begin
    /// RULE CHECK` before each check, `result JSON` after it, and `finished` at the end.
    private func runInProcess() throws {
        let channel = ProtocolChannel()
        let rules: [Rule]
        do {
            rules = try RuleRegistry().loadPlugin(at: file)
        } catch {
            channel.send("refused\t\(error)")
            printError("error: \(error)")
            throw ExitCode(2)
        }
        channel.send("loaded\t\(rules.count)")
        let setup = try setup()
        do {
            try setup.validate(for: rules)
        } catch {
            channel.send("invalid\t\(error)")
            printError("error: \(error)")
            throw ExitCode.validationFailure
        }
        let skips = Set(skipped)
        for rule in rules {
            let skipping = Set(ConformanceCheck.allCases.filter { skips.contains("\(rule.name):\($0.rawValue)") })
            let results = Conformance.check(rule, setup: setup, skipping: skipping) { check in
                channel.send("begin\t\(rule.name)\t\(check.rawValue)")
            }
            for result in results {
                channel.send("result\t" + String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
            }
        }
        channel.send("finished")
    }

    /// What one child process reported before it ended.
    private struct ChildRun {
        var loaded = false
        var finished = false
        var refusal: String?
        /// Why the plugin's rules cannot be checked with the --shape or --option given.
        var invalid: String?
        var started: (rule: String, check: String)?
        var results: [ConformanceResult] = []
        var limit = 0.0
        var outcome = ChildProcess.Outcome(termination: .exited(0))

        /// How the process ended, as a phrase whose subject is what ran in it: `crashed the process with
        /// signal 11 (Segmentation fault)`, `ended the process with exit status 0 (…)`, `did not finish …`.
        var ending: String {
            if outcome.timedOut {
                let seconds = limit == limit.rounded() ? "\(Int(limit))" : "\(limit)"
                return "did not finish within --timeout (\(seconds) s), so the process was killed"
            }
            if case .signalled = outcome.termination { return "crashed the process with \(outcome.termination)" }
            return "ended the process with \(outcome.termination)" + (finished ? "" : " (the plugin called exit?)")
        }
    }

    /// Runs children until one finishes; each check that crashes, exits or hangs its child is recorded as
    /// failed and skipped in the next child.
    private func runInChildren() throws -> [ConformanceResult] {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let result = try ChildProcess.retry(attempt: { (crashes: [ConformanceResult]) in
            let skips = skipped + crashes.map { "\($0.rule):\($0.check.rawValue)" }
            return try runChild(executable, arguments: ["check", file, "--in-process"] + skips.flatMap { ["--skip", $0] } + forwarded)
        }, isClean: { $0.loaded && $0.refusal == nil && $0.invalid == nil && $0.finished && $0.outcome.exitedCleanly },
        blame: { run, crashes in
            if let refusal = run.refusal {
                printError("error: \(refusal)")
                throw ExitCode(2)
            }
            if let invalid = run.invalid {
                printError("error: \(invalid)")
                throw ExitCode.validationFailure
            }
            guard run.loaded else {
                printError("error: cannot load plugin \(file): loading it \(run.ending)\(run.outcome.lastWordsClause)")
                throw ExitCode(2)
            }
            guard let (rule, check) = run.started, let crashed = ConformanceCheck(rawValue: check) else {
                report(mergeCrashes(crashes, into: run.results))
                printError("error: the plugin \(run.ending) \(run.finished ? "as it exited, after the checks (in its finalizers?)" : "between two checks")\(run.outcome.lastWordsClause)")
                throw ExitCode.failure
            }
            return ConformanceResult(rule: rule, check: crashed, passed: false, detail: "\(run.ending)\(run.outcome.lastWordsClause)")
        })
        let all = mergeCrashes(result.blamed, into: result.last.results)
        guard !all.isEmpty else {
            printError("error: no check ran (every check was skipped)")
            throw ExitCode.failure
        }
        return all
    }

    /// The --shape and --option arguments, for the children.
    private var forwarded: [String] {
        (shape.map { ["--shape", $0] } ?? []) + options.values.flatMap { ["--option", $0] }
    }

    /// Runs one child, reading its protocol lines until it ends, stops answering or is killed.
    private func runChild(_ executable: String, arguments: [String]) throws -> ChildRun {
        let child = try ChildProcess(executable: executable, arguments: arguments)
        var run = ChildRun(limit: timeout)
        run.outcome = child.readToEnd(lineWithin: timeout) { line in
            let fields = line.split(separator: "\t", maxSplits: 2).map(String.init)
            switch fields.first {
            case "loaded": run.loaded = true
            case "refused" where fields.count >= 2: run.refusal = fields.dropFirst().joined(separator: "\t")
            case "invalid" where fields.count >= 2: run.invalid = fields.dropFirst().joined(separator: "\t")
            case "begin" where fields.count == 3: run.started = (fields[1], fields[2])
            case "result" where fields.count == 2:
                if let result = try? JSONDecoder().decode(ConformanceResult.self, from: Data(fields[1].utf8)) {
                    run.results.append(result)
                    run.started = nil
                }
            case "finished": run.finished = true
            default: break
            }
        }
        return run
    }

    /// The final results with each crash in the place its check would have had.
    private func mergeCrashes(_ crashes: [ConformanceResult], into results: [ConformanceResult]) -> [ConformanceResult] {
        let order = ConformanceCheck.allCases
        var rules: [String] = []
        for name in (results + crashes).map(\.rule) where !rules.contains(name) { rules.append(name) }
        return (results + crashes).sorted {
            let (a, b) = (rules.firstIndex(of: $0.rule)!, rules.firstIndex(of: $1.rule)!)
            return a != b ? a < b : order.firstIndex(of: $0.check)! < order.firstIndex(of: $1.check)!
        }
    }

    private func report(_ results: [ConformanceResult]) {
        var current = ""
        for result in results {
            if result.rule != current {
                current = result.rule
                print("rule \(current) (\(file))")
            }
            print("  \(!result.isApplicable ? "n/a " : result.passed ? "pass" : "FAIL")  \(result.check.summary): \(result.detail)")
        }
        let run = results.filter(\.isApplicable), failed = run.filter { !$0.passed }.count
        let inapplicable = results.count - run.count
        print("regula check: \(run.count - failed) of \(run.count) checks passed"
              + (inapplicable == 0 ? "" : ", \(inapplicable) not applicable")
              + (failed == 0 ? "" : "; \(failed) FAILED"))
    }
}
