import Regula
import RegulaDistributed

/// Every chain, in both modes and both element types: the distributed run's parameters and state size on
/// each rank, and (on rank 0) the one-process run over the whole batch with a plain Optimizer.
enum Numerics {
    static let steps = 5

    static func run(_ communicator: Communicator, registry: RuleRegistry, into report: inout Report) throws {
        for chain in SyntheticModel.chains {
            for mode in DistributedOptimizer.Mode.allCases {
                try run(Float.self, chain, mode, communicator, registry, &report)
                try run(Double.self, chain, mode, communicator, registry, &report)
            }
        }
    }

    private static func run<T: ParameterElement>(_: T.Type, _ chain: SyntheticModel.Chain, _ mode: DistributedOptimizer.Mode,
                                                 _ communicator: Communicator, _ registry: RuleRegistry,
                                                 _ report: inout Report) throws {
        let key = "numerics/\(mode.rawValue)/\(chain.name)/\(T.dtype)"
        // Each rank starts from other values: building the optimizer copies rank 0's to every rank.
        let (parameters, groups) = SyntheticModel.parameters(T.self, chain: chain, shift: Double(communicator.rank))
        let optimizer = try DistributedOptimizer(groups, rules: chain.rules, defaults: chain.defaults, mode: mode,
                                                 bucketBytes: 4096, registry: registry)
        let samples = SyntheticModel.samples(rank: communicator.rank, of: communicator.size)
        for _ in 0..<steps {
            try SyntheticModel.setGradients(T.self, parameters, samples: samples)
            try optimizer.step()
        }
        for (name, values) in try SyntheticModel.values(T.self, parameters) { report.record("\(key)/\(name)", values: values) }
        report.record("\(key)/state-bytes", number: optimizer.stateByteCount)
        for parameter in parameters {
            if let count = optimizer.state(of: parameter)?.slots["count"]?.first { report.record("\(key)/count/\(parameter.name)", number: Int(count)) }
        }

        guard communicator.rank == 0 else { return }
        let (single, singleGroups) = SyntheticModel.parameters(T.self, chain: chain)
        let reference = try Optimizer(singleGroups, rules: chain.rules, defaults: chain.defaults, registry: registry)
        for _ in 0..<steps {
            try SyntheticModel.setGradients(T.self, single, samples: 0..<SyntheticModel.batch)
            try reference.step()
        }
        for (name, values) in try SyntheticModel.values(T.self, single) { report.record("\(key)/reference/\(name)", values: values) }
        report.record("\(key)/reference/state-bytes", number: reference.stateByteCount)
    }
}
