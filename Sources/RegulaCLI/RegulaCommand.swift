import ArgumentParser
import Regula

/// `regula`: inspect, check and run update-rule plugins.
@main
struct RegulaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regula",
        abstract: "An optimizer whose update rules are plugins loaded from shared objects.",
        subcommands: [ListCommand.self, InspectCommand.self, CheckCommand.self, ConfigCommand.self, InstallCommand.self, ReplayCommand.self, ProbeCommand.self,
                      BenchCommand.self, TrainCommand.self])

    /// Names the rule whose kernel ends the process during a step (StepGuard), then runs the command.
    static func main() {
        StepGuard.installHandlers()
        main(nil as [String]?)
    }
}
