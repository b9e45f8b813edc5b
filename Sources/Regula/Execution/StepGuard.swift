import CRegulaShims

/// What the process says when a rule's kernel ends it or never returns during a step.
///
/// The host cannot stop a thread that runs a plugin's C code, nor survive a kernel that crashes or calls
/// `exit`; what it can do is name the rule on standard error and end with a status that no finished run has.
/// Each worker records which rule's kernel (or reduce, or prepare function) it is running with one relaxed
/// store before and after the call, always, at no measurable cost (Docs/ABI.md, "The trust model").
///
/// Nothing here is on until asked for: `regula` turns on ``installHandlers()`` for every command and the
/// watchdog with `--step-timeout`. Both are process-wide and cannot be turned off once on.
public enum StepGuard {
    /// The status the process ends with when a kernel calls `exit` (with any status) during a step.
    public static let exitDuringStepStatus = Int32(REGULA_GUARD_EXIT_STATUS)
    /// The status the process ends with when a step outlives the watchdog (as timeout(1) does).
    public static let timeoutStatus = Int32(REGULA_GUARD_TIMEOUT_STATUS)

    /// Installs, once per process, an `atexit` handler and handlers for SIGABRT, SIGSEGV, SIGBUS, SIGILL and
    /// SIGFPE that name the rules whose kernels were running.
    ///
    /// - An `exit` during a step prints `regula: the kernel of rule "X" called exit during a step; the run
    ///   did not finish` and ends the process with ``exitDuringStepStatus`` (an `exit` outside a step is left
    ///   alone).
    /// - A fatal signal during a step prints `regula: the kernel of rule "X" was running when the process
    ///   received SIGSEGV; the run did not finish`, then hands the signal on to the action installed before
    ///   this call (the default, or Swift's backtracer, which then prints its report): the process still ends.
    ///
    /// The handlers are async-signal-safe (they only write(2) names recorded before). Install them after any
    /// other handler for these signals that should run too. Calling this again does nothing.
    public static func installHandlers() { regula_guard_install() }

    /// Starts, once per process, a watchdog that ends the process when a step runs for `seconds` with no
    /// other step beginning: it prints `regula: the kernel of rule "X" did not return within the step
    /// timeout; the run did not finish` and ends with ``timeoutStatus``. It looks about four times a second
    /// (more often for timeouts under 2 s), so a step is ended between `seconds` and a quarter second later.
    ///
    /// Costs two atomic additions per step while it is on or off; its thread sleeps between looks.
    /// - Precondition: `seconds` is greater than 0 and the watchdog is not already running (misuse traps).
    public static func startWatchdog(seconds: Double) {
        let status = regula_guard_start_watchdog(seconds)
        precondition(status != -1, "the step timeout must be greater than 0 seconds, not \(seconds)")
        precondition(status != -2, "the step watchdog is already running")
        precondition(status == 0, "no thread could be started for the step watchdog")
    }
}
