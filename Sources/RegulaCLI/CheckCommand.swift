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
            Runs each check in a child process: a check that crashes it is reported with the signal, and the \
            remaining checks run in a new child. Exit status: 0 all passed, 1 a check failed or crashed, \
            2 the file could not be loaded.
            """)

    @Argument(help: "A shared object built against regula.h.")
    var file: String

    @Flag(help: "Print one JSON object per check instead of the readable report.")
    var json = false

    @Flag(name: .customLong("in-process"), help: "Run in this process (a crashing plugin then ends the tool).")
    var inProcess = false

    @Option(name: .customLong("skip"), help: ArgumentHelp("Skip a check, as RULE:CHECK (repeatable).", valueName: "rule:check"))
    var skipped: [String] = []

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

    /// Loads the file and checks each rule here, printing `begin` before each check and a JSON result after.
    private func runInProcess() throws {
        let rules: [Rule]
        do {
            rules = try RuleRegistry().loadPlugin(at: file)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let skips = Set(skipped)
        for rule in rules {
            let skipping = Set(ConformanceCheck.allCases.filter { skips.contains("\(rule.name):\($0.rawValue)") })
            let results = Conformance.check(rule, skipping: skipping) { check in
                emit("begin\t\(rule.name)\t\(check.rawValue)")
            }
            for result in results {
                emit("result\t" + String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
            }
        }
    }

    /// Writes a line straight to standard output (unbuffered: it must be out before a crash).
    private func emit(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    /// Runs children until one finishes; each crash is recorded and its check skipped in the next child.
    private func runInChildren() throws -> [ConformanceResult] {
        var skips = skipped
        var crashes: [ConformanceResult] = []
        while true {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            process.arguments = ["check", file, "--in-process"] + skips.flatMap { ["--skip", $0] }
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            var results: [ConformanceResult] = []
            var started: (rule: String, check: String)?
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                let fields = line.split(separator: "\t", maxSplits: 2).map(String.init)
                if fields.first == "begin", fields.count == 3 { started = (fields[1], fields[2]) }
                if fields.first == "result", fields.count == 2,
                   let result = try? JSONDecoder().decode(ConformanceResult.self, from: Data(fields[1].utf8)) {
                    results.append(result)
                    started = nil
                }
            }
            if process.terminationReason == .exit {
                if process.terminationStatus == 2 { throw ExitCode(2) }
                return mergeCrashes(crashes, into: results)
            }
            let signal = process.terminationStatus
            guard let (rule, check) = started, let crashed = ConformanceCheck(rawValue: check) else {
                printError("error: the check process died with signal \(signal) before any check began")
                throw ExitCode.failure
            }
            crashes.append(ConformanceResult(
                rule: rule, check: crashed, passed: false,
                detail: "crashed the process with signal \(signal) (\(String(cString: strsignal(signal))))"))
            skips.append("\(rule):\(check)")
        }
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
            print("  \(result.passed ? "pass" : "FAIL")  \(result.check.summary): \(result.detail)")
        }
        let failed = results.filter { !$0.passed }.count
        print("regula check: \(results.count - failed) of \(results.count) checks passed"
              + (failed == 0 ? "" : "; \(failed) FAILED"))
    }
}
