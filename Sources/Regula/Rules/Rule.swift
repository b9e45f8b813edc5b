/// An update rule: one link of an optimizer's chain, such as `l1`, `momentum` or `sgd`.
///
/// A rule describes itself (name, hyperparameters, state) and owns a kernel that transforms one block of a
/// parameter. Rules come from shared objects (see ``RuleRegistry/loadPlugin(at:onConflict:)``) or from Swift code
/// (``init(name:summary:version:dtypes:hyperparameters:stateSlots:reductions:reduce:scratchCount:prepare:check:kernel:fileID:line:)``);
/// the optimizer runs both
/// through the same C calling path.
public struct Rule: Sendable, CustomStringConvertible {
    /// Where a rule came from.
    public enum Origin: Sendable, Equatable, Codable, CustomStringConvertible {
        /// Loaded from the shared object at this absolute path.
        case sharedObject(path: String)
        /// Defined in Swift code at this source location.
        case swift(location: String)

        /// The path, or `Swift code at FILE:LINE`.
        public var description: String {
            switch self {
            case .sharedObject(let path): path
            case .swift(let location): "Swift code at \(location)"
            }
        }
    }

    /// The name users select the rule by, unique in a registry.
    public let name: String
    /// One line: what the rule does to the update.
    public let summary: String
    /// The rule's own revision number.
    public let version: Int
    /// The element types the rule's kernel supports.
    public let dtypes: [DType]
    /// The hyperparameters the rule reads, in the order its kernel receives them.
    public let hyperparameters: [Hyperparameter]
    /// The state the rule keeps per parameter, in the order its kernel receives it.
    public let stateSlots: [StateSlot]
    /// Values the rule needs over the whole parameter before its kernel runs; empty for most rules.
    public let reductions: [Reduction]
    /// Whether the rule declares that its kernel never fails (`REGULA_RULE_NEVER_FAILS`). A step made only
    /// of such rules needs no undo journal.
    public let neverFails: Bool
    /// Whether the rule declares that it never writes the parameter, only the update
    /// (`REGULA_RULE_UPDATE_ONLY`). A chain made only of such rules could never move a parameter and is refused.
    public let updateOnly: Bool
    /// Doubles of per-parameter scratch the rule's prepare function fills once per step for its blocks.
    public let scratchCount: Int
    /// Whether the rule sees each parameter whole (`REGULA_RULE_WHOLE_TENSOR`, ABI 1.3): its kernel runs once
    /// per parameter and step on one block covering it, as Muon's orthogonalisation needs, instead of once
    /// per block.
    public let isWholeTensor: Bool
    /// The parameter ranks the rule steps (`min_rank`...`max_rank`, ABI 1.3); ``allRanks`` when it sets no
    /// bound. An optimizer refuses a parameter of another rank for this rule.
    public let ranks: ClosedRange<Int>
    /// Where the rule came from.
    public let origin: Origin
    /// The C entry points behind the rule.
    let kernel: RuleKernel

    init(name: String, summary: String, version: Int, dtypes: [DType], hyperparameters: [Hyperparameter],
         stateSlots: [StateSlot], reductions: [Reduction], neverFails: Bool = false, updateOnly: Bool = false,
         scratchCount: Int = 0, isWholeTensor: Bool = false, ranks: ClosedRange<Int> = Rule.allRanks,
         origin: Origin, kernel: RuleKernel) {
        self.name = name
        self.summary = summary
        self.version = version
        self.dtypes = dtypes
        self.hyperparameters = hyperparameters
        self.stateSlots = stateSlots
        self.reductions = reductions
        self.neverFails = neverFails
        self.updateOnly = updateOnly
        self.scratchCount = scratchCount
        self.isWholeTensor = isWholeTensor
        self.ranks = ranks
        self.origin = origin
        self.kernel = kernel
    }

    /// The hyperparameter called `name`, if the rule declares one.
    public func hyperparameter(named name: String) -> Hyperparameter? {
        hyperparameters.first { $0.name == name }
    }

    /// Whether the rule relies on something ABI 1.2 added: a prepare function or scratch, a slot that starts
    /// from an option or exists only when one is on, or a reduction over the whole step.
    var usesABI12: Bool {
        kernel.prepare != nil || scratchCount > 0 || reductions.contains { $0.scope == .step }
            || stateSlots.contains { $0.initialFrom != nil || $0.enabledBy != nil }
    }

    /// Every rank a parameter may have: 1 to ``Parameter/maximumRank``.
    public static let allRanks = 1...Parameter.maximumRank

    /// Whether the rule relies on something ABI 1.3 added that a 1.2 host would ignore: whole tensors or rank
    /// bounds.
    var usesABI13: Bool {
        isWholeTensor || ranks != Self.allRanks
            || stateSlots.contains { $0.startsFromParameter || $0.shape == .rows || $0.shape == .columns || $0.ranks != Self.allRanks }
    }

    /// `name — summary`.
    public var description: String { "\(name) — \(summary)" }

    /// Every problem in the rule's declaration; empty when it is well formed.
    ///
    /// The same checks apply to rules from shared objects and from Swift code.
    var declarationProblems: [String] {
        var problems: [String] = []
        if !isIdentifier(name) { problems.append("rule name \(quoted(name)) is not an identifier") }
        if dtypes.isEmpty { problems.append("rule \(quoted(name)) supports no element type") }
        for duplicate in duplicates(in: hyperparameters.map(\.name)) {
            problems.append("rule \(quoted(name)) declares hyperparameter \(quoted(duplicate)) twice")
        }
        for duplicate in duplicates(in: stateSlots.map(\.name)) {
            problems.append("rule \(quoted(name)) declares state slot \(quoted(duplicate)) twice")
        }
        for hyperparameter in hyperparameters {
            let label = "hyperparameter \(quoted(hyperparameter.name)) of rule \(quoted(name))"
            if !isIdentifier(hyperparameter.name) { problems.append("\(label): the name is not an identifier") }
            if hyperparameter.kind == .choice { problems += choiceProblems(of: hyperparameter, label: label) }
            let range = hyperparameter.range
            if range.lowerBound.isNaN || range.upperBound.isNaN { problems.append("\(label): its range has NaN") }
            if hyperparameter.kind != .choice, let value = hyperparameter.defaultValue {
                if !value.isFinite {
                    problems.append("\(label): default \(value) is not finite")
                } else if let problem = hyperparameter.problem(with: value) {
                    problems.append("\(label): default \(format(value)) is outside its range (\(problem))")
                }
            }
        }
        let names = hyperparameters.map(\.name)
        for slot in stateSlots {
            let label = "state slot \(quoted(slot.name)) of rule \(quoted(name))"
            if !isIdentifier(slot.name) { problems.append("\(label): the name is not an identifier") }
            if !slot.initialValue.isFinite { problems.append("\(label): initial value is not finite") }
            if slot.isNonNegative, slot.initialFrom == nil, slot.initialValue < 0 {
                problems.append("\(label): declared non-negative, but its initial value is \(format(slot.initialValue))")
            }
            if slot.isNonNegative, let source = slot.initialFrom,
               let range = hyperparameter(named: source)?.range, range.lowerBound < 0 {
                problems.append("\(label): declared non-negative, but it starts from \(quoted(source)), which may be as low as \(format(range.lowerBound))")
            }
            if let source = slot.initialFrom, !names.contains(source) {
                problems.append("\(label): initial_from names \(quoted(source)), which is not one of the rule's hyperparameters (\(names.joined(separator: ", ")))")
            }
            if let switchName = slot.enabledBy {
                if !names.contains(switchName) {
                    problems.append("\(label): enabled_by names \(quoted(switchName)), which is not one of the rule's hyperparameters (\(names.joined(separator: ", ")))")
                }
                if slot.shape != .elementwise { problems.append("\(label): enabled_by applies to elementwise slots only") }
            }
            if (slot.shape == .rows || slot.shape == .columns) && !isWholeTensor {
                problems.append("\(label): a \(slot.shape) slot needs a whole-tensor rule (REGULA_RULE_WHOLE_TENSOR); a block holds part of a row")
            }
            if (slot.shape == .rows || slot.shape == .columns) && slot.ranks.lowerBound < 2 {
                problems.append("\(label): a \(slot.shape) slot exists for ranks 2 and up, not \(slot.ranks.lowerBound)")
            }
            if slot.startsFromParameter && slot.shape != .elementwise {
                problems.append("\(label): only an elementwise slot can start from the parameter's values")
            }
            if slot.startsFromParameter && slot.initialFrom != nil {
                problems.append("\(label): starts from the parameter and from \(quoted(slot.initialFrom!)); choose one")
            }
        }
        if !(0...16).contains(scratchCount) {
            problems.append("rule \(quoted(name)) asks for \(scratchCount) scratch values; allowed: 0 to 16")
        }
        if scratchCount > 0 && kernel.prepare == nil {
            problems.append("rule \(quoted(name)) asks for scratch but has no prepare function to fill it")
        }
        for duplicate in duplicates(in: reductions.map(\.name)) {
            problems.append("rule \(quoted(name)) declares reduction \(quoted(duplicate)) twice")
        }
        for reduction in reductions where !isIdentifier(reduction.name) {
            problems.append("reduction \(quoted(reduction.name)) of rule \(quoted(name)): the name is not an identifier")
        }
        if !reductions.isEmpty && kernel.reduce == nil {
            problems.append("rule \(quoted(name)) declares reductions but no reduce function")
        }
        if isWholeTensor && !reductions.isEmpty {
            problems.append("rule \(quoted(name)) sees whole tensors and also declares reductions; a whole-tensor rule computes "
                            + "what it needs over its parameter itself")
        }
        if reductions.isEmpty && kernel.reduce != nil {
            problems.append("rule \(quoted(name)) has a reduce function but declares no reductions")
        }
        return problems
    }
}

extension Rule {
    /// What is wrong with a choice's names and range: 2 to 64 identifiers, each once, and the range of their indices.
    func choiceProblems(of choice: Hyperparameter, label: String) -> [String] {
        let names = choice.choices
        var problems: [String] = []
        if !(2...64).contains(names.count) {
            problems.append("\(label): a choice needs 2 to 64 names; it has \(names.count)")
        }
        for bad in names where !isIdentifier(bad) { problems.append("\(label): choice \(quoted(bad)) is not an identifier") }
        for repeated in duplicates(in: names) { problems.append("\(label): choice \(quoted(repeated)) is named twice") }
        if choice.range != 0...Double(max(names.count - 1, 0)) {
            problems.append("\(label): a choice's range must be [0, \(max(names.count - 1, 0))], the indices of its names, "
                            + "not [\(format(choice.range.lowerBound)), \(format(choice.range.upperBound))]")
        }
        if let index = choice.defaultValue, choice.defaultChoice == nil {
            problems.append("\(label): the default (index \(format(index))) is none of its names, which are "
                            + (names.isEmpty ? "none" : names.joined(separator: ", ")))
        }
        return problems
    }
}

/// Whether `text` is a C-style identifier, at most 64 characters.
func isIdentifier(_ text: String) -> Bool {
    guard let first = text.unicodeScalars.first, text.unicodeScalars.count <= 64 else { return false }
    let isLetter = { (c: Unicode.Scalar) in (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" }
    return isLetter(first) && text.unicodeScalars.allSatisfy { isLetter($0) || ($0 >= "0" && $0 <= "9") }
}

/// The elements that occur more than once, in order of their second occurrence.
func duplicates(in names: [String]) -> [String] {
    var seen = Set<String>()
    return names.filter { !seen.insert($0).inserted }
}

/// `"name"`, as messages quote user-facing names.
package func quoted(_ name: String) -> String { "\"\(name)\"" }
