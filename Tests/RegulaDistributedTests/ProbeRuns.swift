import Foundation
import RegulaTestSupport
import Testing

/// The probe's two jobs, launched once for all the tests that read them: three ranks run every chain in both
/// modes and both element types, and save checkpoints midway through a sharded run; then two ranks do the
/// same, load those checkpoints, provoke every failure, and run whole-tensor rules in both modes.
struct ProbeRuns: Sendable {
    let three: [ProbeReport]
    let two: [ProbeReport]
    /// The checkpoints the three ranks saved, by chain.
    let saved: [String: Data]

    static func shared() throws -> ProbeRuns { try launched.get() }

    private static let launched = Result<ProbeRuns, any Error> {
        let folder = try TemporaryDirectory("regula-mpi")
        let (three, two) = (folder.url.appendingPathComponent("run3"), folder.url.appendingPathComponent("run2"))
        for path in [three, two, folder.url.appendingPathComponent("saved")] {
            try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true)
        }
        for (ranks, run, scenarios) in [(3, three, ["numerics", "checkpoint-save"]), (2, two, ["numerics", "checkpoint-load", "errors", "whole-tensor"])] {
            let output = try MPIJob.run(MPIJob.probe, ranks: ranks, [run.path] + scenarios)
            guard output.status == 0 else {
                throw ProbeFailure(description: "the \(ranks)-rank probe exited with status \(output.status): \(output.standardError)")
            }
        }
        let saved = try Dictionary(uniqueKeysWithValues: ["plain", "reductions"].map {
            ($0, try Data(contentsOf: folder.url.appendingPathComponent("saved/\($0).safetensors")))
        })
        return ProbeRuns(three: try ProbeReport.reports(in: three, ranks: 3), two: try ProbeReport.reports(in: two, ranks: 2), saved: saved)
    }

    struct ProbeFailure: Error, CustomStringConvertible {
        let description: String
    }
}
