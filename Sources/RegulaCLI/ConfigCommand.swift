import ArgumentParser
import Regula

/// `regula config --cflags`: how to compile a plugin against this host's header.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print build settings for plugins, like python3-config.",
        discussion: "cc -shared -fPIC -O2 $(regula config --cflags) rule.c -o librule.so")

    @Flag(help: "The C compiler flags that find <regula/regula.h>.")
    var cflags = false

    @Flag(name: .customLong("include-dir"), help: "The folder holding regula/regula.h.")
    var includeDirectory = false

    func validate() throws {
        guard cflags || includeDirectory else { throw ValidationError("give --cflags or --include-dir") }
    }

    func run() {
        if cflags { print(PluginSDK.compilerFlags()) }
        if includeDirectory { print(PluginSDK.includeDirectory()) }
    }
}
