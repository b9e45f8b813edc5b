import Foundation

/// What a replay ends with: every parameter's values and every stepped parameter's state.
public struct ReplayResult: Sendable, Equatable {
    /// Final values by parameter name, exactly converted to `Double`.
    public var parameters: [String: [Double]]
    /// Final state by parameter name, then slot name; only parameters that took a step have state.
    public var state: [String: [String: [Double]]]

    /// `{"params": {name: [numbers]}, "state": {name: {slot: [numbers]}}}`, keys sorted, numbers in the
    /// shortest form that reads back to the same `Double`; a non-finite number is written as `null`.
    public var json: String {
        func list(_ values: [Double]) -> String {
            "[" + values.map { $0.isFinite ? "\($0)" : "null" }.joined(separator: ", ") + "]"
        }
        func object<Value>(_ entries: [String: Value], _ body: (Value) -> String) -> String {
            "{" + entries.keys.sorted().map { "\(jsonString($0)): \(body(entries[$0]!))" }.joined(separator: ", ") + "}"
        }
        return "{\"params\": \(object(parameters, list)), \"state\": \(object(state) { object($0, list) })}"
    }
}

extension ReplaySpec {
    /// Runs the spec through an ``Optimizer`` built from `registry`.
    ///
    /// - Throws: ``OptimizerError`` (or ``BuiltinRulesNotFound``) when the optimizer refuses the spec's
    ///   options, at construction or at the step whose `set` makes them invalid.
    public func run(registry: RuleRegistry? = nil) throws -> ReplayResult {
        let named = Dictionary(uniqueKeysWithValues: parameters.map { name, values in
            switch dtype {
            case .float32: (name, Parameter(name, values: values.map(Float.init)))
            case .float64: (name, Parameter(name, values: values))
            }
        })
        let optimizer = try Optimizer(
            groups.map { ParamGroup($0.parameters.map { named[$0]! }, options: $0.options) },
            rules: rules, defaults: defaults, registry: registry)
        for step in steps {
            for change in step.changes { optimizer.groups[change.group].options[change.name] = change.value }
            for (name, parameter) in named {
                if let gradient = step.gradients[name] {
                    switch dtype {
                    case .float32: try parameter.setGradient(gradient.map(Float.init))
                    case .float64: try parameter.setGradient(gradient)
                    }
                } else {
                    parameter.clearGradient()
                }
            }
            try optimizer.step()
        }
        return ReplayResult(
            parameters: try named.mapValues { parameter in
                switch dtype {
                case .float32: try parameter.values(as: Float.self).map(Double.init)
                case .float64: try parameter.values(as: Double.self)
                }
            },
            state: named.compactMapValues { optimizer.state(of: $0)?.slots })
    }

}

/// A JSON string literal.
func jsonString(_ text: String) -> String {
    var escaped = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": escaped += "\\\""
        case "\\": escaped += "\\\\"
        case "\n": escaped += "\\n"
        case _ where scalar.value < 0x20: escaped += String(format: "\\u%04x", scalar.value)
        default: escaped.unicodeScalars.append(scalar)
        }
    }
    return escaped + "\""
}
