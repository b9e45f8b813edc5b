import ArgumentParser
import Regula

/// `regula inspect FILE`: what one shared object declares, or why it cannot be loaded.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what one plugin file declares, or why it cannot be loaded (exit status 1).")

    @Argument(help: "A shared object built against regula.h.")
    var file: String

    func run() throws {
        let rules = try failingClearly { try RuleRegistry().loadPlugin(at: file) }
        print("\(file): a Regula plugin with \(rules.count) rule\(rules.count == 1 ? "" : "s")")
        for rule in rules { RuleListing.lines(for: rule).forEach { print($0) } }
    }
}
