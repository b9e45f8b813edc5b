import ArgumentParser
import Regula

/// `regula list`: every rule and named chain found, with its hyperparameters and the file it came from.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List every rule and named chain found: built-ins, REGULA_PLUGIN_PATH and --plugin-dir folders.")

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        let registry = try plugins.registry()
        for rule in registry.rules {
            RuleListing.lines(for: rule).forEach { print($0) }
        }
        for chain in registry.chains {
            RuleListing.lines(for: chain).forEach { print($0) }
        }
    }
}
