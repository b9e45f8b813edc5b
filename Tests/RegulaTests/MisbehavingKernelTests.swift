import Foundation
import Regula
import RegulaTestSupport
import Testing

/// A kernel that never returns, calls `exit(0)` or aborts ends `regula train` with words naming its rule and a
/// status no finished run has, and leaves no checkpoint behind; a run whose every step is skipped fails.
@Suite struct MisbehavingKernelTests {
    /// Rule `spins` loops forever, `quits` calls exit(0), `aborts` calls abort(), `fails_late` descends for
    /// three steps and then leaves a NaN in the parameter at every step (which a skipping optimizer undoes).
    static let source = PluginSource.plugin(rules: [
        #"{ RULE("spins"), .kernel = spin }"#, #"{ RULE("quits"), .kernel = quit }"#,
        #"{ RULE("aborts"), .kernel = boom }"#, #"{ RULE("fails_late"), .kernel = late }"#,
    ], declarations: """
        #include <math.h>
        #include <stdlib.h>
        REGULA_KERNEL(spin, { (void)block; (void)sizeof(T); for (;;) __asm__ volatile(""); })
        REGULA_KERNEL(quit, { (void)block; (void)sizeof(T); exit(0); })
        REGULA_KERNEL(boom, { (void)block; (void)sizeof(T); abort(); })
        REGULA_KERNEL(late, {
            T *p = (T *)block->param;
            const T *d = (const T *)block->update;
            for (size_t i = 0; i < block->length; i++) p[i] = block->step >= 3 ? (T)NAN : p[i] - (T)0.01 * d[i];
        })
        """)

    let folder: TemporaryDirectory

    init() throws {
        folder = try TemporaryDirectory()
        try PluginCompiler.compile(Self.source, named: "misbehaving", in: folder)
    }

    /// `regula train --rules rule` with these plugins, checkpointing into the folder; a hang is cut off at
    /// `limit` seconds (and the test then fails on the status).
    func train(_ rule: String, _ extra: [String] = [], limit: Double = 120) throws -> ProcessOutput {
        try run(TestPaths.regula, ["train", "--plugin-dir", folder.path, "--rules", rule, "--epochs", "4",
                                   "--checkpoint", folder.url.appendingPathComponent("run.safetensors").path] + extra,
                timeout: limit)
    }

    /// The checkpoints in the folder (none should exist after a run that did not finish).
    func checkpoints() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".safetensors") }
    }

    @Test func stepTimeoutEndsAKernelThatNeverReturns() throws {
        let output = try train("spins", ["--step-timeout", "1"])
        #expect(!output.timedOut, "the watchdog did not end the run within two minutes")
        #expect(output.status == StepGuard.timeoutStatus, "\(output.standardError)")
        #expect(output.standardError.contains(#"the kernel of rule "spins" did not return within the step timeout; the run did not finish"#),
                "\(output.standardError)")
        #expect(try checkpoints().isEmpty)
    }

    @Test func stepTimeoutMustBePositive() throws {
        let output = try train("quits", ["--step-timeout", "0"])
        #expect(output.status == 64, "\(output.standardError)")
        #expect(output.standardError.contains("--step-timeout is 0.0; it must be a number of seconds greater than 0"), "\(output.standardError)")
    }

    @Test func exitDuringAStepIsNotSuccess() throws {
        let output = try train("quits")
        #expect(output.status == StepGuard.exitDuringStepStatus, "\(output.standardError)")
        #expect(output.standardError.contains(#"regula: the kernel of rule "quits" called exit during a step; the run did not finish"#),
                "\(output.standardError)")
        #expect(try checkpoints().isEmpty)
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.catchesDeliberateCrashes)))
    func abortNamesTheRuleBeforeTheBacktrace() throws {
        let output = try train("aborts")
        #expect(output.status == 128 + SIGABRT, "\(output.standardError)")
        let words = #"regula: the kernel of rule "aborts" was running when the process received SIGABRT; the run did not finish"#
        #expect(output.standardError.contains(words), "\(output.standardError)")
        // Swift's backtracer, when on, still reports the crash after the words.
        if let backtrace = output.standardError.range(of: "Program crashed") {
            #expect(output.standardError.range(of: words)!.lowerBound < backtrace.lowerBound)
        }
        #expect(try checkpoints().isEmpty)
    }

    @Test func skippedStepsAreCountedInTheTable() throws {
        let output = try train("fails_late", ["--epochs", "6"])
        #expect(output.status == 0, "\(output.standardError)")
        #expect(output.standardOutput.contains("skipped steps (undone)  3 of 6"), "\(output.standardOutput)")
    }

    @Test func resumedRunWhoseEveryStepIsSkippedFails() throws {
        #expect(try train("fails_late", ["--epochs", "3"]).status == 0)
        let resume = folder.url.appendingPathComponent("run.safetensors").path
        let output = try run(TestPaths.regula, ["train", "--plugin-dir", folder.path, "--rules", "fails_late", "--epochs", "5",
                                                "--resume", resume, "--checkpoint", folder.url.appendingPathComponent("next.safetensors").path])
        #expect(output.status == 1, "\(output.standardError)")
        #expect(output.standardError.contains("error: every one of the 2 steps of fails_late on logistic regression"), "\(output.standardError)")
        #expect(output.standardError.contains("was skipped and undone, so nothing trained"), "\(output.standardError)")
        #expect(try !checkpoints().contains { $0.hasPrefix("next") })
    }
}
