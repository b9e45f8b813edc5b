/// A set of parameters that share options, like an entry of torch's `param_groups`, and may run a chain of
/// their own (optax's `partition`).
///
/// When an ``Optimizer`` is built, every hyperparameter of its chain is filled into each group's
/// ``options``: the group's own value, else the optimizer's default, else the rule's default. Changing an
/// option between steps (`optimizer.groups[0].learningRate *= 0.9`) takes effect at the next step, which
/// validates it first and refuses to run, changing nothing, if it is not allowed.
public struct ParamGroup: Sendable {
    /// The group's parameters.
    public let parameters: [Parameter]
    /// The rule and chain names this group's parameters run, in order, in place of the optimizer's chain; nil
    /// for the optimizer's. In ``Optimizer/groups`` it is filled in: the group's own, or the optimizer's.
    ///
    /// One optimizer takes one step, keeps one checkpoint and follows one schedule over all its groups,
    /// whatever chain each runs, and a step is all or nothing across them. A group's ``options`` must be
    /// ones its chain reads; the optimizer's defaults fill in only the options it reads.
    public let rules: [String]?
    /// Hyperparameter values by name.
    public var options: [String: Double]
    /// The values of choice hyperparameters (such as `adjust_lr_fn`), by name: each one of the names its rules
    /// declare. Changed between steps like ``options``; a choice given in ``options`` as a number is refused.
    public var choices: [String: String]

    /// A group of `parameters` with its own `options` and `choices`, which override the optimizer's defaults,
    /// and its own chain `rules` (nil for the optimizer's), such as `["muon"]` for the weight matrices
    /// beside an `["adamw"]` optimizer.
    public init(_ parameters: [Parameter], rules: [String]? = nil, options: [String: Double] = [:],
                choices: [String: String] = [:]) {
        self.parameters = parameters
        self.rules = rules
        self.options = options
        self.choices = choices
    }

    /// A group of `parameters` that runs `preset` in place of the optimizer's chain: its rules, and every one
    /// of its defaults and choices as the group's own, so none of the optimizer's defaults reaches this group.
    /// `options` and `choices` override the preset's, by name.
    ///
    /// Muon beside AdamW, the way Muon is used:
    /// `try Optimizer([ParamGroup(weights, preset: .muon(lr: 0.02)), ParamGroup(biases)], preset: .adamW(lr: 1e-3))`.
    /// A name the preset's chain does not read, or a value out of its range, is refused when the optimizer is
    /// built, naming the group.
    public init(_ parameters: [Parameter], preset: Preset, options: [String: Double] = [:], choices: [String: String] = [:]) {
        self.init(parameters, rules: preset.rules, options: preset.defaults.merging(options) { $1 },
                  choices: preset.choices.merging(choices) { $1 })
    }

    /// The learning rate, option `lr`.
    public var learningRate: Double? {
        get { options["lr"] }
        set { options["lr"] = newValue }
    }
}
