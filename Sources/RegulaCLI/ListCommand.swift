import ArgumentParser
import Regula

/// `regula list`: every rule and named chain found, with its hyperparameters and the file it came from.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List every rule and named chain found: built-ins, REGULA_PLUGIN_PATH and --plugin-dir folders.",
        discussion: """
            The rules and chains listed are exactly those every other command (replay, bench, train) offers with \
            the same environment and options. The example rules built beside regula, when not loaded, are named \
            on standard error (note: …) with the --plugin-dir that loads them. Each file is loaded only in a probe \
            process, which reports what it declares: a file that would crash or hang is reported (refused: …, on \
            standard error), and no plugin code runs in this process.
            """)

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        // Shown, never run: no plugin code is loaded into this process.
        let registry = try plugins.registry(describingOnly: true)
        for rule in registry.rules {
            RuleListing.lines(for: rule).forEach { print($0) }
        }
        for chain in registry.chains {
            RuleListing.lines(for: chain).forEach { print($0) }
        }
        // Examples whose names no loaded rule has (a rule of the user's own may share an example's name).
        let offered = Set(registry.rules.map(\.name))
        let unloaded = ExampleRules.find().filter { !offered.contains($0.rule.name) }
        if let folder = unloaded.first?.directory {
            let names = unloaded.map(\.rule.name).sorted().joined(separator: ", ")
            printError("note: not loaded: the example rules \(names), built beside regula in \(folder); add --plugin-dir "
                       + "\(folder) to load them (regula train loads prox_l1 for its proximal run)")
        }
    }
}
