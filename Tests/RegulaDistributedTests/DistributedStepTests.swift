import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Distributed steps on 2 and 3 ranks against one process stepping the whole batch (with a plain Optimizer),
/// for a chain with reductions (`clip_global_norm > lamb`, and the `max_norm` plugin) and chains without
/// (`l1 > nadam`; `count_blocks > momentum > sgd`, whose scalar slot only the block at offset 0 advances), and
/// groups that run chains of their own (one with `clip_global_norm` first in both), in float32 and float64.
@Suite(.enabled(if: MPIJob.mpirun != nil, MPIJob.absent),
        .disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.openMPIKeepsItsAllocations)))
struct DistributedStepTests {
    static let chains = ["plain", "reductions", "max_norm", "counter", "groups", "groups-clip"]
    static let dtypes = ["float32", "float64"]
    static let parameters = ["w", "v", "b"]

    /// Every rank's report of `ranks` ranks.
    private func reports(_ ranks: Int) throws -> [ProbeReport] {
        let runs = try ProbeRuns.shared()
        return ranks == 3 ? runs.three : runs.two
    }

    @Test(arguments: [2, 3])
    func replicatedRanksAreBitIdenticalAndAgreeWithOneProcess(ranks: Int) throws {
        let reports = try reports(ranks)
        #expect(reports.map { $0.number("ranks") } == Array(repeating: ranks, count: ranks))
        for chain in Self.chains {
            for dtype in Self.dtypes {
                let key = "numerics/replicated/\(chain)/\(dtype)"
                try expectAgreement(reports, key: key, dtype: dtype)
                // Every rank keeps the whole state.
                let whole = try #require(reports[0].number("\(key)/reference/state-bytes"))
                #expect(reports.map { $0.number("\(key)/state-bytes") } == Array(repeating: whole, count: ranks), "\(key)")
            }
        }
    }

    @Test(arguments: [2, 3])
    func shardedRanksAgreeWithOneProcessAndEachHoldsItsShareOfTheState(ranks: Int) throws {
        let reports = try reports(ranks)
        for chain in Self.chains {
            for dtype in Self.dtypes {
                let key = "numerics/sharded/\(chain)/\(dtype)"
                try expectAgreement(reports, key: key, dtype: dtype)
                // Measured: each rank holds its share of the elementwise state, plus a step count and the scalar
                // slots per parameter (three parameters, shares differing by at most one element).
                let whole = try #require(reports[0].number("\(key)/reference/state-bytes"))
                let held = reports.compactMap { $0.number("\(key)/state-bytes") }
                #expect(held.count == ranks)
                for bytes in held { #expect(bytes <= whole / ranks + 3 * 48, "\(key): a rank holds \(bytes) of \(whole) bytes") }
                #expect(held.reduce(0, +) >= whole, "\(key): the shares hold \(held) bytes, less than the whole \(whole)")
                if chain == "counter" || chain == "groups" {
                    // Advanced on the rank that owns each parameter's first element, then taken by every rank (in
                    // "groups" only the second group's chain has the slot).
                    for name in chain == "counter" ? Self.parameters : ["b"] {
                        #expect(reports.map { $0.number("\(key)/count/\(name)") } == Array(repeating: 5, count: ranks), "\(key)/\(name)")
                    }
                }
            }
        }
    }

    /// Bit-identical parameters on every rank, within the tolerance of the one-process run.
    private func expectAgreement(_ reports: [ProbeReport], key: String, dtype: String) throws {
        for name in Self.parameters {
            let reference = reports[0].values("\(key)/reference/\(name)")
            try #require(!reference.isEmpty, "no reference for \(key)/\(name)")
            let first = reports[0].values("\(key)/\(name)")
            #expect(disagreement(first, reference) <= tolerance(dtype), "\(key)/\(name): \(disagreement(first, reference))")
            for (rank, report) in reports.enumerated().dropFirst() {
                let identical = report.values("\(key)/\(name)") == first
                #expect(identical, "\(key)/\(name): rank \(rank) differs from rank 0")
            }
        }
    }

    @Test func aShardedCheckpointResumesOnOtherRankCountsInBothModesAndInOneProcess() throws {
        let runs = try ProbeRuns.shared()
        for (chain, dtype) in [("plain", "float32"), ("reductions", "float64")] {
            let continued = runs.three[0].values("checkpoint/\(chain)/continued/w")
            for place in ["sharded", "replicated", "single"] {
                let resumed = runs.two[0].values("checkpoint/\(chain)/\(place)/w")
                #expect(disagreement(resumed, continued) <= tolerance(dtype),
                        "\(chain) resumed \(place) on two ranks: \(disagreement(resumed, continued))")
            }
            for mode in ["sharded", "replicated"] {
                #expect(runs.two.map { $0.number("checkpoint/\(chain)/\(mode)/scheduler-steps") } == [3, 3], "\(chain) \(mode)")
                let identical = runs.two[1].values("checkpoint/\(chain)/\(mode)/w") == runs.two[0].values("checkpoint/\(chain)/\(mode)/w")
                #expect(identical, "\(chain) \(mode): the ranks' parameters differ")
            }
            let whole = try #require(runs.two[0].number("checkpoint/\(chain)/replicated/state-bytes"))
            #expect(runs.two.allSatisfy { ($0.number("checkpoint/\(chain)/sharded/state-bytes") ?? .max) <= whole / 2 + 3 * 48 })
        }
        // The file is an ordinary checkpoint: this process, which never started MPI, reads it.
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("plain.safetensors")
        try runs.saved["plain"]!.write(to: file)
        let (w, v, b) = (Parameter("w", values: [Float](repeating: 0, count: 2500)), Parameter("v", values: [Float](repeating: 0, count: 7)),
                         Parameter("b", values: [Float(0)]))
        let optimizer = try Optimizer([ParamGroup([w, v]), ParamGroup([b])], rules: ["l1", "nadam"], defaults: ["lr": 0.01])
        let scheduler = try LearningRateScheduler(optimizer, schedule: .exponential(gamma: 0.9))
        try optimizer.loadCheckpoint(from: file, schedulers: [scheduler])
        #expect(optimizer.state(of: w)?.step == 3 && optimizer.state(of: w)?.slots["exp_avg"]?.count == 2500)
        #expect(scheduler.state.steps == 3)
        #expect(try w.values(as: Float.self).contains { $0 != 0 })
    }

    @Test func aRefusedCheckpointChangesNothingOnAnyRank() throws {
        let reports = try ProbeRuns.shared().two
        let expected = ["other-chain": "the checkpoint was made with rules clip_global_norm > scale_by_adam",
                        "truncated": "truncated or corrupt", "missing": "no such file; nothing was changed"]
        for (name, words) in expected {
            let key = "checkpoint-refused/\(name)"
            #expect(reports[0].text(key).contains(words), "\(reports[0].text(key))")
            #expect(reports[1].text(key) == reports[0].text(key), "rank 1 said: \(reports[1].text(key))")
            #expect(reports.map { $0.number("\(key)/unchanged") } == [1, 1], "\(key)")
        }
    }
}
