import Foundation
import RegulaTestSupport
import Testing

/// Jobs of several processes on this machine, started with Open MPI's `mpirun` as a user starts them.
enum MPIJob {
    /// `mpirun` on the PATH, if Open MPI is installed.
    static let mpirun: URL? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        .map { URL(fileURLWithPath: String($0)).appendingPathComponent("mpirun") }
        .first { FileManager.default.isExecutableFile(atPath: $0.path) }

    /// Why the MPI tests are skipped where they are.
    static let absent: Comment = "mpirun is not installed (Debian: apt-get install openmpi-bin; .ci/run does)"

    /// The probe the scenarios run in, built beside the tests.
    static var probe: URL { TestPaths.binDirectory.appendingPathComponent("RegulaDistributedProbe") }

    /// Runs `executable` on `ranks` processes. Root needs Open MPI's consent; more ranks than cores need
    /// oversubscription, and on a machine shared with other work, ranks that wait should yield their core
    /// rather than spin. A job that runs past `timeout` seconds is stopped: a hang fails the test, it does
    /// not stall the suite.
    static func run(_ executable: URL, ranks: Int, _ arguments: [String], timeout: Double = 240) throws -> ProcessOutput {
        return try launch(["-np", "\(ranks)", executable.path] + arguments, timeout: timeout)
    }

    /// Runs one process of `executable` per command line, each rank with its own arguments (an MPMD launch:
    /// `mpirun -np 1 A … : -np 1 A …`).
    static func run(_ executable: URL, commandLines: [[String]], timeout: Double = 240) throws -> ProcessOutput {
        let joined = commandLines.map { ["-np", "1", executable.path] + $0 }
        return try launch(Array(joined.joined(separator: [":"])), timeout: timeout)
    }

    private static func launch(_ job: [String], timeout: Double) throws -> ProcessOutput {
        let launcher = try #require(mpirun, absent)
        let consent = geteuid() == 0 ? ["--allow-run-as-root"] : []
        let output = try RegulaTestSupport.run(
            launcher, consent + ["--oversubscribe", "--bind-to", "none", "--mca", "mpi_yield_when_idle", "1"] + job, timeout: timeout)
        #expect(!output.timedOut, "mpirun \(job.joined(separator: " ")) hung; stopped after \(timeout) s")
        return output
    }
}

/// What one rank of the probe saw (Tests/RegulaDistributedProbe/Report.swift writes it).
struct ProbeReport: Decodable {
    struct Entry: Decodable {
        var values: [Double]?
        var text: String?
        var number: Int?
    }

    let entries: [String: Entry]

    func values(_ key: String) -> [Double] { entries[key]?.values ?? [] }
    func text(_ key: String) -> String { entries[key]?.text ?? "(no \(key))" }
    func number(_ key: String) -> Int? { entries[key]?.number }

    /// Every rank's report from a probe run into `folder`.
    static func reports(in folder: URL, ranks: Int) throws -> [ProbeReport] {
        try (0..<ranks).map { rank in
            try JSONDecoder().decode(ProbeReport.self, from: Data(contentsOf: folder.appendingPathComponent("report.rank\(rank).json")))
        }
    }
}

/// The largest disagreement of `values` with `reference`, relative to max(1, |reference|) as the torch
/// agreement tests measure it, or infinity when the lengths differ.
func disagreement(_ values: [Double], _ reference: [Double]) -> Double {
    guard values.count == reference.count, !values.isEmpty else { return .infinity }
    return zip(values, reference).map { abs($0 - $1) / max(1, abs($1)) }.max()!
}

/// The agreement the issue asks of N ranks against one process.
func tolerance(_ dtype: String) -> Double { dtype == "float32" ? 1e-5 : 1e-11 }
