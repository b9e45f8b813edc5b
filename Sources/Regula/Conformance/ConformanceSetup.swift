/// What `regula check` runs a plugin's rules with: the test parameter's shape and the options the user gave
/// (`--shape`, `--option`). Whatever is not given the harness chooses, and its reports say what it chose.
public struct ConformanceSetup: Sendable, Equatable {
    /// The test parameter's shape (row-major), or `nil` to let the harness pick one within each rule's ranks
    /// (``shape(for:)``).
    public var shape: [Int]?
    /// Options given as numbers, by hyperparameter name; each rule that declares the name uses the value.
    public var options: [String: Double]
    /// Choices given by name, by hyperparameter name.
    public var choices: [String: String]

    /// The most elements a given shape may hold: every check keeps several copies of the parameter and its
    /// state, and the block-split check calls the kernel once per element.
    public static let maximumElements = 1 << 22

    /// The shape when the rule steps rank 1 (every rule of ABI 1.2 and before): odd, and more than two of the
    /// host's blocks.
    static let flatShape = [5003]
    /// The last two dimensions of the harness's shape for a rule that steps only ranks above 1: a matrix that is
    /// not square, so that a kernel mixing up rows and columns does not pass by chance.
    static let matrixShape = [24, 40]

    /// A setup of the given shape and options (none given: the harness chooses everything).
    public init(shape: [Int]? = nil, options: [String: Double] = [:], choices: [String: String] = [:]) {
        self.shape = shape
        self.options = options
        self.choices = choices
    }

    /// The shape `rule` is checked on: the given one, else `[5003]` when the rule steps rank 1 and keeps no
    /// factored (rows or columns) slot, else a 24 × 40 matrix, preceded by dimensions of 2 up to the rule's
    /// lowest rank. A rule with factored slots, such as Adafactor, is so checked where they exist; `--shape 5003`
    /// checks its vector path.
    public func shape(for rule: Rule) -> [Int] {
        if let shape { return shape }
        let factored = rule.stateSlots.contains { $0.shape == .rows || $0.shape == .columns }
        if rule.ranks.contains(1) && !factored { return Self.flatShape }
        return Array(repeating: 2, count: max(rule.ranks.lowerBound - 2, 0)) + Self.matrixShape
    }

    /// Refuses what no rule in `rules` (one plugin's) can be checked with: a shape that is malformed, too large
    /// or outside a rule's ranks; an option no rule declares; a number for a choice or a name for a number; a
    /// value outside a declaring rule's range; a name that is none of a choice's names.
    public func validate(for rules: [Rule]) throws(ConformanceSetupError) {
        if let shape { try Self.validate(shape, for: rules) }
        let declared = rules.flatMap(\.hyperparameters)
        let known = declared.map(\.name)
        for name in Set(options.keys).union(choices.keys).sorted() {
            let declarations = declared.filter { $0.name == name }
            guard let first = declarations.first else {
                throw .unknownOption(name, suggestion: suggestion(for: name, among: known),
                                     accepted: rules.map { ($0.name, $0.hyperparameters.map(\.name)) })
            }
            if let value = options[name] {
                guard first.kind != .choice else { throw .numberForChoice(name, value: value, choices: first.choices) }
                for rule in rules {
                    if let problem = rule.hyperparameter(named: name)?.problem(with: value) {
                        throw .outOfRange(name, value: value, rule: rule.name, allowed: problem)
                    }
                }
            }
            if let choice = choices[name] {
                guard first.kind == .choice else { throw .nameForNumber(name, given: choice) }
                for rule in rules {
                    guard let names = rule.hyperparameter(named: name)?.choices, !names.contains(choice) else { continue }
                    throw .unknownChoice(name, given: choice, rule: rule.name, suggestion: suggestion(for: choice, among: names),
                                         choices: names)
                }
            }
        }
    }

    /// Refuses a shape with no dimension or too many, a size below 1, too many elements, or a rank some rule
    /// does not step.
    static func validate(_ shape: [Int], for rules: [Rule]) throws(ConformanceSetupError) {
        guard (1...Parameter.maximumRank).contains(shape.count) else {
            throw .malformedShape(shape, reason: "it has \(shape.count) dimensions; allowed: 1 to \(Parameter.maximumRank)")
        }
        if let size = shape.first(where: { $0 < 1 }) {
            throw .malformedShape(shape, reason: "a size is \(size); every size must be at least 1")
        }
        let elements = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        guard elements <= maximumElements else {
            throw .malformedShape(shape, reason: "it holds \(elements) elements; allowed: at most \(maximumElements)")
        }
        if let rule = rules.first(where: { !$0.ranks.contains(shape.count) }) {
            throw .rankRefused(shape, rule: rule.name, ranks: rule.ranks)
        }
    }

    /// The values `rule` receives for what was given, by position in its declaration: a choice as its index.
    func givenValues(for rule: Rule) -> [Int: Double] {
        var given: [Int: Double] = [:]
        for (index, hyperparameter) in rule.hyperparameters.enumerated() {
            if let choice = choices[hyperparameter.name], let position = hyperparameter.choices.firstIndex(of: choice) {
                given[index] = Double(position)
            } else if let value = options[hyperparameter.name] {
                given[index] = value
            }
        }
        return given
    }
}
