import Foundation
import Regula

/// One chain trained on one problem: the optimizer loop, with checkpointing and a loss curve.
struct TrainingRun {
    /// How the run is shown (`subgradient l1`).
    let label: String
    let rules: [String]
    /// Options of the weights' group; the bias group gets the same with every penalty at 0.
    let options: [String: Double]
    /// Choices of both groups, by name; those the chain does not take are left out.
    var choices: [String: String] = [:]

    struct Result {
        let label: String
        let rules: [String]
        let loss: Double
        let zeros: Int
        let weights: [Double]
        let bias: Double
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
        let weights = Parameter("weights", values: [Double](repeating: 0, count: problem.weightCount))
        let bias = Parameter("bias", values: [0.0])
        let taken = Set(try registry.rules(for: rules).flatMap { $0.hyperparameters.map(\.name) })
        let penalties = taken.filter { $0.hasPrefix("weight_decay") || $0 == "alpha" }
        let choices = choices.filter { taken.contains($0.key) }
        let optimizer = try placement.optimizer(
            [ParamGroup([weights], options: options.filter { taken.contains($0.key) }, choices: choices),
             ParamGroup([bias], options: options.filter { taken.contains($0.key) }.merging(penalties.map { ($0, 0.0) }) { $1 },
                        choices: choices)],
            rules: rules, registry: registry)
        optimizer.nonFiniteSteps = .skip
        if let resume, try optimizer.loadCheckpoint(from: resume) == .unchecked {
            printError("note: \(resume.path) was written before checkpoints had checksums, so damage to its numbers cannot be detected; the next --checkpoint save adds them")
        }
        return PreparedRun(run: self, problem: problem, optimizer: optimizer, placement: placement, weights: weights, bias: bias,
                           start: optimizer.steps(of: weights))
    }
}

/// A run whose optimizer is ready: trains from ``start`` up to a number of epochs.
struct PreparedRun {
    let run: TrainingRun
    let problem: TrainingProblem
    let optimizer: any TrainingStepper
    let placement: TrainingPlacement
    let weights: Parameter
    let bias: Parameter
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
            let current = try weights.values(as: Double.self)
            let (loss, gradient, biasGradient) = problem.evaluate(weights: current, bias: try bias.values(as: Double.self)[0], rows: rows)
            curve.append((epoch, placement.total(loss) / n, current.filter { $0 == 0 }.count))
            try weights.setGradient(gradient.map { $0 / n * ranks })
            try bias.setGradient([biasGradient / n * ranks])
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
        let final = try weights.values(as: Double.self), finalBias = try bias.values(as: Double.self)[0]
        return TrainingRun.Result(label: run.label, rules: run.rules, loss: problem.evaluate(weights: final, bias: finalBias).loss,
                                  zeros: final.filter { $0 == 0 }.count, weights: final, bias: finalBias, curve: curve,
                                  report: problem.report(weights: final, bias: finalBias), resumedFrom: start,
                                  skipped: skipped, stepsTaken: stepsTaken)
    }
}
