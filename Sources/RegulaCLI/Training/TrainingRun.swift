import Foundation
import Regula

/// One chain trained on one problem: the optimizer loop, with checkpointing and a loss curve.
struct TrainingRun {
    /// How the run is shown (`subgradient l1`).
    let label: String
    let rules: [String]
    /// Options of the weights' group; the biases' group gets the same with every penalty at 0.
    let options: [String: Double]
    /// Choices of both groups, by name; those the chain does not take are left out.
    var choices: [String: String] = [:]

    struct Result {
        let label: String
        let rules: [String]
        let loss: Double
        let zeros: Int
        /// The trained values, one array per parameter of the problem.
        let values: [[Double]]
        /// (epoch, loss before that epoch's step, exactly-zero weights).
        let curve: [(epoch: Int, loss: Double, zeros: Int)]
        let report: [(String, String)]
        let resumedFrom: Int
        /// Steps of this run skipped, and so undone (a non-finite gradient or result), of ``stepsTaken``.
        let skipped: Int
        let stepsTaken: Int
    }

    /// The run's optimizer, built and (with `resume`) restored from a checkpoint, ready to train. Everything
    /// that can be refused is refused here, before any run of a command has trained. In an MPI job every rank
    /// calls this, and each refusal is every rank's.
    func prepare(_ problem: TrainingProblem, registry: RuleRegistry, resume: URL?, placement: TrainingPlacement) throws -> PreparedRun {
        let parameters = try problem.parameters.map { try Parameter($0.name, values: $0.initialValues, shape: $0.shape) }
        let penalized = parameters.indices.filter { problem.parameters[$0].isPenalized }.map { parameters[$0] }
        let others = parameters.indices.filter { !problem.parameters[$0].isPenalized }.map { parameters[$0] }
        let taken = Set(try registry.rules(for: rules).flatMap { $0.hyperparameters.map(\.name) })
        let penalties = taken.filter { $0.hasPrefix("weight_decay") || $0 == "alpha" }
        let choices = choices.filter { taken.contains($0.key) }
        let optimizer = try placement.optimizer(
            [ParamGroup(penalized, options: options.filter { taken.contains($0.key) }, choices: choices),
             ParamGroup(others, options: options.filter { taken.contains($0.key) }.merging(penalties.map { ($0, 0.0) }) { $1 },
                        choices: choices)],
            rules: rules, registry: registry)
        optimizer.nonFiniteSteps = .skip
        if let resume, try optimizer.loadCheckpoint(from: resume) == .unchecked {
            printError("note: \(resume.path) was written before checkpoints had checksums, so damage to its numbers cannot be detected; the next --checkpoint save adds them")
        }
        return PreparedRun(run: self, problem: problem, optimizer: optimizer, placement: placement, parameters: parameters,
                           start: optimizer.steps(of: parameters[0]))
    }
}

/// A run whose optimizer is ready: trains from ``start`` up to a number of epochs.
struct PreparedRun {
    let run: TrainingRun
    let problem: TrainingProblem
    let optimizer: any TrainingStepper
    let placement: TrainingPlacement
    /// The problem's parameters, in its order.
    let parameters: [Parameter]
    /// The epoch training starts from: 0, or the checkpoint's step count.
    let start: Int

    /// Trains up to `epochs` in total (after ``start``), then saves the optimizer to `checkpoint` if given.
    ///
    /// In an MPI job each rank computes the gradient of its share of the rows, scaled so that the average over
    /// ranks is the gradient over all of them, and the curve's loss is the ranks' total.
    func train(epochs: Int, checkpoint: URL?, progress: (Int) -> Void) throws -> TrainingRun.Result {
        var curve: [(epoch: Int, loss: Double, zeros: Int)] = []
        var skipped = 0, firstReason: String?
        let rows = placement.rows(of: problem.rowCount), n = Double(problem.rowCount), ranks = Double(placement.ranks)
        for epoch in start..<max(start, epochs) {
            let current = try values()
            let (loss, gradients) = problem.evaluate(current, rows: rows)
            curve.append((epoch, placement.total(loss) / n, zeros(in: current)))
            for (parameter, gradient) in zip(parameters, gradients) { try parameter.setGradient(gradient.map { $0 / n * ranks }) }
            if case .skipped(let reason) = try optimizer.step() {
                skipped += 1
                firstReason = firstReason ?? reason
            }
            progress(epoch + 1)
        }
        let stepsTaken = max(start, epochs) - start
        if let firstReason, skipped == stepsTaken {
            throw CommandError("every one of the \(stepsTaken) steps of \(run.rules.joined(separator: " > ")) on "
                                   + "\(problem.title) was skipped and undone, so nothing trained\(checkpoint.map { " and \($0.path) was not written" } ?? ""); "
                                   + "the first: \(firstReason)")
        }
        if let checkpoint { try optimizer.saveCheckpoint(to: checkpoint) }
        let final = try values()
        return TrainingRun.Result(label: run.label, rules: run.rules, loss: problem.meanLoss(final),
                                  zeros: zeros(in: final), values: final, curve: curve,
                                  report: problem.report(final), resumedFrom: start,
                                  skipped: skipped, stepsTaken: stepsTaken)
    }

    private func values() throws -> [[Double]] { try parameters.map { try $0.values(as: Double.self) } }

    /// Exactly-zero elements of the penalized parameters (the weights).
    private func zeros(in values: [[Double]]) -> Int {
        zip(problem.parameters, values).filter(\.0.isPenalized).reduce(0) { $0 + $1.1.filter { $0 == 0 }.count }
    }
}
