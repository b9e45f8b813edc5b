/// RMSprop, mirroring `torch.optim.RMSprop`: the chain `l2 > rmsprop`, where `l2` is torch's coupled
/// `weight_decay`.
///
/// The state holds `square_avg`, plus `momentum_buffer` once a step runs with `momentum > 0` and `grad_avg`
/// once one runs `centered`, as torch's does.
///
/// ```swift
/// let optimizer = try RMSprop([w], lr: 1e-2, momentum: 0.9, centered: true)
/// ```
public final class RMSprop: Optimizer, @unchecked Sendable {
    /// Builds the chain with these defaults for every group.
    ///
    /// - Parameters:
    ///   - groups: Parameter groups; a group's options override these defaults.
    ///   - lr: Learning rate, ≥ 0 (`lr`).
    ///   - alpha: Smoothing constant of the running mean of squared gradients, in [0, 1] (`alpha`).
    ///   - eps: Added to the denominator, ≥ 0 (`eps`).
    ///   - weightDecay: Coupled L2 penalty, ≥ 0 (`weight_decay2`).
    ///   - momentum: Momentum factor, ≥ 0 (`momentum`).
    ///   - centered: Normalize by an estimate of the gradient's variance (`centered`).
    ///   - registry: Where the rules come from; `nil` for ``RuleRegistry/shared()``.
    /// - Throws: ``OptimizerError`` for a value out of range.
    public init(_ groups: [ParamGroup], lr: Double = 1e-2, alpha: Double = 0.99, eps: Double = 1e-8,
                weightDecay: Double = 0, momentum: Double = 0, centered: Bool = false,
                registry: RuleRegistry? = nil) throws {
        try super.init(
            groups, rules: ["l2", "rmsprop"],
            defaults: ["lr": lr, "alpha": alpha, "eps": eps, "weight_decay2": weightDecay, "momentum": momentum,
                       "centered": centered ? 1 : 0],
            registry: registry)
    }

    /// The same, with all `parameters` in one group.
    public convenience init(_ parameters: [Parameter], lr: Double = 1e-2, alpha: Double = 0.99, eps: Double = 1e-8,
                            weightDecay: Double = 0, momentum: Double = 0, centered: Bool = false,
                            registry: RuleRegistry? = nil) throws {
        try self.init([ParamGroup(parameters)], lr: lr, alpha: alpha, eps: eps, weightDecay: weightDecay,
                      momentum: momentum, centered: centered, registry: registry)
    }
}
