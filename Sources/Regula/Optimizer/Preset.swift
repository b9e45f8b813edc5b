/// A ready-made chain with its defaults: the torch-shaped optimizers as values, not types.
///
/// Each preset is a chain of rule names with the options and choices every group starts from, so an optimizer
/// built from one is an ordinary ``Optimizer`` whose options can be changed per group later
/// (`optimizer.groups[i].options["momentum"]`), as torch's `param_groups` can. `Docs/Rules.md` gives each
/// option's range and formula.
///
/// ```swift
/// let sgd = try Optimizer([ParamGroup([w1], options: ["lr": 1e-2]), ParamGroup([w2])],
///                         preset: .sgd(lr: 0.1, momentum: 0.9, weightDecay1: 5e-4))
/// let adam = try Optimizer([w, b], preset: .adam(lr: 1e-3, betas: (0.9, 0.999)))
/// ```
///
/// A group may run a preset of its own beside the optimizer's (``ParamGroup/init(_:preset:options:choices:)``),
/// as Muon is used: Muon on the weight matrices, AdamW on the rest.
///
/// ```swift
/// let optimizer = try Optimizer([ParamGroup([w1, w2], preset: .muon(lr: 0.02)), ParamGroup([b1, b2])],
///                               preset: .adamW(lr: 1e-3))
/// ```
public struct Preset: Sendable, Equatable {
    /// The rule names, in the order they run.
    public let rules: [String]
    /// The options every group starts from, by their names in the chain (`weight_decay1`, `beta1`).
    public let defaults: [String: Double]
    /// The choices every group starts from, by name (`adjust_lr_fn`), each one of the names its rule declares.
    public let choices: [String: String]

    /// A preset of `rules` with `defaults` and `choices`.
    public init(rules: [String], defaults: [String: Double], choices: [String: String] = [:]) {
        self.rules = rules
        self.defaults = defaults
        self.choices = choices
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

    /// How ``muon(lr:weightDecay:momentum:nesterov:nsCoefficients:eps:nsSteps:adjustLR:nsDtype:)`` scales the learning
    /// rate for a matrix's shape (rows, cols): torch's `adjust_lr_fn`, each raw value the name of the choice.
    public enum MuonLRAdjustment: String, Sendable, CaseIterable {
        /// `lr · √max(1, rows / cols)`: torch's default (`adjust_lr_fn=None` or `"original"`).
        case original
        /// `lr · 0.2 · √max(rows, cols)`, which gives the update about the RMS of AdamW's, so AdamW's learning
        /// rate and weight decay carry over (`"match_rms_adamw"`).
        case matchRMSAdamW = "match_rms_adamw"
        /// `lr · √(rows / cols)`, unclamped (`"spectral_unclamped"`).
        case spectralUnclamped = "spectral_unclamped"
    }

    /// The element type ``muon(lr:weightDecay:momentum:nesterov:nsCoefficients:eps:nsSteps:adjustLR:nsDtype:)``
    /// runs its Newton–Schulz iteration in: the choice `ns_dtype`, each raw value the name of the choice.
    public enum MuonNewtonSchulzDType: String, Sendable, CaseIterable {
        /// The parameter's own dtype (`"parameter"`, the default), as the torch-matrix fixtures run it.
        case parameter
        /// bfloat16 with float32 sums, as stock `torch.optim.Muon` runs it (`"bfloat16"`): its products go to
        /// the host's bfloat16 service (oneDNN, Debian's `libdnnl2`), and a step fails with words without it.
        case bfloat16
    }

    /// Muon, mirroring `torch.optim.Muon`: the rule `muon`, which orthogonalises the momentum of each matrix by
    /// a Newton–Schulz iteration. For 2-D parameters only (any other rank is refused by name when the optimizer
    /// is built), so it is used for the weight matrices of a group of its own beside AdamW for the rest:
    /// `ParamGroup(weights, preset: .muon(lr: 0.02))`.
    ///
    /// - Parameters:
    ///   - lr: Learning rate before the shape adjustment, ≥ 0 (`lr`).
    ///   - weightDecay: Decoupled weight decay, ≥ 0 (`weight_decay`): `p *= 1 - lr · weightDecay`.
    ///   - momentum: Momentum factor, ≥ 0 (`momentum`); the state holds `momentum_buffer`.
    ///   - nesterov: Orthogonalise the Nesterov look-ahead instead of the buffer (`nesterov`).
    ///   - nsCoefficients: The Newton–Schulz coefficients a, b, c, any real numbers (`ns_a`, `ns_b`, `ns_c`,
    ///     torch's `ns_coefficients`).
    ///   - eps: Smallest Frobenius norm the update is divided by, ≥ 0 (`eps`).
    ///   - nsSteps: Newton–Schulz iterations, in [0, 99] (`ns_steps`).
    ///   - adjustLR: The learning rate's scaling for the matrix's shape (the choice `adjust_lr_fn`).
    ///   - nsDtype: The element type of the Newton–Schulz iteration (the choice `ns_dtype`): the parameter's,
    ///     or bfloat16 as stock torch runs it.
    public static func muon(lr: Double = 1e-3, weightDecay: Double = 0.1, momentum: Double = 0.95, nesterov: Bool = true,
                            nsCoefficients: (Double, Double, Double) = (3.4445, -4.775, 2.0315), eps: Double = 1e-7,
                            nsSteps: Int = 5, adjustLR: MuonLRAdjustment = .original,
                            nsDtype: MuonNewtonSchulzDType = .parameter) -> Preset {
        Preset(rules: ["muon"],
               defaults: ["lr": lr, "weight_decay": weightDecay, "momentum": momentum, "nesterov": nesterov ? 1 : 0,
                          "ns_a": nsCoefficients.0, "ns_b": nsCoefficients.1, "ns_c": nsCoefficients.2, "eps": eps,
                          "ns_steps": Double(nsSteps)],
               choices: ["adjust_lr_fn": adjustLR.rawValue, "ns_dtype": nsDtype.rawValue])
    }

    /// The value of `eps1` that stands for torch's `eps=(None, …)`: the machine epsilon of the parameter's dtype.
    private static let adafactorMachineEpsilon = -1.0

    /// Adafactor, mirroring `torch.optim.Adafactor`: the rule `adafactor`, which keeps the second moment of a
    /// tensor of rank 2 or more factored into row and column means (`row_var`, `col_var`) and of a vector
    /// whole (`variance`), and scales its step by the parameter's RMS.
    ///
    /// - Parameters:
    ///   - lr: The largest relative step, and the weight decay's scale, ≥ 0 (`lr`).
    ///   - beta2Decay: The second moment's weight at step t is `t^beta2Decay`, ≤ 0 (`beta2_decay`).
    ///   - eps: The floor of the second-moment estimate, ≥ 0, nil for the machine epsilon of the parameter's
    ///     dtype as torch's None (`eps1`, torch's `eps[0]`); and the smallest parameter RMS the step scales
    ///     by, ≥ 0 (`eps2`, torch's `eps[1]`).
    ///   - d: Update clipping threshold: the update's RMS is scaled down to at most `d`, ≥ 1 (`d`).
    ///   - weightDecay: Decoupled weight decay, ≥ 0 (`weight_decay`): `p *= 1 - lr · weightDecay`.
    ///   - maximize: Step up the gradient instead of down (`maximize`).
    public static func adafactor(lr: Double = 1e-2, beta2Decay: Double = -0.8, eps: (Double?, Double) = (nil, 1e-3),
                                 d: Double = 1, weightDecay: Double = 0, maximize: Bool = false) -> Preset {
        Preset(rules: ["adafactor"],
               defaults: ["lr": lr, "beta2_decay": beta2Decay, "eps1": eps.0 ?? adafactorMachineEpsilon, "eps2": eps.1,
                          "d": d, "weight_decay": weightDecay, "maximize": maximize ? 1 : 0])
    }

    /// Averaged SGD, mirroring `torch.optim.ASGD`: the rule `asgd`, whose state keeps the average of the
    /// iterates after step `t0` (`ax`) and the scalars `eta` and `mu`.
    ///
    /// - Parameters:
    ///   - lr: Learning rate: the step size's first value and its scale, ≥ 0 (`lr`).
    ///   - lambda: Decay term, ≥ 0 (`lambd`): shrinks `p` by `1 - lambda · eta`, and `eta` with the step count.
    ///   - alpha: Power of the step count in the step size's decay, ≥ 0 (`alpha`).
    ///   - t0: The step after which averaging starts, any number (`t0`).
    ///   - weightDecay: Coupled L2 penalty added to the gradient, ≥ 0 (`weight_decay`).
    public static func asgd(lr: Double = 1e-2, lambda: Double = 1e-4, alpha: Double = 0.75, t0: Double = 1e6,
                            weightDecay: Double = 0) -> Preset {
        Preset(rules: ["asgd"], defaults: ["lr": lr, "lambd": lambda, "alpha": alpha, "t0": t0, "weight_decay": weightDecay])
    }
}

extension Optimizer {
    /// Builds an optimizer over `groups` that runs `preset`'s chain with its defaults and choices; a group's
    /// options and choices override them, and a group with rules of its own (such as one made with
    /// ``ParamGroup/init(_:preset:options:choices:)``) runs those.
    /// - Throws: ``OptimizerError`` for a value out of range or a refused combination (a beta of 1, Nesterov
    ///   without momentum).
    public convenience init(_ groups: [ParamGroup], preset: Preset, registry: RuleRegistry? = nil) throws(OptimizerError) {
        try self.init(groups, rules: preset.rules, defaults: preset.defaults, choices: preset.choices, registry: registry)
    }

    /// The same, with all `parameters` in one group.
    public convenience init(_ parameters: [Parameter], preset: Preset, registry: RuleRegistry? = nil) throws(OptimizerError) {
        try self.init([ParamGroup(parameters)], preset: preset, registry: registry)
    }
}
