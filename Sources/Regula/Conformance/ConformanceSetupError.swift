/// Why `regula check` cannot run a plugin's rules with the shape or options it was given (`--shape`,
/// `--option`). Each description names the offending value and what is allowed.
public enum ConformanceSetupError: Error, Sendable, CustomStringConvertible {
    /// A shape with no dimension or too many, a size below 1, or too many elements.
    case malformedShape([Int], reason: String)
    /// A shape of a rank the named rule does not step.
    case rankRefused([Int], rule: String, ranks: ClosedRange<Int>)
    /// An option no rule of the plugin declares; the closest name, and each rule's names.
    case unknownOption(String, suggestion: String?, accepted: [(rule: String, names: [String])])
    /// A number given for a choice.
    case numberForChoice(String, value: Double, choices: [String])
    /// A name given for an option that takes a number.
    case nameForNumber(String, given: String)
    /// A number outside the range of a rule that declares the option.
    case outOfRange(String, value: Double, rule: String, allowed: String)
    /// A name that is none of the choice's names in the rule.
    case unknownChoice(String, given: String, rule: String, suggestion: String?, choices: [String])

    /// A sentence naming the offending value and what is allowed.
    public var description: String {
        switch self {
        case .malformedShape(let shape, let reason):
            return "--shape \(Self.text(shape)) is refused: \(reason)"
        case .rankRefused(let shape, let rule, let ranks):
            return "--shape \(Self.text(shape)) has rank \(shape.count), but rule \(quoted(rule)) steps parameters of "
                + Conformance.describe(ranks)
        case .unknownOption(let name, let suggestion, let accepted):
            let taken = accepted.map { "rule \($0.rule) takes: \($0.names.isEmpty ? "nothing" : $0.names.joined(separator: ", "))" }
            return "--option \(name): no rule of the plugin takes \(quoted(name))"
                + (suggestion.map { " (did you mean \(quoted($0))?)" } ?? "") + "; " + taken.joined(separator: "; ")
        case .numberForChoice(let name, let value, let choices):
            return "--option \(name)=\(format(value)): \(quoted(name)) is a choice; give one of its names: \(choices.joined(separator: ", "))"
        case .nameForNumber(let name, let given):
            return "--option \(name)=\(given): \(quoted(name)) takes a number, not a name"
        case .outOfRange(let name, let value, let rule, let allowed):
            return "--option \(name)=\(format(value)) is not allowed by rule \(rule); \(allowed)"
        case .unknownChoice(let name, let given, let rule, let suggestion, let choices):
            return "--option \(name)=\(given): \(quoted(given)) is not a choice of rule \(rule)"
                + (suggestion.map { " (did you mean \(quoted($0))?)" } ?? "") + "; allowed: \(choices.joined(separator: ", "))"
        }
    }

    /// `24,16`, as the shape is written on the command line.
    static func text(_ shape: [Int]) -> String { shape.map(String.init).joined(separator: ",") }
}
