import Regula

/// How `regula list` and `regula inspect` show a rule.
enum RuleListing {
    static func lines(for rule: Rule) -> [String] {
        var lines = ["\(rule.name)  v\(rule.version)  [\(rule.dtypes.map(\.rawValue).joined(separator: ", "))]  from \(rule.origin)",
                     "    \(rule.summary)"]
        if rule.hyperparameters.isEmpty { lines.append("    (no hyperparameters)") }
        for hyperparameter in rule.hyperparameters { lines.append("    \(hyperparameter)") }
        for slot in rule.stateSlots {
            lines.append("    state \(slot.name) (\(slot.shape.rawValue), starts at \(slot.initialValue))"
                         + (slot.doc.isEmpty ? "" : ": \(slot.doc)"))
        }
        for reduction in rule.reductions {
            lines.append("    reduction \(reduction.name) (\(reduction.combine.rawValue) over the parameter)"
                         + (reduction.doc.isEmpty ? "" : ": \(reduction.doc)"))
        }
        return lines
    }
}
