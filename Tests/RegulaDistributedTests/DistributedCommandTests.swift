import Foundation
import RegulaTestSupport
import Testing

/// `regula train --distributed` and `regula bench --distributed` under mpirun, as a user launches them.
@Suite(.enabled(if: MPIJob.mpirun != nil, MPIJob.absent),
        .disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.openMPIKeepsItsAllocations)))
struct DistributedCommandTests {
    static let epochs = "120"

    /// Standard output up to the list of files written (whose paths differ between runs).
    private func tables(_ output: String) -> String {
        output.components(separatedBy: "\ncheckpoints: ").first ?? output
    }

    /// The CSV's rows as (problem, run, epoch) → (loss, zero weights).
    private func curves(_ file: URL) throws -> [String: (loss: Double, zeros: String)] {
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n").dropFirst()
        // The problem's title is quoted and may hold commas: the other four fields are read from the end.
        return Dictionary(uniqueKeysWithValues: lines.map { line in
            let fields = line.split(separator: ",").map(String.init), count = fields.count
            return (fields[..<(count - 2)].joined(separator: ","), (Double(fields[count - 2]) ?? .nan, fields[count - 1]))
        })
    }

    @Test(arguments: [("sharded", 2), ("replicated", 3)])
    func distributedTrainingPrintsWhatOneProcessPrintsAndWritesItsFilesOnce(mode: String, ranks: Int) throws {
        let folder = try TemporaryDirectory()
        func files(_ name: String) -> [String] {
            ["--csv", folder.url.appendingPathComponent("\(name).csv").path,
             "--checkpoint", folder.url.appendingPathComponent("\(name).safetensors").path]
        }
        let single = try regula(["train", "--epochs", Self.epochs] + files("single"))
        #expect(single.status == 0, "\(single.standardError)")
        let job = try MPIJob.run(TestPaths.regula, ranks: ranks, ["train", "--epochs", Self.epochs, "--distributed", mode] + files(mode))
        #expect(job.status == 0, "\(job.standardError)")
        #expect(tables(job.standardOutput) == tables(single.standardOutput))
        #expect(tables(job.standardOutput).contains("exactly-zero weights"))
        // Written once, by rank 0: one line per file, the same curves within rounding.
        #expect(job.standardOutput.components(separatedBy: "curves: ").count == 2)
        let (ours, theirs) = (try curves(folder.url.appendingPathComponent("\(mode).csv")),
                              try curves(folder.url.appendingPathComponent("single.csv")))
        // Three problems of two runs each (the perceptron's: adamw, and muon on its weight matrices beside adamw).
        #expect(ours.count == theirs.count && ours.count == 3 * 2 * 120)
        for (key, point) in theirs {
            #expect(ours[key].map { abs($0.loss - point.loss) <= 1e-12 * max(1, abs(point.loss)) && $0.zeros == point.zeros } == true, "\(key)")
        }
        // The distributed checkpoints resume in one process, and on the ranks, to the same table.
        let resume = ["train", "--epochs", "130", "--resume", folder.url.appendingPathComponent("\(mode).safetensors").path]
        let resumed = try regula(resume)
        #expect(resumed.status == 0, "\(resumed.standardError)")
        #expect(resumed.standardOutput.contains("resumed at epoch      120"), "\(resumed.standardOutput)")
        let resumedJob = try MPIJob.run(TestPaths.regula, ranks: ranks, resume + ["--distributed", mode])
        #expect(resumedJob.status == 0, "\(resumedJob.standardError)")
        #expect(tables(resumedJob.standardOutput) == tables(resumed.standardOutput))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".partial") }
        #expect(leftovers.isEmpty)
    }

    @Test func aRefusalOnRankZeroStopsEveryRankWithOneMessage() throws {
        let job = try MPIJob.run(TestPaths.regula, ranks: 2,
                                 ["train", "--epochs", "5", "--distributed", "sharded", "--csv", "/nonexistent/curves.csv"])
        #expect(job.status != 0)
        #expect(job.standardError.components(separatedBy: "error: rank 0: --csv /nonexistent/curves.csv: cannot write it: there is no folder /nonexistent")
                    .count == 2,
                "\(job.standardError)")
        #expect(!job.standardOutput.contains("final loss"))
    }

    @Test(arguments: ["replicated", "sharded"])
    func distributedBenchSplitsEachStepIntoCommunicationAndCompute(mode: String) throws {
        let elements = 20_000, ranks = 2
        let job = try MPIJob.run(TestPaths.regula, ranks: ranks, ["bench", "--distributed", mode, "--rules", "adamw",
                                                                 "--elements", "\(elements)", "--steps", "3", "--json"])
        #expect(job.status == 0, "\(job.standardError)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(job.standardOutput.utf8)) as? [String: Any])
        let step = json["median_step_ms"] as? Double ?? 0, communication = json["median_communication_ms"] as? Double ?? -1
        #expect(step > 0 && communication >= 0 && (json["median_compute_ms"] as? Double ?? 0) > 0)
        // On paper each rank sends (N−1)/N of the gradient bytes to average them, and as much again to gather
        // the gradients (replicated) or the parameters (sharded); a few bytes more say which have gradients.
        let sent = try #require(json["bytes_sent_per_step"] as? Int)
        let tensor = elements * 4 * (ranks - 1) / ranks
        #expect(sent >= 2 * tensor && sent < 2 * tensor + 64, "sent \(sent) bytes per step")
        // adamw keeps two slots: all of them on each rank (replicated), half on each (sharded).
        let state = try #require(json["rank_state_bytes"] as? [Int])
        let whole = 2 * elements * 4
        #expect(state.count == ranks)
        for bytes in state { #expect(mode == "replicated" ? bytes >= whole : bytes < whole / ranks + 64, "\(mode): \(state)") }
    }
}
