import Regula

/// How `regula list` and `regula inspect` show a rule.
enum RuleListing {
    static func lines(for rule: Rule) -> [String] {
        var lines = ["\(rule.name)  v\(rule.version)  [\(rule.dtypes.map(\.rawValue).joined(separator: ", "))]  from \(rule.origin)",
                     "    \(rule.summary)"]
        if rule.hyperparameters.isEmpty { lines.append("    (no hyperparameters)") }
        for hyperparameter in rule.hyperparameters { lines.append("    \(hyperparameter)") }
        for slot in rule.stateSlots {
            let start = slot.initialFrom.map { "starts at \($0)" } ?? "starts at \(slot.initialValue)"
            let presence = slot.enabledBy.map { ", only while \($0) is on" } ?? ""
            lines.append("    state \(slot.name) (\(slot.shape.rawValue), \(start)\(presence))" + (slot.doc.isEmpty ? "" : ": \(slot.doc)"))
        }
        for reduction in rule.reductions {
            let scope = reduction.scope == .step ? "every parameter of the step" : "the parameter"
            lines.append("    reduction \(reduction.name) (\(reduction.combine.rawValue) over \(scope))"
                         + (reduction.doc.isEmpty ? "" : ": \(reduction.doc)"))
        }
        return lines
    }

    static func lines(for chain: NamedChain) -> [String] {
        var lines = ["\(chain.name)  chain  from \(chain.origin)", "    \(chain.summary)",
                     "    runs \(chain.rules.joined(separator: " > "))"]
        for (name, value) in chain.defaults.sorted(by: { $0.key < $1.key }) {
            lines.append("    default \(name) = \(value)")
        }
        return lines
    }
}
