import ArgumentParser
import Foundation
import Regula
import RegulaDistributed

extension DistributedOptimizer.Mode: ExpressibleByArgument {}

/// Where `regula train` runs: one process over all the data, or one rank of an MPI job (`mpirun -np N regula
/// train --distributed MODE`) over its share of the rows, whose gradients the ranks average.
struct TrainingPlacement {
    /// Nil in one process.
    let mode: DistributedOptimizer.Mode?
    let communicator: Communicator?

    /// Joins the MPI job when `mode` is given.
    init(_ mode: DistributedOptimizer.Mode?) throws {
        self.mode = mode
        communicator = try mode.map { _ in try Communicator.world() }
    }

    var rank: Int { communicator?.rank ?? 0 }
    var ranks: Int { communicator?.size ?? 1 }
    /// The process that prints and writes files: rank 0.
    var isLeader: Bool { rank == 0 }

    /// This process's rows of `count`: all of them, or a contiguous share.
    func rows(of count: Int) -> Range<Int> { count * rank / ranks ..< count * (rank + 1) / ranks }

    /// Runs `body` here; in an MPI job, every rank throws if it threw on any (see ``Communicator/agreeing(_:)``).
    func agreeing<T>(_ body: () throws -> T) throws -> T {
        guard let communicator else { return try body() }
        return try communicator.agreeing(body)
    }

    /// Refuses, on every rank, a job whose ranks were given different `settings` (nothing to do in one process).
    func agreeOnSettings(_ settings: [(name: String, value: String)]) throws {
        try communicator?.agreeOnSettings(settings)
    }

    /// The sum of every process's `value`, in rank order.
    func total(_ value: Double) -> Double { communicator?.sumInRankOrder([value])[0] ?? value }

    /// An optimizer over `groups` for this placement: a plain one, or a distributed one in the given mode.
    func optimizer(_ groups: [ParamGroup], rules: [String], registry: RuleRegistry) throws -> any TrainingStepper {
        guard let mode, let communicator else { return try Optimizer(groups, rules: rules, registry: registry) }
        return try DistributedOptimizer(groups, rules: rules, mode: mode, communicator: communicator, registry: registry)
    }
}

/// What a training run steps: an ``Optimizer``, or a ``DistributedOptimizer`` that every rank steps together.
protocol TrainingStepper: AnyObject {
    var nonFiniteSteps: NonFiniteSteps { get set }
    @discardableResult func step() throws -> StepOutcome
    func saveCheckpoint(to url: URL) throws
    /// Restores from `url`; whether its numbers were verified against checksums, when that is known.
    func loadCheckpoint(from url: URL) throws -> CheckpointIntegrity?
    /// Steps `parameter` has taken.
    func steps(of parameter: Parameter) -> Int
}

extension Optimizer: TrainingStepper {
    func saveCheckpoint(to url: URL) throws { try saveCheckpoint(to: url, schedulers: []) }
    func loadCheckpoint(from url: URL) throws -> CheckpointIntegrity? { try loadCheckpoint(from: url, schedulers: []) }
    func steps(of parameter: Parameter) -> Int { state(of: parameter)?.step ?? 0 }
}

extension DistributedOptimizer: TrainingStepper {
    func saveCheckpoint(to url: URL) throws { try saveCheckpoint(to: url, schedulers: []) }
    func loadCheckpoint(from url: URL) throws -> CheckpointIntegrity? {
        try loadCheckpoint(from: url, schedulers: [])
        return nil   // rank 0 checked the file; whether it had checksums is not passed on
    }
    func steps(of parameter: Parameter) -> Int { state(of: parameter)?.step ?? 0 }
}

/// The MPI job this process was started in, as the launcher's environment says (Open MPI, or a PMI-based
/// launcher), read without joining it.
struct MPIJob {
    let rank: Int
    let size: Int

    static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> MPIJob? {
        for (rankName, sizeName) in [("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE")] {
            if let rank = environment[rankName].flatMap(Int.init), let size = environment[sizeName].flatMap(Int.init) {
                return MPIJob(rank: rank, size: size)
            }
        }
        return nil
    }
}
