import Regula

/// How `regula list` and `regula inspect` show a rule.
enum RuleListing {
    /// The rule's name, version, dtypes and origin, its summary, the ranks and whole tensors it needs (when it
    /// does), its hyperparameters, state and reductions.
    static func lines(for rule: Rule) -> [String] {
        var lines = ["\(rule.name)  v\(rule.version)  [\(rule.dtypes.map(\.rawValue).joined(separator: ", "))]  from \(rule.origin)",
                     "    \(rule.summary)"]
        if let note = tensorNote(for: rule) { lines.append("    \(note)") }
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

    /// `rank 2 only, whole tensor (one call per parameter and step)`, or nil for a block rule of any rank.
    static func tensorNote(for rule: Rule) -> String? {
        let ranks = rule.ranks == Rule.allRanks ? nil
            : rule.ranks.count == 1 ? "rank \(rule.ranks.lowerBound) only"
            : rule.ranks.upperBound == Parameter.maximumRank ? "ranks \(rule.ranks.lowerBound) and up"
            : "ranks \(rule.ranks.lowerBound) to \(rule.ranks.upperBound)"
        let whole = rule.isWholeTensor ? "whole tensor (one call per parameter and step)" : nil
        let parts = [ranks, whole].compactMap { $0 }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
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
