import Foundation

extension ReplaySpec {
    /// Runs the spec through an ``Optimizer`` built from `registry`, reading each step's gradients file (if
    /// it has one) when the step comes.
    ///
    /// - Throws: ``OptimizerError`` (or ``BuiltinRulesNotFound``) when the optimizer refuses the spec's rules
    ///   or options at construction; ``ReplayError`` naming the step (`spec.steps[3]: …`) when a step fails,
    ///   its `set` makes an option invalid, or its gradients file cannot be read or does not fit the parameters.
    public func run(registry: RuleRegistry? = nil) throws -> ReplayResult {
        let named = Dictionary(uniqueKeysWithValues: parameters.map { name, tensor in
            switch tensor {
            case .float32(let values): (name, Parameter(name, values: values))
            case .float64(let values): (name, Parameter(name, values: values))
            }
        })
        let optimizer = try Optimizer(
            groups.map { ParamGroup($0.parameters.map { named[$0]! }, options: $0.options) },
            rules: rules, defaults: defaults, registry: registry)
        for (index, step) in steps.enumerated() {
            for change in step.changes { optimizer.groups[change.group].options[change.name] = change.value }
            let gradients = switch step.gradients {
            case .inline(let gradients): gradients
            case .file(let url):
                try SpecFiles.gradients(at: url, for: "spec.steps[\(index)].grads", parameters: parameters, dtype: dtype)
            }
            for (name, parameter) in named {
                switch gradients[name] {
                case .float32(let gradient)?: try parameter.setGradient(gradient)
                case .float64(let gradient)?: try parameter.setGradient(gradient)
                case nil: parameter.clearGradient()
                }
            }
            do { try optimizer.step() } catch { throw ReplayError("spec.steps[\(index)]: \(error)") }
        }
        return ReplayResult(
            dtype: dtype,
            parameters: try named.mapValues { parameter in
                switch dtype {
                case .float32: try parameter.values(as: Float.self).map(Double.init)
                case .float64: try parameter.values(as: Double.self)
                }
            },
            state: named.compactMapValues { optimizer.state(of: $0)?.slots })
    }
}
