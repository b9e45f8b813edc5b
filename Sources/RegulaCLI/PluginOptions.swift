import ArgumentParser
import Foundation
import Regula

/// Options shared by commands that select rules: extra plugin folders.
struct PluginOptions: ParsableArguments {
    @Option(name: .customLong("plugin-dir"), help: ArgumentHelp(
        "Also load every plugin in this folder (repeatable), after the built-ins and REGULA_PLUGIN_PATH.",
        valueName: "dir"))
    var directories: [String] = []

    @Flag(name: .customLong("override"), help: ArgumentHelp(
        "Let rules from --plugin-dir folders replace rules of the same name loaded before them (by default a second rule of the same name is refused)."))
    var override = false

    /// The plugin folders and `--override`, as every rank of a job must be given them.
    var settings: [(name: String, value: String)] {
        [("--plugin-dir", directories.joined(separator: ":")), ("--override", "\(override)")]
    }

    /// The environment variable giving the seconds a probe process may take over one plugin file (default 10).
    static let probeTimeoutVariable = "REGULA_PROBE_TIMEOUT"

    /// The probe every command loads plugin files through: this executable as `regula probe`, so that a file
    /// that crashes, ends or hangs a process while loading is refused instead of ending the command.
    static func probe(environment: [String: String] = ProcessInfo.processInfo.environment) -> PluginProbe {
        let timeout = environment[probeTimeoutVariable].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } ?? 10
        return PluginProbe(executable: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path,
                           arguments: ["probe", "--"], timeout: timeout)
    }

    /// The standard registry plus the given folders, every file probed first; each refused file, missing
    /// folder and ignored search-path entry is reported on standard error (`refused: …`, `warning: …`), so a
    /// rule that then turns out unknown has its reason in sight.
    ///
    /// - Parameter describingOnly: Load no plugin into this process: take what each file declares from its
    ///   probe process (for commands that show rules without running them).
    func registry(describingOnly: Bool = false) throws -> RuleRegistry {
        let registry = try failingClearly {
            try RuleRegistry.standard(probe: Self.probe(), describingOnly: describingOnly)
        }
        for directory in directories {
            _ = try failingClearly { try registry.loadPlugins(inDirectory: directory, onConflict: override ? .replaceExisting : .refuse) }
        }
        report(registry.loadFailures)
        return registry
    }
}

/// Prints each load failure on standard error: `refused: …` for a file, `warning: …` for a folder or a
/// search-path entry that was skipped.
func report(_ failures: [RegistryError]) {
    for failure in failures { printError("\(failure.refusesAFile ? "refused" : "warning"): \(failure)") }
}

/// Runs `body`; on an error prints `error: <description>` on standard error and exits with status 1. An
/// unknown rule that is one of the example rules built beside regula gets a hint saying how to load it.
func failingClearly<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("error: \(error)")
        let refusal = (error as? OptimizerError) ?? (error as? ReplayError)?.optimizerError
        if case .unknownRule(let name, _, _, _)? = refusal,
           let example = ExampleRules.find().first(where: { $0.rule.name == name }) {
            printError("note: \(quoted(name)) is an example rule built beside regula, in \(example.file); "
                       + "load it with --plugin-dir \(example.directory)")
        }
        throw ExitCode.failure
    }
}

/// Writes a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

