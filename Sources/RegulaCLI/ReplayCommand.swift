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
            steps (each with grads and set). A file holding {"spec": ...} is read too. params and a step's \
            grads may name a safetensors file instead (a path relative to the spec's folder, or to the \
            current directory for standard input), so recorded tensors need not pass through JSON. Output: \
            {"params": {name: [numbers]}, "state": {name: {slot: [numbers]}}, "state_shapes": {name: {slot: \
            [sizes]}}} (each slot's shape; [] for a scalar slot), or with --output a safetensors \
            file of param/<name> and state/<name>/<slot> tensors. A refused spec prints the reason on standard \
            error, nothing on standard output, and exits with status 1.
            """)

    @Argument(help: "The spec file, or - for standard input.")
    var spec: String

    @Option(help: ArgumentHelp("Write the final parameters and state to this safetensors file instead of printing JSON.",
                               valueName: "file.safetensors"))
    var output: String?

    @OptionGroup var plugins: PluginOptions

    @OptionGroup var stepTimeout: StepTimeoutOption

    func run() throws {
        stepTimeout.start()
        let result = try failingClearly {
            let replay = spec == "-"
                ? try ReplaySpec(json: try FileContents.readStandardInput(), relativeTo: nil, source: "standard input")
                : try ReplaySpec(contentsOf: URL(fileURLWithPath: spec))
            return try replay.run(registry: try plugins.registry())
        }
        if let output {
            try failingClearly { try result.writeSafeTensors(to: URL(fileURLWithPath: output)) }
            return
        }
        if result.nonFiniteCount > 0 {
            printError("warning: \(result.nonFiniteCount) final values are infinite or NaN; they are printed as null")
        }
        print(result.json)
    }
}
