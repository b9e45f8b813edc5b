/// A ready-made chain with its defaults: the torch-shaped optimizers as values, not types.
///
/// Each preset is a chain of rule names and the options every group starts from, so an optimizer built from
/// one is an ordinary ``Optimizer`` whose options can be changed per group later
/// (`optimizer.groups[i].options["momentum"]`), as torch's `param_groups` can. `Docs/Rules.md` gives each
/// option's range and formula.
///
/// ```swift
/// let sgd = try Optimizer([ParamGroup([w1], options: ["lr": 1e-2]), ParamGroup([w2])],
///                         preset: .sgd(lr: 0.1, momentum: 0.9, weightDecay1: 5e-4))
/// let adam = try Optimizer([w, b], preset: .adam(lr: 1e-3, betas: (0.9, 0.999)))
/// ```
public struct Preset: Sendable, Equatable {
    /// The rule names, in the order they run.
    public let rules: [String]
    /// The options every group starts from, by their names in the chain (`weight_decay1`, `beta1`).
    public let defaults: [String: Double]

    /// A preset of `rules` with `defaults`.
    public init(rules: [String], defaults: [String: Double]) {
        self.rules = rules
        self.defaults = defaults
    }

    /// Stochastic gradient descent with L1 and L2 penalties and (Nesterov) momentum, mirroring
    /// `torch.optim.SGD` plus the seed's L1 term: the chain `l1 > l2 > momentum > sgd`, or
    /// `l1 > l2 > nesterov > sgd` when `nesterov` is true. A penalty or momentum of 0 leaves the update as it is.
    ///
    /// - Parameters:
    ///   - lr: Learning rate, ≥ 0 (`lr`).
    ///   - momentum: Momentum factor, ≥ 0 (`momentum`).
    ///   - dampening: Dampening for momentum, in [0, 1] (`dampening`).
    ///   - weightDecay1: L1 penalty, ≥ 0 (`weight_decay1`): adds `weightDecay1 · sign(p)`.
    ///   - weightDecay2: L2 penalty, ≥ 0 (`weight_decay2`, torch's `weight_decay`): adds `weightDecay2 · p`.
    ///   - nesterov: Nesterov momentum; needs `momentum > 0` and `dampening == 0`.
    public static func sgd(lr: Double, momentum: Double = 0, dampening: Double = 0, weightDecay1: Double = 0,
                           weightDecay2: Double = 0, nesterov: Bool = false) -> Preset {
        Preset(rules: ["l1", "l2", nesterov ? "nesterov" : "momentum", "sgd"],
               defaults: ["lr": lr, "momentum": momentum, "dampening": dampening,
                          "weight_decay1": weightDecay1, "weight_decay2": weightDecay2])
    }

    /// Adam, mirroring `torch.optim.Adam`: the chain `l2 > adam`, where `l2` is torch's coupled `weight_decay`
    /// (it adds `weightDecay · p` to the gradient before the moments see it).
    ///
    /// - Parameters:
    ///   - lr: Learning rate, ≥ 0 (`lr`).
    ///   - betas: Decays of the running means of the gradient and its square, each in [0, 1) (`beta1`, `beta2`).
    ///   - eps: Added to the denominator, ≥ 0 (`eps`).
    ///   - weightDecay: Coupled L2 penalty, ≥ 0 (`weight_decay2`).
    ///   - amsgrad: Divide by the largest second moment seen so far (`amsgrad`); the state then holds
    ///     `max_exp_avg_sq`.
    public static func adam(lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                            weightDecay: Double = 0, amsgrad: Bool = false) -> Preset {
        Preset(rules: ["l2", "adam"],
               defaults: ["lr": lr, "beta1": betas.0, "beta2": betas.1, "eps": eps, "weight_decay2": weightDecay,
                          "amsgrad": amsgrad ? 1 : 0])
    }

    /// AdamW, mirroring `torch.optim.AdamW`: the rule `adamw`, whose decoupled weight decay multiplies the
    /// parameter by `1 - lr · weightDecay` before the Adam step. Set `weight_decay` to 0 in a group to exempt
    /// its parameters (biases, norms), as torch users do.
    ///
    /// - Parameters:
    ///   - lr: Learning rate, ≥ 0 (`lr`).
    ///   - betas: Decays of the running means of the gradient and its square, each in [0, 1) (`beta1`, `beta2`).
    ///   - eps: Added to the denominator, ≥ 0 (`eps`).
    ///   - weightDecay: Decoupled weight decay, ≥ 0 (`weight_decay`); torch's default 1e-2.
    ///   - amsgrad: Divide by the largest second moment seen so far (`amsgrad`).
    public static func adamW(lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                             weightDecay: Double = 1e-2, amsgrad: Bool = false) -> Preset {
        Preset(rules: ["adamw"],
               defaults: ["lr": lr, "beta1": betas.0, "beta2": betas.1, "eps": eps, "weight_decay": weightDecay,
                          "amsgrad": amsgrad ? 1 : 0])
    }

    /// RMSprop, mirroring `torch.optim.RMSprop`: the chain `l2 > rmsprop`, `l2` being torch's coupled
    /// `weight_decay`.
    ///
    /// - Parameters:
    ///   - lr: Learning rate, ≥ 0 (`lr`).
    ///   - alpha: Decay of the running mean of squared gradients, in [0, 1] (`alpha`).
    ///   - eps: Added to the denominator, ≥ 0 (`eps`).
    ///   - weightDecay: Coupled L2 penalty, ≥ 0 (`weight_decay2`).
    ///   - momentum: Momentum factor, ≥ 0 (`momentum`); the state then holds `momentum_buffer`.
    ///   - centered: Divide by the variance estimate instead of the second moment (`centered`); the state then
    ///     holds `grad_avg`.
    public static func rmsprop(lr: Double = 1e-2, alpha: Double = 0.99, eps: Double = 1e-8, weightDecay: Double = 0,
                               momentum: Double = 0, centered: Bool = false) -> Preset {
        Preset(rules: ["l2", "rmsprop"],
               defaults: ["lr": lr, "alpha": alpha, "eps": eps, "weight_decay2": weightDecay, "momentum": momentum,
                          "centered": centered ? 1 : 0])
    }
}

extension Optimizer {
    /// Builds an optimizer over `groups` that runs `preset`'s chain with its defaults; a group's options
    /// override them.
    /// - Throws: ``OptimizerError`` for a value out of range or a refused combination (a beta of 1, Nesterov
    ///   without momentum).
    public convenience init(_ groups: [ParamGroup], preset: Preset, registry: RuleRegistry? = nil) throws(OptimizerError) {
        try self.init(groups, rules: preset.rules, defaults: preset.defaults, choices: [:], registry: registry)
    }

    /// The same, with all `parameters` in one group.
    public convenience init(_ parameters: [Parameter], preset: Preset, registry: RuleRegistry? = nil) throws(OptimizerError) {
        try self.init([ParamGroup(parameters)], preset: preset, registry: registry)
    }
}
