import Foundation
import RegulaTestSupport
import Testing

/// Ranks of one job started with different command lines (an MPMD launch, `mpirun -np 1 regula … : -np 1
/// regula …`): every difference that decides what the ranks exchange is refused at start, in words, on every
/// rank, within seconds, instead of a hang or an MPI error.
@Suite(.enabled(if: MPIJob.mpirun != nil, MPIJob.absent),
        .disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.openMPIKeepsItsAllocations)))
struct RankDisagreementTests {
    /// One way the ranks' command lines differ, and the words every rank must print.
    struct Difference: CustomTestStringConvertible, Sendable {
        let name: String
        let first: [String]
        let second: [String]
        let words: String
        /// How many ranks say it: both for a disagreement found together, one for a rank that never joined.
        let sayers: Int
        var testDescription: String { name }
    }

    static let base = ["train", "--distributed", "replicated", "--epochs", "2"]

    static let differences = [
        Difference(name: "epochs", first: base, second: ["train", "--distributed", "replicated", "--epochs", "3"],
                   words: "--epochs is 2 on rank 0, 3 on rank 1", sayers: 2),
        Difference(name: "checkpoint on one rank", first: base + ["--checkpoint", "/nonexistent/never-written.safetensors"],
                   second: base, words: "--checkpoint is given on rank 0, not given on rank 1", sayers: 2),
        Difference(name: "resume on one rank", first: base, second: base + ["--resume", "/nonexistent/never-read.safetensors"],
                   words: "--resume is not given on rank 0, given on rank 1", sayers: 2),
        Difference(name: "modes", first: base, second: ["train", "--distributed", "sharded", "--epochs", "2"],
                   words: "--distributed is replicated on rank 0, sharded on rank 1", sayers: 2),
        Difference(name: "bench sizes", first: ["bench", "--distributed", "replicated", "--elements", "1000", "--steps", "1"],
                   second: ["bench", "--distributed", "replicated", "--elements", "2000", "--steps", "1"],
                   words: "--elements is 1000 on rank 0, 2000 on rank 1", sayers: 2),
        Difference(name: "one rank without --distributed", first: base, second: ["train", "--epochs", "2"],
                   words: "this process is rank 1 of an mpirun job of 2 processes, but was not given --distributed", sayers: 1),
    ]

    @Test(arguments: differences)
    func ranksStartedDifferentlyAreRefusedInWords(_ difference: Difference) throws {
        let started = Date()
        let output = try MPIJob.run(TestPaths.regula, commandLines: [difference.first, difference.second], timeout: 120)
        #expect(output.status != 0)
        let said = output.standardError.components(separatedBy: difference.words).count - 1
            + output.standardOutput.components(separatedBy: difference.words).count - 1
        #expect(said == difference.sayers, "\(output.standardError.suffix(2000))")
        #expect(!output.standardError.contains("failed to allocate"))
        #expect(Date().timeIntervalSince(started) < 60, "refused at start, not after a wait")
    }

    /// Each rank reads --data itself, so files at the same path on two machines can differ: their shapes are
    /// agreed once read, and every rank says so and stops.
    @Test func dataOfDifferentShapesOnTheRanksIsRefused() throws {
        let folder = try TemporaryDirectory()
        let four = folder.url.appendingPathComponent("four.csv"), five = folder.url.appendingPathComponent("five.csv")
        try "a,b,label\n1,2,0\n2,1,1\n3,3,0\n0,1,1\n".write(to: four, atomically: true, encoding: .utf8)
        try "a,b,label\n1,2,0\n2,1,1\n3,3,0\n0,1,1\n5,5,1\n".write(to: five, atomically: true, encoding: .utf8)
        let output = try MPIJob.run(TestPaths.regula, commandLines: [Self.base + ["--data", four.path], Self.base + ["--data", five.path]],
                                    timeout: 120)
        #expect(output.status != 0)
        let words = "the rows × columns of problem \"logistic\" is 4 × 2 on rank 0, 5 × 2 on rank 1"
        #expect(output.standardError.components(separatedBy: words).count - 1 == 2, "\(output.standardError.suffix(2000))")
    }
}
