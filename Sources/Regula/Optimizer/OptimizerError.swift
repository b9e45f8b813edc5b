/// Why an optimizer could not be built or could not step. A refused step changes nothing.
public enum OptimizerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No rule has this name; the closest name if any, and every name there is. `isChain` when the name is a
    /// named chain, asked for where only a rule will do.
    case unknownRule(String, suggestion: String?, available: [String], isChain: Bool = false)
    /// A named chain runs a rule that is not loaded.
    case chainRuleNotFound(chain: String, rule: String, origin: String)
    /// Every rule of the chain declares that it never writes the parameters, so steps could change nothing.
    case noRuleAppliesTheStep(rules: [String])
    /// A rule of a registry that only describes plugins (``RuleRegistry/init(describingWith:)``): its code was
    /// never loaded into this process, so it cannot run.
    case ruleOnlyDescribed(String, origin: String)
    /// Two parameters of the optimizer have the same name (checkpoints and state need unique names).
    case duplicateParameterName(String)
    /// Two parameters' names are different strings that read as one (equal after Unicode NFKC
    /// normalization, such as `K` U+212A KELVIN SIGN and `K`), so a checkpoint or a file naming one could
    /// silently mean the other.
    case parameterNamesReadAlike(String, String)
    /// State handed to the optimizer does not fit the parameter and the chain.
    case stateRefused(parameter: String, reason: String)
    /// The chain has no rules.
    case emptyChain
    /// No rule of the chain declares this option. `group` is nil for the optimizer's defaults.
    case unknownHyperparameter(String, group: Int?, suggestion: String?, accepted: [String], rules: [String])
    /// A choice given as a number in a group's options (or the defaults); choices are given by name.
    case choiceGivenAsNumber(String, value: Double, group: Int?, choices: [String])
    /// A name in a group's choices (or the default choices) that the chain declares as a number.
    case numberGivenAsChoice(String, choice: String, group: Int?, choiceOptions: [String])
    /// A choice's value that is none of the names a rule declares for it; the closest name if any.
    case unknownChoice(String, choice: String, group: Int?, rule: String, suggestion: String?, choices: [String])
    /// A required hyperparameter has no value in the group or the defaults.
    case missingHyperparameter(String, group: Int, rule: String)
    /// A value outside what the rule allows. `group` is nil for the optimizer's defaults.
    case hyperparameterOutOfRange(String, value: Double, group: Int?, rule: String, allowed: String)
    /// A rule refused a combination of values through its check, with its words.
    case combinationRejected(rule: String, group: Int, message: String)
    /// One parameter listed in several groups (or twice in one).
    case parameterInSeveralGroups(String, groups: [Int])
    /// A rule of the chain cannot handle the parameter's element type.
    case unsupportedDType(rule: String, dtype: DType, parameter: String)
    /// A rule of the chain steps parameters of other ranks only (``Rule/ranks``), such as Muon's matrices.
    case rankRefused(rule: String, parameter: String, shape: [Int], ranks: ClosedRange<Int>)
    /// A shape that cannot be the parameter's: its sizes, the parameter's element count, and why.
    case shapeRefused(parameter: String, shape: [Int], count: Int, reason: String)
    /// A gradient whose element count differs from its parameter's.
    case gradientLength(parameter: String, expected: Int, got: Int)
    /// A parameter's values or gradient read or written as another element type than the one it holds.
    case wrongElementType(parameter: String, holds: DType, used: DType)
    /// A wrapped gradient whose memory overlaps the parameter's own values.
    case gradientOverlapsValues(parameter: String)
    /// A rule whose reduction spans every parameter of the step (such as `clip_global_norm`), in a chain of
    /// `group`, cannot span the parameters of the groups that run other chains; `reason` says why.
    case reductionSpansChains(rule: String, group: Int, chain: String, reason: String)
    /// A group whose parameters hold state of one chain now names another (``ParamGroup/rules``).
    case groupChainChanged(group: Int, from: String, to: String)
    /// A rule's kernel failed; the step stopped there.
    case kernelFailed(rule: String, parameter: String, status: Int32, message: String)
    /// An optimizer built without a registry found no rules to look its names up in: building
    /// ``RuleRegistry/shared()`` failed (most often, the built-in rules are nowhere to be found).
    case rulesUnavailable(RegistryError)

    /// A sentence naming what was wrong and what is allowed.
    public var description: String {
        switch self {
        case .unknownRule(let name, let suggestion, let available, let isChain):
            if isChain {
                return "\(quoted(name)) is a named chain, not a rule; use it where an optimizer takes rule names"
            }
            return "unknown rule \(quoted(name))" + (suggestion.map { " (did you mean \(quoted($0))?)" } ?? "")
                + (available.isEmpty ? "; no rules are loaded" : "; available rules and chains: " + available.joined(separator: ", "))
        case .chainRuleNotFound(let chain, let rule, let origin):
            return "chain \(quoted(chain)) (from \(origin)) runs rule \(quoted(rule)), which is not loaded; "
                + "load the plugin that provides it"
        case .ruleOnlyDescribed(let rule, let origin):
            return "rule \(quoted(rule)) (from \(origin)) was only described by a probe process and never loaded into this "
                + "one, so it cannot run; build the optimizer from a registry that loads plugins (RuleRegistry(probe:))"
        case .noRuleAppliesTheStep(let rules):
            return "no rule of the chain \(rules.joined(separator: " > ")) writes the parameters, so a step would change "
                + "nothing; end the chain with a rule that applies the update, such as sgd"
        case .stateRefused(let parameter, let reason):
            return "the state given for parameter \(quoted(parameter)) is refused: \(reason)"
        case .duplicateParameterName(let name):
            return "two parameters are named \(quoted(name)); give each parameter of an optimizer its own name"
        case .parameterNamesReadAlike(let first, let second):
            return "two parameters' names: " + NameNormalization.clash(first, second)
        case .emptyChain:
            return "an optimizer needs at least one rule (for example [\"sgd\"])"
        case .unknownHyperparameter(let name, let group, let suggestion, let accepted, let rules):
            return "unknown hyperparameter \(quoted(name)) in \(place(group))"
                + (suggestion.map { " (did you mean \(quoted($0))?)" } ?? "")
                + "; rules \(rules.joined(separator: ", ")) take: "
                + (accepted.isEmpty ? "nothing" : accepted.joined(separator: ", "))
        case .choiceGivenAsNumber(let name, let value, let group, let choices):
            return "hyperparameter \(quoted(name)) in \(place(group)) is a choice: give it by name in choices, not as the number "
                + "\(format(value)) in options; its names: \(choices.joined(separator: ", "))"
        case .numberGivenAsChoice(let name, let choice, let group, let choiceOptions):
            return "hyperparameter \(quoted(name)) in \(place(group)) takes a number, so give it in options, not as \(quoted(choice)) "
                + "in choices; the chain's choices: " + (choiceOptions.isEmpty ? "none" : choiceOptions.joined(separator: ", "))
        case .unknownChoice(let name, let choice, let group, let rule, let suggestion, let choices):
            return "hyperparameter \(quoted(name)) = \(quoted(choice)) in \(place(group)) is not a choice of rule \(rule)"
                + (suggestion.map { " (did you mean \(quoted($0))?)" } ?? "") + "; allowed: \(choices.joined(separator: ", "))"
        case .missingHyperparameter(let name, let group, let rule):
            return "missing required hyperparameter \(quoted(name)) for rule \(rule) in group \(group); "
                + "give it in the group or in the optimizer's defaults"
        case .hyperparameterOutOfRange(let name, let value, let group, let rule, let allowed):
            return "hyperparameter \(quoted(name)) = \(format(value)) in \(place(group)) is not allowed by rule \(rule); \(allowed)"
        case .combinationRejected(let rule, let group, let message):
            return "rule \(rule) refuses the options of group \(group): \(message)"
        case .parameterInSeveralGroups(let name, let groups):
            return "parameter \(quoted(name)) appears in more than one group (groups "
                + groups.map(String.init).joined(separator: ", ") + "); a parameter belongs to exactly one group"
        case .rankRefused(let rule, let parameter, let shape, let ranks):
            let steps = ranks.count == 1 ? "rank \(ranks.lowerBound) only" : "ranks \(ranks.lowerBound) to \(ranks.upperBound)"
            return "rule \(quoted(rule)) steps parameters of \(steps); parameter \(quoted(parameter)) has shape "
                + "[\(shape.map(String.init).joined(separator: ", "))] (rank \(shape.count))"
        case .unsupportedDType(let rule, let dtype, let parameter):
            return "rule \(rule) does not support \(dtype), the element type of parameter \(quoted(parameter))"
        case .gradientLength(let parameter, let expected, let got):
            return "gradient for parameter \(quoted(parameter)) has \(got) elements; the parameter has \(expected)"
        case .wrongElementType(let parameter, let holds, let used):
            return "parameter \(quoted(parameter)) holds \(holds) values, so its values and gradient are [\(holds.swiftName)], "
                + "not [\(used.swiftName)]"
        case .gradientOverlapsValues(let parameter):
            return "the gradient given for parameter \(quoted(parameter)) overlaps the parameter's own values; "
                + "a gradient needs memory of its own"
        case .reductionSpansChains(let rule, let group, let chain, let reason):
            return "rule \(rule) in group \(group)'s chain (\(chain)) folds a reduction over every parameter of the step, \(reason)"
        case .groupChainChanged(let group, let from, let to):
            return "group \(group) now runs rules \(to), but its parameters hold the state of rules \(from); a group's chain "
                + "stays as it was once its parameters have state (clear their state, or build a new optimizer)"
        case .kernelFailed(let rule, let parameter, let status, let message):
            return "rule \(rule) failed on parameter \(quoted(parameter)) (status \(status)): \(message)"
        case .rulesUnavailable(let error):
            return error.description
        case .shapeRefused(let parameter, let shape, _, let reason):
            return "shape \(shape) refused for parameter \(quoted(parameter)): \(reason)"
        }
    }

    private func place(_ group: Int?) -> String { group.map { "group \($0)" } ?? "the optimizer's defaults" }
}
