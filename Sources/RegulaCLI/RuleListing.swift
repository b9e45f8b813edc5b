import Regula

/// How `regula list` and `regula inspect` show a rule.
enum RuleListing {
    static func lines(for rule: Rule) -> [String] {
        var lines = ["\(rule.name)  v\(rule.version)  [\(rule.dtypes.map(\.rawValue).joined(separator: ", "))]  from \(rule.origin)",
                     "    \(rule.summary)"]
        if rule.hyperparameters.isEmpty { lines.append("    hyperparameters: none") }
        for hyperparameter in rule.hyperparameters {
            let defaultText = hyperparameter.defaultValue.map { "default \($0)" } ?? "required"
            lines.append("    \(hyperparameter.name): \(hyperparameter.kind.rawValue), \(defaultText), "
                         + "range \(hyperparameter.rangeDescription)"
                         + (hyperparameter.doc.isEmpty ? "" : " — \(hyperparameter.doc)"))
        }
        for slot in rule.stateSlots {
            lines.append("    state \(slot.name): \(slot.shape.rawValue), starts at \(slot.initialValue)"
                         + (slot.doc.isEmpty ? "" : " — \(slot.doc)"))
        }
        return lines
    }
}
