import ArgumentParser
import Dispatch
import Foundation
import Regula
import RegulaDistributed

extension BenchCommand {
    /// `regula bench --distributed MODE` under mpirun: times distributed steps on every rank; rank 0 prints.
    func runDistributed(_ mode: DistributedOptimizer.Mode, chain: [String], elementType: DType) throws {
        let communicator = try failingClearly { try Communicator.world() }
        // First, before any other message: the same command line on every rank (an MPMD launch can differ).
        try failingClearly {
            try communicator.agreeOnSettings([
                ("--distributed", "\(mode)"), ("--rules", rules), ("--elements", "\(elements)"), ("--tensors", "\(tensors)"),
                ("--dtype", dtype), ("--steps", "\(steps)"), ("--threads", threads.map(String.init) ?? "not given"),
                ("--bucket-bytes", "\(bucketBytes)"), ("--no-atomic", "\(notAtomic)"), options.setting,
            ] + plugins.settings)
        }
        let leader = communicator.rank == 0
        if Self.isDebugBuild, leader {
            printError("warning: this regula is a debug build: its host code is unoptimized, so these timings do not measure "
                       + "Regula. Run `swift build -c release` and mpirun the release regula instead.")
        }
        let measurement = try failingClearly { () throws -> DistributedMeasurement in
            do {
                let registry = try plugins.registry()
                let chosen = try communicator.agreeing { () throws -> [String: Double] in
                    let taken = Set(try registry.rules(for: chain).flatMap { $0.hyperparameters.map(\.name) })
                    return options.laid(over: Self.standardOptions.filter { taken.contains($0.key) })
                }
                let parameters = makeParameters(elementType)
                let optimizer = try DistributedOptimizer([ParamGroup(parameters, choices: options.choices)], rules: chain,
                                                         defaults: chosen, mode: mode,
                                                         communicator: communicator, bucketBytes: bucketBytes, registry: registry)
                if let threads { optimizer.local.threads = threads }
                var times: [StepTimes] = []
                for step in 0..<(steps + 2) {
                    try optimizer.step()
                    if step >= 2 { times.append(optimizer.lastStep) }
                }
                return DistributedMeasurement(mode: mode, ranks: communicator.size, ranksOnThisMachine: communicator.ranksOnThisMachine,
                                              rules: chain, options: chosen, elements: elements, tensors: tensors, dtype: dtype,
                                              steps: steps, threads: optimizer.local.threads, bucketBytes: bucketBytes,
                                              debugBuild: Self.isDebugBuild, times: times, communicator: communicator,
                                              stateBytes: optimizer.stateByteCount)
            } catch let error as DistributedError where error.rank != nil && !leader {
                throw ExitCode.failure   // one rank's failure, shared by every rank: rank 0 says it (as regula train does)
            }
        }
        guard leader else { return }
        try measurement.print(json: json)
    }
}

/// What `regula bench --distributed` measured: rank 0's medians, and every rank's median step and state.
struct DistributedMeasurement: Codable, BenchReport {
    let mode: String
    let ranks: Int
    let ranksOnThisMachine: Int
    let rules: [String]
    let options: [String: Double]
    let elements: Int
    let tensors: Int
    let dtype: String
    let steps: Int
    let threads: Int
    let bucketBytes: Int
    let debugBuild: Bool
    let medianStepMs: Double
    let minStepMs: Double
    let medianCommunicationMs: Double
    let medianComputeMs: Double
    let bytesSentPerStep: Int
    /// Each rank's median step and the state it holds, in rank order.
    let rankMedianStepMs: [Double]
    let rankStateBytes: [Int]

    enum CodingKeys: String, CodingKey {
        case mode, ranks, rules, options, elements, tensors, dtype, steps, threads
        case ranksOnThisMachine = "ranks_on_this_machine", bucketBytes = "bucket_bytes", debugBuild = "debug_build"
        case medianStepMs = "median_step_ms", minStepMs = "min_step_ms", medianCommunicationMs = "median_communication_ms"
        case medianComputeMs = "median_compute_ms", bytesSentPerStep = "bytes_sent_per_step"
        case rankMedianStepMs = "rank_median_step_ms", rankStateBytes = "rank_state_bytes"
    }

    /// Collective: every rank calls it, to share its median step and state size.
    init(mode: DistributedOptimizer.Mode, ranks: Int, ranksOnThisMachine: Int, rules: [String], options: [String: Double],
         elements: Int, tensors: Int, dtype: String, steps: Int, threads: Int, bucketBytes: Int, debugBuild: Bool,
         times: [StepTimes], communicator: Communicator, stateBytes: Int) {
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] * 1000 }
        self.mode = mode.rawValue
        self.ranks = ranks
        self.ranksOnThisMachine = ranksOnThisMachine
        self.rules = rules
        self.options = options
        self.elements = elements
        self.tensors = tensors
        self.dtype = dtype
        self.steps = steps
        self.threads = threads
        self.bucketBytes = bucketBytes
        self.debugBuild = debugBuild
        medianStepMs = median(times.map(\.seconds))
        minStepMs = (times.map(\.seconds).min() ?? 0) * 1000
        medianCommunicationMs = median(times.map(\.communicationSeconds))
        medianComputeMs = median(times.map(\.computeSeconds))
        bytesSentPerStep = times.map(\.bytesSent).sorted()[times.count / 2]
        // Each rank's values in its own places; the sums in rank order put them all on every rank.
        var mine = [Double](repeating: 0, count: 2 * ranks)
        mine[communicator.rank] = medianStepMs
        mine[ranks + communicator.rank] = Double(stateBytes)
        let all = communicator.sumInRankOrder(mine)
        rankMedianStepMs = Array(all[..<ranks])
        rankStateBytes = all[ranks...].map { Int($0) }
    }

    var table: String {
        let megabytes = { (bytes: Double) in String(format: "%.1f MB", bytes / 1e6) }
        let share = medianStepMs > 0 ? 100 * medianCommunicationMs / medianStepMs : 0
        let rows = BenchTable.setupRows(rules: rules, options: options, elements: elements, tensors: tensors, dtype: dtype) + [
            ("ranks", "\(ranks), \(mode) (\(ranksOnThisMachine) on this machine, \(threads) thread\(threads == 1 ? "" : "s") each)"),
            ("bucket", "\(bucketBytes) bytes"),
            ("steps", "\(steps) timed (after 2 warm-up)"),
            ("median step", String(format: "%.3f ms (fastest %.3f ms); slowest rank's median %.3f ms", medianStepMs, minStepMs,
                                   rankMedianStepMs.max() ?? 0)),
            ("communication", String(format: "%.3f ms (%.0f %%): inside MPI, waiting for other ranks included", medianCommunicationMs, share)),
            ("compute", String(format: "%.3f ms: packing, averaging and the chain", medianComputeMs)),
            ("sent per rank", "\(megabytes(Double(bytesSentPerStep))) per step"),
            ("state per rank", rankStateBytes.map { megabytes(Double($0)) }.joined(separator: ", ")
                + " (\(megabytes(Double(rankStateBytes.reduce(0, +)))) in all)"),
        ]
        return BenchTable.render(rows, debugBuild: debugBuild)
    }
}
