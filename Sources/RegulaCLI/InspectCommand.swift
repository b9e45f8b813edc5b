import ArgumentParser
import Regula

/// `regula inspect FILE…`: what each shared object declares, or why it cannot be loaded.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what plugin files declare, or why they cannot be loaded (exit status 1).",
        discussion: """
            Each file is loaded only in a probe process, which reports what it declares: a file that crashes, \
            ends or hangs that process while it loads is reported as refused, and this command carries on; no \
            plugin code runs in this process. Exit status 1 if any file was refused.
            """)

    @Argument(help: "Shared objects built against regula.h.")
    var files: [String]

    func run() throws {
        let probe = PluginOptions.probe()
        probe.probe(files)
        var refused = false
        for file in files {
            do {
                // A registry of its own for each file: what the file declares, whatever the others hold, as its
                // probe process reports it; no plugin code is loaded into this process.
                let registry = RuleRegistry(describingWith: probe)
                let rules = try registry.loadPlugin(at: file), chains = registry.chains
                let counted = chains.isEmpty ? "" : " and \(chains.count) named chain\(chains.count == 1 ? "" : "s")"
                print("\(file): a Regula plugin with \(rules.count) rule\(rules.count == 1 ? "" : "s")\(counted)")
                for rule in rules { RuleListing.lines(for: rule).forEach { print($0) } }
                for chain in chains { RuleListing.lines(for: chain).forEach { print($0) } }
            } catch {
                printError("error: \(error)")
                refused = true
            }
        }
        if refused { throw ExitCode.failure }
    }
}
