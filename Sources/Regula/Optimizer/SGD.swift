/// Stochastic gradient descent with L1 and L2 penalties and (Nesterov) momentum, mirroring
/// `torch.optim.SGD` plus the seed's L1 term: the chain `l1 > l2 > momentum > sgd`, or
/// `l1 > l2 > nesterov > sgd` when `nesterov` is true.
///
/// Every option of the chain can be changed per group later (`optimizer.groups[i].options["momentum"]`),
/// as in torch: a penalty or momentum of 0 leaves the update as it is.
///
/// ```swift
/// let optimizer = try SGD([ParamGroup([w1], options: ["lr": 1e-2]), ParamGroup([w2])],
///                         lr: 0.1, momentum: 0.9, weightDecay1: 5e-4)
/// ```
public final class SGD: Optimizer, @unchecked Sendable {
    /// Builds the chain with these defaults for every group.
    ///
    /// - Parameters:
    ///   - groups: The parameter groups; a group's options override these defaults.
    ///   - lr: Learning rate, ≥ 0 (`lr`).
    ///   - momentum: Momentum factor, ≥ 0 (`momentum`).
    ///   - dampening: Dampening for momentum, in [0, 1] (`dampening`).
    ///   - weightDecay1: L1 penalty, ≥ 0 (`weight_decay1`): adds `weightDecay1 · sign(p)`.
    ///   - weightDecay2: L2 penalty, ≥ 0 (`weight_decay2`, torch's `weight_decay`): adds `weightDecay2 · p`.
    ///   - nesterov: Nesterov momentum; needs `momentum > 0` and `dampening == 0`.
    ///   - registry: Where the rules come from; `nil` for ``RuleRegistry/shared()``.
    /// - Throws: ``OptimizerError`` for a value out of range or a refused combination.
    public init(_ groups: [ParamGroup], lr: Double, momentum: Double = 0, dampening: Double = 0,
                weightDecay1: Double = 0, weightDecay2: Double = 0, nesterov: Bool = false,
                registry: RuleRegistry? = nil) throws {
        try super.init(
            groups, rules: ["l1", "l2", nesterov ? "nesterov" : "momentum", "sgd"],
            defaults: ["lr": lr, "momentum": momentum, "dampening": dampening,
                       "weight_decay1": weightDecay1, "weight_decay2": weightDecay2],
            registry: registry)
    }

    /// The same, with all `parameters` in one group.
    public convenience init(_ parameters: [Parameter], lr: Double, momentum: Double = 0, dampening: Double = 0,
                            weightDecay1: Double = 0, weightDecay2: Double = 0, nesterov: Bool = false,
                            registry: RuleRegistry? = nil) throws {
        try self.init([ParamGroup(parameters)], lr: lr, momentum: momentum, dampening: dampening,
                      weightDecay1: weightDecay1, weightDecay2: weightDecay2, nesterov: nesterov, registry: registry)
    }
}
