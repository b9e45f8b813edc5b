import Foundation

extension ReplaySpec {
    /// Runs the spec through an ``Optimizer`` built from `registry`, reading each step's gradients file (if
    /// it has one) when the step comes.
    ///
    /// - Throws: ``ReplayError`` with the optimizer's words (and ``ReplayError/optimizerError``) when the
    ///   optimizer refuses the spec's rules or options at construction; naming the step (`spec.steps[3]: …`)
    ///   when a step fails, its `set` makes an option invalid, or its gradients file cannot be read or does not
    ///   fit the parameters.
    public func run(registry: RuleRegistry? = nil) throws(ReplayError) -> ReplayResult {
        try run { (groups) throws(OptimizerError) in
            try Optimizer(groups, rules: rules, defaults: defaults, choices: defaultChoices, registry: registry)
        }
    }

    /// Runs the spec through the optimizer `build` makes of its groups (each over the spec's parameters, with
    /// its own rules, options and choices as the spec gives them), so a test can replay a spec through an
    /// optimizer built another way, such as from a ``Preset``.
    /// - Throws: ``ReplayError`` as ``run(registry:)``; `build`'s refusal with its words.
    package func run(building build: (_ groups: [ParamGroup]) throws(OptimizerError) -> Optimizer) throws(ReplayError) -> ReplayResult {
        var named: [String: Parameter] = [:]
        try refusing("spec.shapes: ") { () throws(OptimizerError) in
            for (name, tensor) in parameters {
                let shape = shapes[name] ?? [tensor.count]
                named[name] = switch tensor {
                case .float32(let values): try Parameter(name, values: values, shape: shape)
                case .float64(let values): try Parameter(name, values: values, shape: shape)
                }
            }
        }
        let optimizer = try refusing("") { () throws(OptimizerError) in
            try build(groups.indices.map { index in
                ParamGroup(groups[index].parameters.map { named[$0]! }, rules: groupRules[index],
                           options: groups[index].options, choices: groupChoices[index])
            })
        }
        for (index, step) in steps.enumerated() {
            for change in step.changes { optimizer.groups[change.group].options[change.name] = change.value }
            for change in step.choiceChanges { optimizer.groups[change.group].choices[change.name] = change.choice }
            let gradients = switch step.gradients {
            case .inline(let gradients): gradients
            case .file(let url):
                try SpecFiles.gradients(at: url, for: "spec.steps[\(index)].grads", parameters: parameters, dtype: dtype)
            }
            try refusing("spec.steps[\(index)].grads: ") { () throws(OptimizerError) in
                for (name, parameter) in named {
                    switch gradients[name] {
                    case .float32(let gradient)?: try parameter.setGradient(gradient)
                    case .float64(let gradient)?: try parameter.setGradient(gradient)
                    case nil: parameter.clearGradient()
                    }
                }
            }
            try refusing("spec.steps[\(index)]: ") { () throws(OptimizerError) in _ = try optimizer.step() }
        }
        var values: [String: [Double]] = [:]
        try refusing("") { () throws(OptimizerError) in
            for (name, parameter) in named {
                values[name] = switch dtype {
                case .float32: try parameter.values(as: Float.self).map(Double.init)
                case .float64: try parameter.values(as: Double.self)
                }
            }
        }
        let states = named.compactMapValues { optimizer.state(of: $0) }
        return ReplayResult(dtype: dtype, parameters: values, state: states.mapValues(\.slots), stateShapes: states.mapValues(\.shapes))
    }
}

/// Runs `body`, telling its refusal as a ``ReplayError`` whose words start with `place`.
private func refusing<T>(_ place: String, _ body: () throws(OptimizerError) -> T) throws(ReplayError) -> T {
    do { return try body() } catch { throw ReplayError(place + error.description, optimizerError: error) }
}
