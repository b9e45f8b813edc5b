/// An optimizer selected by one name that stands for a chain of rules, as optax builds `lamb` from
/// `scale_by_adam`, `add_decayed_weights`, `scale_by_trust_ratio` and a learning-rate step.
///
/// A named chain comes from a shared object (`regula_plugin.chains`, ABI 1.2) or from Swift code
/// (`registry.register(chain)`). Wherever an optimizer takes rule names, a chain's name
/// may stand in for its rules: `["l1", "lamb"]` runs `l1` and then the four rules of `lamb`. The rules are
/// looked up by name when an optimizer is built.
///
/// ```swift
/// let registry = try RuleRegistry.standard()
/// try registry.register(NamedChain(name: "sgd_momentum", summary: "heavy-ball SGD",
///                                  rules: ["momentum", "sgd"], defaults: ["momentum": 0.9]))
/// ```
public struct NamedChain: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The name users select the chain by; shares the namespace of rule names.
    public let name: String
    /// One line: what the chain does.
    public let summary: String
    /// The names of the rules it stands for, in the order they run.
    public let rules: [String]
    /// Values for hyperparameters of its rules that replace those rules' own defaults (`lamb`'s `eps` is
    /// 1e-6 where `scale_by_adam`'s is 1e-8). A user's options and an optimizer's defaults take precedence.
    public let defaults: [String: Double]
    /// Where the chain was declared.
    public let origin: Rule.Origin

    /// Declares a named chain in Swift code.
    /// - Parameters:
    ///   - name: An identifier, unique among the rules and chains of the registry it joins.
    ///   - summary: One line: what the chain does.
    ///   - rules: Names of rules (not chains), in the order they run; at least one, at most 32.
    ///   - defaults: Values replacing the rules' own defaults.
    ///   - fileID: Where the chain is declared, shown as its origin; leave the default.
    ///   - line: The line it is declared on, shown as its origin; leave the default.
    public init(name: String, summary: String, rules: [String], defaults: [String: Double] = [:],
                fileID: String = #fileID, line: Int = #line) {
        self.init(name: name, summary: summary, rules: rules, defaults: defaults, origin: .swift(location: "\(fileID):\(line)"))
    }

    init(name: String, summary: String, rules: [String], defaults: [String: Double], origin: Rule.Origin) {
        self.name = name
        self.summary = summary
        self.rules = rules
        self.defaults = defaults
        self.origin = origin
    }

    /// Upper bounds on a chain's size.
    static let maximumRules = 32
    static let maximumDefaults = 64

    /// `name = rule > rule > … — summary`.
    public var description: String { "\(name) = \(rules.joined(separator: " > ")) — \(summary)" }

    /// Every problem in the chain's declaration; empty when it is well formed. Whether its rules exist is
    /// checked when an optimizer uses it.
    var declarationProblems: [String] {
        var problems: [String] = []
        let label = "chain \(quoted(name))"
        if !isIdentifier(name) { problems.append("chain name \(quoted(name)) is not an identifier") }
        if !(1...Self.maximumRules).contains(rules.count) {
            problems.append("\(label) has \(rules.count) rules; allowed: 1 to \(Self.maximumRules)")
        }
        for rule in rules where !isIdentifier(rule) { problems.append("\(label) names rule \(quoted(rule)), which is not an identifier") }
        if rules.contains(name) { problems.append("\(label) names itself among its rules") }
        if defaults.count > Self.maximumDefaults {
            problems.append("\(label) has \(defaults.count) defaults; allowed: at most \(Self.maximumDefaults)")
        }
        for (option, value) in defaults.sorted(by: { $0.key < $1.key }) {
            if !isIdentifier(option) { problems.append("\(label): default \(quoted(option)) is not an identifier") }
            if !value.isFinite { problems.append("\(label): default \(quoted(option)) = \(value) is not finite") }
        }
        return problems
    }
}
