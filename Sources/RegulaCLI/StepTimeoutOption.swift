import ArgumentParser
import Regula

/// `--step-timeout SECONDS`, shared by the commands that step an optimizer (train, replay, bench).
struct StepTimeoutOption: ParsableArguments {
    @Option(name: .customLong("step-timeout"), parsing: .unconditional,
            help: ArgumentHelp("End the run when one step takes longer than this: a kernel that never returns is "
                               + "named on standard error and regula exits with status 124. Off unless given.",
                               valueName: "seconds"))
    var seconds: Double?

    func validate() throws {
        if let seconds, !(seconds > 0 && seconds.isFinite) {
            throw ValidationError("--step-timeout is \(seconds); it must be a number of seconds greater than 0")
        }
    }

    /// Starts the watchdog if the option was given.
    func start() {
        if let seconds { StepGuard.startWatchdog(seconds: seconds) }
    }
}
