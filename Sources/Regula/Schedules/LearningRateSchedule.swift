import Foundation

/// How a learning rate changes from step to step: the schedules of `torch.optim.lr_scheduler`, computed the
/// way torch computes them (each new rate from the current one), so that the two agree to the last bits.
public enum LearningRateSchedule: Sendable {
    /// Multiply by `gamma` every `size` steps (torch's `StepLR`).
    case step(size: Int, gamma: Double)
    /// Multiply by `gamma` at each milestone step (torch's `MultiStepLR`).
    case multiStep(milestones: [Int], gamma: Double)
    /// Multiply by `gamma` every step (torch's `ExponentialLR`; the seed's `adjust_learning_rate`).
    case exponential(gamma: Double)
    /// Cosine annealing from the base rate to `minimum` over `period` steps, rising again after it, as
    /// torch's `CosineAnnealingLR` does.
    case cosine(period: Int, minimum: Double = 0)
    /// Linear warm-up from `startFactor` × the base rate to the base rate over `warmupSteps` steps, then cosine
    /// annealing (torch's `SequentialLR` of `LinearLR` and `CosineAnnealingLR`, with milestone `warmupSteps`).
    case warmupCosine(warmupSteps: Int, startFactor: Double, period: Int, minimum: Double = 0)
    /// Multiply by `factor` when the loss handed to ``LearningRateScheduler/step(loss:)`` has not improved by
    /// more than `threshold` (relative) for more than `patience` steps; then wait `cooldown` steps; never
    /// below `minimum` (torch's `ReduceLROnPlateau`, mode `min`, threshold mode `rel`).
    case reduceOnPlateau(factor: Double = 0.1, patience: Int = 10, threshold: Double = 1e-4, cooldown: Int = 0,
                         minimum: Double = 0)
    /// The base rate times `multiplier(step)` (torch's `LambdaLR`).
    case custom(@Sendable (_ step: Int) -> Double)

    /// Why the schedule's settings are not usable, or nil.
    var problem: String? {
        switch self {
        case .step(let size, let gamma):
            return size < 1 ? "step size must be at least 1, not \(size)" : gamma <= 0 ? "gamma must be positive" : nil
        case .multiStep(let milestones, let gamma):
            return milestones.contains { $0 < 1 } ? "milestones must be steps of at least 1" : gamma <= 0 ? "gamma must be positive" : nil
        case .exponential(let gamma):
            return gamma <= 0 ? "gamma must be positive, not \(gamma)" : nil
        case .cosine(let period, let minimum):
            return period < 1 ? "period must be at least 1, not \(period)" : minimum < 0 ? "minimum must be ≥ 0" : nil
        case .warmupCosine(let warmup, let start, let period, let minimum):
            if warmup < 1 { return "warm-up must last at least 1 step, not \(warmup)" }
            if !(start > 0 && start <= 1) { return "start factor must be in (0, 1], not \(start)" }
            return period < 1 ? "period must be at least 1, not \(period)" : minimum < 0 ? "minimum must be ≥ 0" : nil
        case .reduceOnPlateau(let factor, let patience, let threshold, let cooldown, let minimum):
            if !(factor > 0 && factor < 1) { return "factor must be in (0, 1), not \(factor)" }
            if patience < 0 || cooldown < 0 { return "patience and cooldown must be ≥ 0" }
            return threshold < 0 ? "threshold must be ≥ 0" : minimum < 0 ? "minimum must be ≥ 0" : nil
        case .custom:
            return nil
        }
    }

    /// The schedule's name in checkpoints and messages.
    public var name: String {
        switch self {
        case .step: "step"
        case .multiStep: "multi_step"
        case .exponential: "exponential"
        case .cosine: "cosine"
        case .warmupCosine: "warmup_cosine"
        case .reduceOnPlateau: "reduce_on_plateau"
        case .custom: "custom"
        }
    }
}

/// Python's `%`: the result has the sign of the divisor (torch's cosine test relies on it).
func floorModulo(_ a: Int, _ b: Int) -> Int { ((a % b) + b) % b }

/// torch's chainable cosine step: the rate for step `epoch` from the rate of step `epoch − 1`.
func cosineStep(rate: Double, base: Double, epoch: Int, period: Int, minimum: Double) -> Double {
    if epoch == 0 { return rate }
    if floorModulo(epoch - 1 - period, 2 * period) == 0 {
        return rate + (base - minimum) * (1 - cos(Double.pi / Double(period))) / 2
    }
    return (1 + cos(Double.pi * Double(epoch) / Double(period)))
        / (1 + cos(Double.pi * Double(epoch - 1) / Double(period))) * (rate - minimum) + minimum
}
