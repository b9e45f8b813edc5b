import ArgumentParser
import Regula

/// `regula config --cflags`: how to compile a plugin against this host's header.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print build settings for plugins, like python3-config.",
        discussion: "cc -shared -fPIC $(regula config --cflags) rule.c -o librule.so")

    @Flag(help: "The C compiler flags for a plugin: the folder of <regula/regula.h> and the flags the built-in rules are built with (-O3 -march=native -ffp-contract=off -fno-math-errno -fvisibility=hidden; Docs/WritingARule.md says why).")
    var cflags = false

    @Flag(name: .customLong("include-dir"), help: "The folder holding regula/regula.h.")
    var includeDirectory = false

    @Flag(name: .customLong("package-dir"), help: "The Regula package, for `.package(path:)` in a plugin's Package.swift.")
    var packageDirectory = false

    @Flag(name: .customLong("builtin-dir"), help: "The folder holding the built-in rules (REGULA_BUILTIN_DIR).")
    var builtinDirectory = false

    func validate() throws {
        guard cflags || includeDirectory || packageDirectory || builtinDirectory else {
            throw ValidationError("give --cflags, --include-dir, --package-dir or --builtin-dir")
        }
    }

    func run() {
        if cflags { print(PluginSDK.compilerFlags()) }
        if includeDirectory { print(PluginSDK.includeDirectory()) }
        if packageDirectory { print(PluginSDK.packageDirectory()) }
        if builtinDirectory { print(PluginSearchPath.builtinDirectory() ?? "") }
    }
}
