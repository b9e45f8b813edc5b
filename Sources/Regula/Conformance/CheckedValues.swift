/// The hyperparameter values the conformance checks run a rule at, and how the report reads them.
///
/// The options given (`--option`) are used as given. Every other one is chosen to exercise the rule: a zero
/// default is raised to a typical non-zero value (a rate of 0 would hide a kernel that ignores it), unless the
/// rule's own check refuses that, and the report says which values came from where.
struct CheckedValues {
    /// One value per hyperparameter, in the rule's declaration order.
    let values: [Double]
    /// `lr=0.5 (given), momentum=0.1 (default 0, raised), nesterov=0 (default)`.
    let described: String

    /// Values the rule accepts, with the given ones fixed and the others: every zero default raised to a
    /// typical non-zero value, else one zero raised at a time, else the defaults (required ones at a typical
    /// value), else all typical values; `nil` when the rule's check refuses every one of these, with its words
    /// for the first.
    static func accepted(by rule: Rule, given: [Int: Double]) -> Result<CheckedValues, Refusal> {
        let declared = rule.hyperparameters
        let base = defaults(of: rule, given: given)
        var candidates = [zip(declared, base).enumerated().map { given[$0] == nil && $1.1 == 0 ? typical($1.0) : $1.1 }]
        for (index, hyperparameter) in declared.enumerated() where base[index] == 0 && given[index] == nil {
            var raised = base
            raised[index] = typical(hyperparameter)
            candidates.append(raised)
        }
        candidates += [base, declared.enumerated().map { given[$0] ?? typical($1) }]
        guard let values = candidates.first(where: { rule.kernel.refusal(of: $0) == nil }) else {
            return .failure(Refusal(words: rule.kernel.refusal(of: candidates[0]) ?? ""))
        }
        return .success(CheckedValues(values: values, described: describe(values, of: rule, given: given)))
    }

    /// The rule's check refused every combination tried; its words for the first.
    struct Refusal: Error {
        let words: String
    }

    /// The defaults with the given values laid over them, and a typical value for each required hyperparameter.
    static func defaults(of rule: Rule, given: [Int: Double] = [:]) -> [Double] {
        rule.hyperparameters.enumerated().map { given[$0] ?? $1.defaultValue ?? typical($1) }
    }

    /// `name=value (where it came from), …`; a choice by its name.
    static func describe(_ values: [Double], of rule: Rule, given: [Int: Double]) -> String {
        let pairs = zip(rule.hyperparameters, values).enumerated().map { index, pair in
            let (hyperparameter, value) = pair
            let origin = given[index] != nil ? "given"
                : hyperparameter.defaultValue == value ? "default"
                : hyperparameter.defaultValue.map { "default \(text(of: $0, for: hyperparameter)), raised" } ?? "required, typical"
            return "\(hyperparameter.name)=\(text(of: value, for: hyperparameter)) (\(origin))"
        }
        return pairs.isEmpty ? "no hyperparameters" : pairs.joined(separator: ", ")
    }

    /// `name=value, …`, for the words of a check run at other values.
    static func describe(_ values: [Double], of rule: Rule) -> String {
        let pairs = zip(rule.hyperparameters, values).map { "\($0.name)=\(text(of: $1, for: $0))" }
        return pairs.isEmpty ? "no hyperparameters" : pairs.joined(separator: ", ")
    }

    /// A value as users write it: a number, or a choice's name.
    static func text(of value: Double, for hyperparameter: Hyperparameter) -> String {
        if hyperparameter.kind == .choice, let index = Int(exactly: value), hyperparameter.choices.indices.contains(index) {
            return hyperparameter.choices[index]
        }
        return format(value)
    }

    /// A non-zero value inside the range: 0.1 or 0.9 where allowed, else a bound.
    static func typical(_ hyperparameter: Hyperparameter) -> Double {
        let range = hyperparameter.range
        switch hyperparameter.kind {
        case .boolean, .choice: return 1
        case .integer:
            return [1, 2, range.lowerBound, range.upperBound].first { range.contains($0) && $0.isFinite && $0 != 0 } ?? 0
        case .real:
            return [0.1, 0.9, 0.5, 1, range.lowerBound, range.upperBound].first { range.contains($0) && $0.isFinite && $0 != 0 }
                ?? range.lowerBound
        }
    }
}
