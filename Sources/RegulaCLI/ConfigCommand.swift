import ArgumentParser
import Foundation
import Regula

/// `regula config --cflags`: how to compile a plugin against this host's header, and where things are.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print build settings for plugins and where Regula finds things, like python3-config.",
        discussion: "cc -shared -fPIC $(regula config --cflags) rule.c -o librule.so")

    @Flag(help: "The C compiler flags for a plugin: the folder of <regula/regula.h> and the flags the built-in rules are built with (-O3 -march=native -ffp-contract=off -fno-math-errno -fvisibility=hidden; Docs/WritingARule.md says why).")
    var cflags = false

    @Flag(name: .customLong("include-dir"), help: "The folder holding regula/regula.h.")
    var includeDirectory = false

    @Flag(name: .customLong("package-dir"), help: "The Regula package, for `.package(path:)` in a plugin's Package.swift.")
    var packageDirectory = false

    @Flag(name: .customLong("builtin-dir"), help: "The folder the built-in rules are loaded from.")
    var builtinDirectory = false

    @Flag(name: .customLong("builtin-search-path"), help: "Every folder searched for the built-in rules, in order.")
    var builtinSearchPath = false

    @Flag(name: .customLong("abi-version"), help: "The version of the plugin contract this host speaks (MAJOR.MINOR).")
    var abiVersion = false

    func validate() throws {
        guard cflags || includeDirectory || packageDirectory || builtinDirectory || builtinSearchPath || abiVersion else {
            throw ValidationError("give --cflags, --include-dir, --package-dir, --builtin-dir, --builtin-search-path or --abi-version")
        }
    }

    func run() throws {
        try failingClearly {
            if cflags { print(PluginSDK.compilerFlags()) }
            if includeDirectory { print(PluginSDK.includeDirectory()) }
            if packageDirectory {
                let folder = PluginSDK.packageDirectory()
                guard FileManager.default.fileExists(atPath: folder + "/Package.swift") else {
                    throw CommandError("the Regula package this regula was built from is no longer at \(folder); "
                                           + "give your package's dependency the path of a Regula checkout")
                }
                print(folder)
            }
            if builtinDirectory {
                guard let folder = PluginSearchPath.builtinDirectory() else { throw RegistryError.builtinsNotFound() }
                print(folder)
            }
            if builtinSearchPath { print(PluginSearchPath.builtinSearchFolders().joined(separator: "\n")) }
            if abiVersion { print(PluginSDK.abiVersion) }
        }
    }
}
