/// A set of parameters that share options, like an entry of torch's `param_groups`.
///
/// When an ``Optimizer`` is built, every hyperparameter of its chain is filled into each group's
/// ``options``: the group's own value, else the optimizer's default, else the rule's default. Changing an
/// option between steps (`optimizer.groups[0].learningRate *= 0.9`) takes effect at the next step, which
/// validates it first and refuses to run, changing nothing, if it is not allowed.
public struct ParamGroup: Sendable {
    /// The group's parameters.
    public let parameters: [Parameter]
    /// Hyperparameter values by name.
    public var options: [String: Double]
    /// The values of choice hyperparameters (such as `adjust_lr_fn`), by name: each one of the names its rules
    /// declare. Changed between steps like ``options``; a choice given in ``options`` as a number is refused.
    public var choices: [String: String]

    /// A group of `parameters` with its own `options` and `choices`, which override the optimizer's defaults.
    public init(_ parameters: [Parameter], options: [String: Double] = [:], choices: [String: String] = [:]) {
        self.parameters = parameters
        self.options = options
        self.choices = choices
    }

    /// The learning rate, option `lr`.
    public var learningRate: Double? {
        get { options["lr"] }
        set { options["lr"] = newValue }
    }
}
