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

    /// The standard registry plus the given folders; every refused file is reported on standard error
    /// (`refused: …`), so a rule that then turns out unknown has its reason in sight.
    func registry() throws -> RuleRegistry {
        let registry = try failingClearly { try RuleRegistry.standard() }
        for directory in directories {
            _ = try failingClearly { try registry.loadPlugins(inDirectory: directory, onConflict: override ? .replaceExisting : .refuse) }
        }
        for failure in registry.loadFailures { printError("refused: \(failure)") }
        return registry
    }
}

/// Runs `body`; on an error prints `error: <description>` on standard error and exits with status 1.
func failingClearly<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("error: \(error)")
        throw ExitCode.failure
    }
}

/// Writes a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
