/// Adam, mirroring `torch.optim.Adam`: the chain `l2 > adam`, where `l2` is torch's coupled `weight_decay`
/// (it adds `weightDecay · p` to the gradient before the moments see it).
///
/// Every option can be changed per group later (`optimizer.groups[i].options["beta1"]`), as in torch's
/// `param_groups`; `Docs/Rules.md` gives each option's range and the formula.
///
/// ```swift
/// let optimizer = try Adam([w, b], lr: 1e-3, betas: (0.9, 0.999))
/// ```
public final class Adam: Optimizer, @unchecked Sendable {
    /// Builds the chain with these defaults for every group.
    ///
    /// - Parameters:
    ///   - groups: Parameter groups; a group's options override these defaults.
    ///   - lr: Learning rate, ≥ 0 (`lr`).
    ///   - betas: Decays of the running means of the gradient and its square, each in [0, 1)
    ///     (`beta1`, `beta2`).
    ///   - eps: Added to the denominator, ≥ 0 (`eps`).
    ///   - weightDecay: Coupled L2 penalty, ≥ 0 (`weight_decay2`): adds `weightDecay · p` to the gradient.
    ///   - amsgrad: Divide by the largest second moment seen so far (`amsgrad`); the state then holds
    ///     `max_exp_avg_sq`.
    ///   - registry: Where the rules come from; `nil` for ``RuleRegistry/shared()``.
    /// - Throws: ``OptimizerError`` for a value out of range (a beta of 1, a negative eps).
    public init(_ groups: [ParamGroup], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                weightDecay: Double = 0, amsgrad: Bool = false, registry: RuleRegistry? = nil) throws {
        try super.init(
            groups, rules: ["l2", "adam"],
            defaults: ["lr": lr, "beta1": betas.0, "beta2": betas.1, "eps": eps, "weight_decay2": weightDecay,
                       "amsgrad": amsgrad ? 1 : 0],
            registry: registry)
    }

    /// The same, with all `parameters` in one group.
    public convenience init(_ parameters: [Parameter], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 0, amsgrad: Bool = false,
                            registry: RuleRegistry? = nil) throws {
        try self.init([ParamGroup(parameters)], lr: lr, betas: betas, eps: eps, weightDecay: weightDecay,
                      amsgrad: amsgrad, registry: registry)
    }
}
