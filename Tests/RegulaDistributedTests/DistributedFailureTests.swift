import Foundation
import RegulaTestSupport
import Testing

/// A rank whose step fails makes every rank fail or skip it alike, with nothing half changed; ranks that
/// disagree are refused in words, without a hang (the probe's job would time out).
@Suite(.enabled(if: MPIJob.mpirun != nil, MPIJob.absent),
        .disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.openMPIKeepsItsAllocations)))
struct DistributedFailureTests {
    static let modes = ["replicated", "sharded"]

    /// Both ranks' outcome of the case, after checking they are the same, nothing changed, and the next step
    /// was taken alike everywhere.
    private func outcome(_ name: String, mode: String) throws -> (text: String, rank: Int?, skipped: Int?) {
        let reports = try ProbeRuns.shared().two
        let key = "errors/\(name)/\(mode)"
        #expect(reports[1].text("\(key)/outcome") == reports[0].text("\(key)/outcome"), "\(key): the ranks saw different outcomes")
        #expect(reports.map { $0.number("\(key)/unchanged") } == [1, 1], "\(key): a parameter or state changed")
        #expect(reports.map { $0.text("\(key)/next") } == ["applied", "applied"], "\(key): the step after it")
        let identical = reports[1].values("\(key)/w") == reports[0].values("\(key)/w") && !reports[0].values("\(key)/w").isEmpty
        #expect(identical, "\(key): the ranks' parameters differ after the next step")
        return (reports[0].text("\(key)/outcome"), reports[0].number("\(key)/rank"), reports[0].number("\(key)/skipped-steps"))
    }

    @Test(arguments: modes)
    func aRuleFailingOnOneRankFailsTheStepOnEveryRank(mode: String) throws {
        let failed = try outcome("kernel-fails", mode: mode)
        #expect(failed.text == "error: the step failed on rank 1, so no rank took it: rule fail_on_rank failed on parameter \"w\" "
                + "(status 1): armed to fail on rank 1")
        #expect(failed.rank == 1)
        let refused = try outcome("check-refuses", mode: mode)
        #expect(refused.text == "error: the step failed on rank 1, so no rank took it: rule picky refuses the options of group 0: "
                + "picky = 1 is refused on rank 1")
        #expect(refused.rank == 1)
    }

    @Test(arguments: modes)
    func aNonFiniteValueOnOneRankSkipsTheStepOnEveryRank(mode: String) throws {
        let skipped = try outcome("non-finite", mode: mode)
        // Averaging spreads rank 1's NaN to every rank's gradient when replicated, only to its owner's share
        // (rank 1's) when sharded.
        let rank = mode == "sharded" ? 1 : 0
        #expect(skipped.text == "skipped: rank \(rank): the gradient of parameter \"w\" has a NaN or an infinity")
        #expect(skipped.skipped == 1)
    }

    @Test(arguments: modes)
    func optionsRefusedOrDifferentAndMissingGradientsAreRefusedEverywhere(mode: String) throws {
        #expect(try outcome("refused-everywhere", mode: mode).text
                == "error: the step was refused on every rank: hyperparameter \"lr\" = -1 in group 0 is not allowed by rule adamw; allowed: ≥ 0")
        #expect(try outcome("options-differ", mode: mode).text
                == "error: the ranks' options differ: \"lr\" in group 0 is 0.01 on rank 0 but 0.2 on rank 1; change options on every rank alike")
        #expect(try outcome("gradient-missing", mode: mode).text
                == "error: parameter \"v\" has a gradient on rank 0 but none on rank 1; every rank must have gradients for the same parameters")
    }

    @Test func ranksThatBuildDifferentOptimizersAreRefusedInWords() throws {
        let reports = try ProbeRuns.shared().two
        let expected = [
            "rules": "the ranks disagree on the rules: rank 0 has l1 (version 1) > adamw (version 1), rank 1 has l2 (version 1) > adamw",
            "sizes": "the ranks disagree on the parameters of group 0: rank 0 has \"w\" (2500 float32), \"v\" (7 float32), rank 1 has \"w\" (2501 float32)",
            "groups": "the ranks disagree on the number of groups: rank 0 has 2, rank 1 has 1",
            "group-rules": "the ranks disagree on the rules of group 1: rank 0 has adamw, rank 1 has sgd",
            "mode": "the ranks disagree on the mode: rank 0 has sharded, rank 1 has replicated",
            "unknown-rule": "rank 1: could not build its optimizer: unknown rule \"l3\" (did you mean \"l1\"?)",
        ]
        for (name, words) in expected {
            #expect(reports[0].text("mismatch/\(name)").hasPrefix(words), "\(name): \(reports[0].text("mismatch/\(name)"))")
            #expect(reports[1].text("mismatch/\(name)") == reports[0].text("mismatch/\(name)"), "\(name): the ranks said different things")
            #expect(reports.map { $0.number("mismatch/\(name)/rank") } == [1, 1])
        }
    }
}
