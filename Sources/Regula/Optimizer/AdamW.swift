/// AdamW, mirroring `torch.optim.AdamW`: the rule `adamw`, Adam with decoupled weight decay
/// (`p *= 1 - lr · weightDecay` before each Adam step).
///
/// ```swift
/// let optimizer = try AdamW([ParamGroup([weights]), ParamGroup([biases], options: ["weight_decay": 0])],
///                           lr: 3e-4, weightDecay: 0.1)
/// ```
public final class AdamW: Optimizer, @unchecked Sendable {
    /// Builds the rule with these defaults for every group.
    ///
    /// - Parameters:
    ///   - groups: Parameter groups; a group's options override these defaults.
    ///   - lr: Learning rate, ≥ 0 (`lr`).
    ///   - betas: Decays of the running means of the gradient and its square, each in [0, 1)
    ///     (`beta1`, `beta2`).
    ///   - eps: Added to the denominator, ≥ 0 (`eps`).
    ///   - weightDecay: Decoupled decay, ≥ 0 (`weight_decay`); torch's default is 0.01.
    ///   - amsgrad: Divide by the largest second moment seen so far (`amsgrad`).
    ///   - registry: Where the rules come from; `nil` for ``RuleRegistry/shared()``.
    /// - Throws: ``OptimizerError`` for a value out of range.
    public init(_ groups: [ParamGroup], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                weightDecay: Double = 1e-2, amsgrad: Bool = false, registry: RuleRegistry? = nil) throws {
        try super.init(
            groups, rules: ["adamw"],
            defaults: ["lr": lr, "beta1": betas.0, "beta2": betas.1, "eps": eps, "weight_decay": weightDecay,
                       "amsgrad": amsgrad ? 1 : 0],
            registry: registry)
    }

    /// The same, with all `parameters` in one group.
    public convenience init(_ parameters: [Parameter], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999),
                            eps: Double = 1e-8, weightDecay: Double = 1e-2, amsgrad: Bool = false,
                            registry: RuleRegistry? = nil) throws {
        try self.init([ParamGroup(parameters)], lr: lr, betas: betas, eps: eps, weightDecay: weightDecay,
                      amsgrad: amsgrad, registry: registry)
    }
}
