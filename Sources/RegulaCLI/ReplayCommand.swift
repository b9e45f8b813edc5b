import ArgumentParser
import Foundation
import Regula

/// `regula replay SPEC.json`: runs an optimizer over recorded gradients and prints the final values and state.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run an optimizer over recorded gradients; print final params and state as JSON.",
        discussion: """
            The spec is the format of the torch reference fixtures: dtype, rules, defaults, groups, params, \
            steps (each with grads and set). A file holding {"spec": ...} is read too. Output: \
            {"params": {name: [numbers]}, "state": {name: {slot: [numbers]}}}. A refused spec prints the \
            reason on standard error, nothing on standard output, and exits with status 1.
            """)

    @Argument(help: "The spec file, or - for standard input.")
    var spec: String

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        let result = try failingClearly {
            let data = spec == "-" ? FileHandle.standardInput.readDataToEndOfFile()
                                   : try Data(contentsOf: URL(fileURLWithPath: spec))
            return try ReplaySpec(json: data).run(registry: try plugins.registry())
        }
        print(result.json)
    }
}
