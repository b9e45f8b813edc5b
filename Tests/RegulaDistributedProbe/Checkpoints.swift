import Foundation
import Regula
import RegulaDistributed

/// A sharded run saves a checkpoint midway and goes on; runs with another number of ranks, in either mode,
/// and a single process load it and go on alike.
enum Checkpoints {
    static let stepsBefore = 3, stepsAfter = 3
    /// The chains saved, with their element types.
    static let saved: [(chain: SyntheticModel.Chain, dtype: DType)] = [(SyntheticModel.chains[0], .float32),
                                                                        (SyntheticModel.chains[1], .float64)]

    static func file(_ folder: URL, _ chain: SyntheticModel.Chain) -> URL {
        folder.deletingLastPathComponent().appendingPathComponent("saved/\(chain.name).safetensors")
    }

    static func save(_ communicator: Communicator, registry: RuleRegistry, folder: URL, into report: inout Report) throws {
        for (chain, dtype) in saved {
            if dtype == .float32 { try save(Float.self, chain, communicator, registry, folder, &report) }
            else { try save(Double.self, chain, communicator, registry, folder, &report) }
        }
    }

    static func load(_ communicator: Communicator, registry: RuleRegistry, folder: URL, into report: inout Report) throws {
        for (chain, dtype) in saved {
            if dtype == .float32 { try load(Float.self, chain, communicator, registry, folder, &report) }
            else { try load(Double.self, chain, communicator, registry, folder, &report) }
        }
        try refusals(communicator, registry: registry, folder: folder, into: &report)
    }

    private static func train<T: ParameterElement>(_: T.Type, _ step: () throws -> Void, _ scheduler: LearningRateScheduler,
                                                   _ parameters: [Parameter], samples: Range<Int>, steps: Int) throws {
        for _ in 0..<steps {
            try SyntheticModel.setGradients(T.self, parameters, samples: samples)
            try step()
            try scheduler.step()
        }
    }

    private static func save<T: ParameterElement>(_: T.Type, _ chain: SyntheticModel.Chain, _ communicator: Communicator,
                                                  _ registry: RuleRegistry, _ folder: URL, _ report: inout Report) throws {
        let (parameters, groups) = SyntheticModel.parameters(T.self, chain: chain)
        let optimizer = try DistributedOptimizer(groups, rules: chain.rules, defaults: chain.defaults, mode: .sharded,
                                                 bucketBytes: 4096, registry: registry)
        let scheduler = try LearningRateScheduler(optimizer.local, schedule: .exponential(gamma: 0.9))
        let samples = SyntheticModel.samples(rank: communicator.rank, of: communicator.size)
        try train(T.self, { try optimizer.step() }, scheduler, parameters, samples: samples, steps: stepsBefore)
        try optimizer.saveCheckpoint(to: file(folder, chain), schedulers: [scheduler])
        try train(T.self, { try optimizer.step() }, scheduler, parameters, samples: samples, steps: stepsAfter)
        let key = "checkpoint/\(chain.name)/continued"
        for (name, values) in try SyntheticModel.values(T.self, parameters) { report.record("\(key)/\(name)", values: values) }
    }

    private static func load<T: ParameterElement>(_: T.Type, _ chain: SyntheticModel.Chain, _ communicator: Communicator,
                                                  _ registry: RuleRegistry, _ folder: URL, _ report: inout Report) throws {
        let samples = SyntheticModel.samples(rank: communicator.rank, of: communicator.size)
        for mode in DistributedOptimizer.Mode.allCases {
            // Other values than the checkpoint's, and a schedule at its start: the load must replace both.
            let (parameters, groups) = SyntheticModel.parameters(T.self, chain: chain, shift: 0.5)
            let optimizer = try DistributedOptimizer(groups, rules: chain.rules, defaults: chain.defaults, mode: mode,
                                                     bucketBytes: 4096, registry: registry)
            let scheduler = try LearningRateScheduler(optimizer.local, schedule: .exponential(gamma: 0.9))
            try optimizer.loadCheckpoint(from: file(folder, chain), schedulers: [scheduler])
            let key = "checkpoint/\(chain.name)/\(mode.rawValue)"
            report.record("\(key)/scheduler-steps", number: scheduler.state.steps)
            report.record("\(key)/state-bytes", number: optimizer.stateByteCount)
            try train(T.self, { try optimizer.step() }, scheduler, parameters, samples: samples, steps: stepsAfter)
            for (name, values) in try SyntheticModel.values(T.self, parameters) { report.record("\(key)/\(name)", values: values) }
        }
        guard communicator.rank == 0 else { return }
        // One process, no MPI in the optimizer: the same file.
        let (parameters, groups) = SyntheticModel.parameters(T.self, chain: chain, shift: 0.5)
        let optimizer = try Optimizer(groups, rules: chain.rules, defaults: chain.defaults, registry: registry)
        let scheduler = try LearningRateScheduler(optimizer, schedule: .exponential(gamma: 0.9))
        try optimizer.loadCheckpoint(from: file(folder, chain), schedulers: [scheduler])
        try train(T.self, { try optimizer.step() }, scheduler, parameters, samples: 0..<SyntheticModel.batch, steps: stepsAfter)
        let key = "checkpoint/\(chain.name)/single"
        for (name, values) in try SyntheticModel.values(T.self, parameters) { report.record("\(key)/\(name)", values: values) }
    }

    /// A checkpoint of another chain, and a truncated one: refused on every rank, nothing changed.
    private static func refusals(_ communicator: Communicator, registry: RuleRegistry, folder: URL, into report: inout Report) throws {
        let chain = SyntheticModel.chains[0]
        let truncated = folder.appendingPathComponent("truncated.safetensors")
        if communicator.rank == 0 {
            let bytes = try Data(contentsOf: file(folder, chain))
            try bytes.prefix(bytes.count - 100).write(to: truncated)
        }
        let cases = [("other-chain", file(folder, SyntheticModel.chains[1])), ("truncated", truncated),
                     ("missing", folder.appendingPathComponent("missing.safetensors"))]
        for (name, url) in cases {
            let (parameters, groups) = SyntheticModel.parameters(Float.self, chain: chain)
            let optimizer = try DistributedOptimizer(groups, rules: chain.rules, defaults: chain.defaults, mode: .sharded,
                                                     registry: registry)
            let before = try parameters.map { try $0.values(as: Float.self) }
            do {
                try optimizer.loadCheckpoint(from: url)
                report.record("checkpoint-refused/\(name)", text: "loaded")
            } catch {
                report.record("checkpoint-refused/\(name)", text: error.description)
            }
            let unchanged = try parameters.map { try $0.values(as: Float.self) } == before && optimizer.state(of: parameters[0]) == nil
            report.record("checkpoint-refused/\(name)/unchanged", number: unchanged ? 1 : 0)
        }
    }
}
