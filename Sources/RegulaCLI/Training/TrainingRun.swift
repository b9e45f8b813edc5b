import Foundation
import Regula

/// One chain trained on one problem: the optimizer loop, with checkpointing and a loss curve.
struct TrainingRun {
    /// How the run is shown (`subgradient l1`).
    let label: String
    let rules: [String]
    /// Options of the weights' group; the bias group gets the same with every penalty at 0.
    let options: [String: Double]

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
    }

    func run(_ problem: TrainingProblem, registry: RuleRegistry, epochs: Int, resume: URL?, checkpoint: URL?,
             progress: (Int) -> Void) throws -> Result {
        let weights = Parameter("weights", values: [Double](repeating: 0, count: problem.weightCount))
        let bias = Parameter("bias", values: [0.0])
        let taken = Set(try rules.flatMap { try registry.rule(named: $0).hyperparameters.map(\.name) })
        let penalties = taken.filter { $0.hasPrefix("weight_decay") || $0 == "alpha" }
        let optimizer = try Optimizer(
            [ParamGroup([weights], options: options.filter { taken.contains($0.key) }),
             ParamGroup([bias], options: options.filter { taken.contains($0.key) }.merging(penalties.map { ($0, 0.0) }) { $1 })],
            rules: rules, registry: registry)
        optimizer.nonFiniteSteps = .skip
        if let resume, try optimizer.loadCheckpoint(from: resume) == .unchecked {
            printError("note: \(resume.path) was written before checkpoints had checksums, so damage to its numbers cannot be detected; the next --checkpoint save adds them")
        }
        let start = optimizer.state(of: weights)?.step ?? 0
        var curve: [(epoch: Int, loss: Double, zeros: Int)] = []
        for epoch in start..<max(start, epochs) {
            let current = weights.values(as: Double.self)
            let (loss, gradient, biasGradient) = problem.evaluate(weights: current, bias: bias.values(as: Double.self)[0])
            curve.append((epoch, loss, current.filter { $0 == 0 }.count))
            try weights.setGradient(gradient)
            try bias.setGradient([biasGradient])
            try optimizer.step()
            progress(epoch + 1)
        }
        if let checkpoint { try optimizer.saveCheckpoint(to: checkpoint) }
        let final = weights.values(as: Double.self), finalBias = bias.values(as: Double.self)[0]
        return Result(label: label, rules: rules, loss: problem.evaluate(weights: final, bias: finalBias).loss,
                      zeros: final.filter { $0 == 0 }.count, weights: final, bias: finalBias, curve: curve,
                      report: problem.report(weights: final, bias: finalBias), resumedFrom: start)
    }
}
