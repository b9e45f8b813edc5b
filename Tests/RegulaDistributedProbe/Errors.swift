import Regula
import RegulaDistributed

/// A rank that fails a step, and ranks that disagree, in both modes: what each rank saw, whether anything
/// changed, and whether the next step (with the cause removed) goes through.
enum Errors {
    typealias Case = (name: String, rules: [String], break: (DistributedOptimizer, [Parameter]) -> Void,
                      repair: (DistributedOptimizer) -> Void)

    static func run(_ communicator: Communicator, registry: RuleRegistry, into report: inout Report) throws {
        let rank = communicator.rank
        let cases: [Case] = [
            ("kernel-fails", ["fail_on_rank", "lamb"], { _, _ in ProbeRules.failingRank.store(1, ordering: .relaxed) },
             { _ in ProbeRules.failingRank.store(-1, ordering: .relaxed) }),
            ("check-refuses", ["picky", "lamb"], { optimizer, _ in optimizer.local.groups[0].options["picky"] = 1 },
             { optimizer in optimizer.local.groups[0].options["picky"] = 0 }),
            ("non-finite", ["adamw"], { optimizer, parameters in
                optimizer.nonFiniteSteps = .skip
                if rank == 1 {
                    var gradient = try! parameters[0].gradient(as: Float.self)!
                    gradient[gradient.count - 1] = .nan
                    try! parameters[0].setGradient(gradient)
                }
            }, { _ in }),
            ("gradient-missing", ["adamw"], { _, parameters in if rank == 1 { parameters[1].clearGradient() } }, { _ in }),
            ("options-differ", ["adamw"], { optimizer, _ in if rank == 1 { optimizer.local.groups[0].learningRate = 0.2 } },
             { optimizer in optimizer.local.groups[0].learningRate = 0.01 }),
            ("refused-everywhere", ["adamw"], { optimizer, _ in optimizer.local.groups[0].learningRate = -1 },
             { optimizer in optimizer.local.groups[0].learningRate = 0.01 }),
        ]
        let samples = SyntheticModel.samples(rank: rank, of: communicator.size)
        let chain = SyntheticModel.chains[0]
        for mode in DistributedOptimizer.Mode.allCases {
            for test in cases {
                let key = "errors/\(test.name)/\(mode.rawValue)"
                let (parameters, groups) = SyntheticModel.parameters(Float.self, chain: chain)
                let optimizer = try DistributedOptimizer(groups, rules: test.rules, defaults: ["lr": 0.01], mode: mode,
                                                         bucketBytes: 4096, registry: registry)
                try SyntheticModel.setGradients(Float.self, parameters, samples: samples)
                try optimizer.step()
                try SyntheticModel.setGradients(Float.self, parameters, samples: samples)
                let before = try snapshot(optimizer, parameters)
                test.break(optimizer, parameters)
                do {
                    switch try optimizer.step() {
                    case .applied: report.record("\(key)/outcome", text: "applied")
                    case .skipped(let reason): report.record("\(key)/outcome", text: "skipped: \(reason)")
                    }
                } catch {
                    report.record("\(key)/outcome", text: "error: \(error)")
                    report.record("\(key)/rank", number: error.rank ?? -1)
                }
                report.record("\(key)/unchanged", number: try snapshot(optimizer, parameters) == before ? 1 : 0)
                report.record("\(key)/skipped-steps", number: optimizer.skippedSteps)
                test.repair(optimizer)
                try SyntheticModel.setGradients(Float.self, parameters, samples: samples)
                report.record("\(key)/next", text: "\(try optimizer.step())")
                report.record("\(key)/w", values: try parameters[0].values(as: Float.self).map(Double.init))
            }
        }
        try mismatches(communicator, registry: registry, into: &report)
    }

    /// The bits of every parameter and of this rank's state.
    private static func snapshot(_ optimizer: DistributedOptimizer, _ parameters: [Parameter]) throws -> [[UInt64]] {
        try parameters.flatMap { parameter -> [[UInt64]] in
            let state = optimizer.state(of: parameter)
            return [try parameter.values(as: Float.self).map { UInt64($0.bitPattern) }, [UInt64(state?.step ?? -1)]]
                + (state?.slots.keys.sorted() ?? []).map { state!.slots[$0]!.map(\.bitPattern) }
        }
    }

    /// Ranks that build different optimizers: every rank must refuse, in the same words.
    private static func mismatches(_ communicator: Communicator, registry: RuleRegistry, into report: inout Report) throws {
        let other = communicator.rank == 1
        let chain = SyntheticModel.chains[0]
        let builds: [(String, () throws -> DistributedOptimizer)] = [
            ("rules", {
                let (_, groups) = SyntheticModel.parameters(Float.self, chain: chain)
                return try DistributedOptimizer(groups, rules: other ? ["l2", "adamw"] : ["l1", "adamw"], mode: .sharded, registry: registry)
            }),
            ("sizes", {
                var (parameters, _) = SyntheticModel.parameters(Float.self, chain: chain)
                if other { parameters[0] = Parameter("w", values: [Float](repeating: 0, count: 2501)) }
                return try DistributedOptimizer([ParamGroup([parameters[0], parameters[1]]), ParamGroup([parameters[2]])],
                                                rules: ["adamw"], mode: .sharded, registry: registry)
            }),
            ("groups", {
                let (parameters, groups) = SyntheticModel.parameters(Float.self, chain: chain)
                return try DistributedOptimizer(other ? [ParamGroup(parameters)] : groups, rules: ["adamw"], mode: .sharded, registry: registry)
            }),
            ("group-rules", {
                let (parameters, _) = SyntheticModel.parameters(Float.self, chain: chain)
                return try DistributedOptimizer([ParamGroup([parameters[0], parameters[1]]),
                                                 ParamGroup([parameters[2]], rules: other ? ["sgd"] : nil)],
                                                rules: ["adamw"], defaults: ["lr": 0.01], mode: .sharded, registry: registry)
            }),
            ("unknown-rule", {
                let (_, groups) = SyntheticModel.parameters(Float.self, chain: chain)
                return try DistributedOptimizer(groups, rules: other ? ["l3", "adamw"] : ["l1", "adamw"], mode: .sharded, registry: registry)
            }),
            ("mode", {
                let (_, groups) = SyntheticModel.parameters(Float.self, chain: chain)
                return try DistributedOptimizer(groups, rules: ["adamw"], mode: other ? .replicated : .sharded, registry: registry)
            }),
        ]
        for (name, build) in builds {
            do {
                _ = try build()
                report.record("mismatch/\(name)", text: "built")
            } catch let error as DistributedError {
                report.record("mismatch/\(name)", text: error.description)
                report.record("mismatch/\(name)/rank", number: error.rank ?? -1)
            }
        }
    }
}
