import ArgumentParser
import Regula

/// `regula probe FILE…`: the probe process every command loads plugin files in first (hidden from help).
struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Load plugin files as a probe process for another regula (a line protocol on standard output).",
        shouldDisplay: false)

    @Argument(help: "Plugin files to load, in order.")
    var files: [String] = []

    func run() throws {
        PluginProbe.serve(files)
    }
}
