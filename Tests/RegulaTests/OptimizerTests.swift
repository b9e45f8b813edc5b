import Regula
import RegulaTestSupport
import Testing

/// The Swift API: groups and their options, validation, skipped parameters, borrowed memory and `SGD`.
@Suite struct OptimizerTests {
    let registry = try! RuleRegistry.standard(environment: [:])

    @Test func groupOptionsOverrideDefaults() throws {
        let fast = Parameter("fast", values: [Float(1), -2])
        let slow = Parameter("slow", values: [Float(1), -2])
        let optimizer = try Optimizer([ParamGroup([fast]), ParamGroup([slow], options: ["lr": 0.01])],
                                      rules: ["sgd"], defaults: ["lr": 0.1], registry: registry)
        try fast.setGradient([Float(1), 1])
        try slow.setGradient([Float(1), 1])
        try optimizer.step()
        #expect(try fast.values(as: Float.self) == [Float(1) - Float(0.1), Float(-2) - Float(0.1)])
        #expect(try slow.values(as: Float.self) == [Float(1) - Float(0.01), Float(-2) - Float(0.01)])
        #expect(optimizer.groups[0].learningRate == 0.1)
        #expect(optimizer.groups[1].learningRate == 0.01)
    }

    @Test func everyHyperparameterOfTheChainIsFilledIntoEachGroup() throws {
        let w = Parameter("w", values: [1.0])
        let optimizer = try Optimizer([ParamGroup([w])], rules: ["l1", "momentum", "sgd"],
                                      defaults: ["lr": 0.5, "momentum": 0.9], registry: registry)
        #expect(optimizer.groups[0].options == ["lr": 0.5, "momentum": 0.9, "dampening": 0, "weight_decay1": 0])
    }

    @Test func learningRateChangedBetweenStepsTakesEffectAtTheNextStep() throws {
        let w = Parameter("w", values: [1.0])
        let optimizer = try Optimizer([w], rules: ["sgd"], defaults: ["lr": 0.5], registry: registry)
        try w.setGradient([1.0])
        try optimizer.step()
        optimizer.groups[0].learningRate! *= 0.1
        try optimizer.step()
        #expect(try w.values(as: Double.self) == [1.0 - 0.5 - 0.05])
    }

    @Test func invalidOptionChangeIsRefusedAtTheNextStepAndChangesNothing() throws {
        let a = Parameter("a", values: [Float(1), 2]), b = Parameter("b", values: [Float(3)])
        let optimizer = try Optimizer([ParamGroup([a]), ParamGroup([b])], rules: ["momentum", "sgd"],
                                      defaults: ["lr": 0.1, "momentum": 0.9], registry: registry)
        try a.setGradient([Float(1), 1])
        try b.setGradient([Float(1)])
        try optimizer.step()
        let before = try (a.values(as: Float.self), b.values(as: Float.self), optimizer.state(of: a), optimizer.state(of: b))
        optimizer.groups[1].learningRate = -1
        #expect(throws: OptimizerError.hyperparameterOutOfRange("lr", value: -1, group: 1, rule: "sgd", allowed: "allowed: ≥ 0")) {
            try optimizer.step()
        }
        #expect(try a.values(as: Float.self) == before.0)
        #expect(try b.values(as: Float.self) == before.1)
        #expect(optimizer.state(of: a) == before.2)
        #expect(optimizer.state(of: b) == before.3)
        optimizer.groups[1].learningRate = 0.1
        try optimizer.step()
        #expect(optimizer.state(of: a)?.step == 2)
    }

    @Test func unknownHyperparameterSuggestsTheNearName() throws {
        let w = Parameter("w", values: [1.0])
        do {
            _ = try Optimizer([ParamGroup([w], options: ["momentun": 0.9])], rules: ["l1", "momentum", "sgd"],
                              defaults: ["lr": 0.1], registry: registry)
            Issue.record("accepted an unknown hyperparameter")
        } catch {
            let message = "\(error)"
            #expect(message.contains("\"momentun\""))
            #expect(message.contains("group 0"))
            #expect(message.contains("did you mean \"momentum\""))
            #expect(message.contains("l1, momentum, sgd take: weight_decay1, momentum, dampening, lr"))
        }
    }

    @Test func unknownRuleSuggestsTheNearName() {
        let names = (registry.rules.map(\.name) + registry.chains.map(\.name)).sorted()
        #expect(names.contains("lamb") && names.contains("adamw"))
        #expect(throws: OptimizerError.unknownRule("nesterv", suggestion: "nesterov", available: names)) {
            try Optimizer([Parameter("w", values: [1.0])], rules: ["nesterv", "sgd"], defaults: ["lr": 0.1],
                          registry: registry)
        }
    }

    @Test func parameterInTwoGroupsIsRefused() {
        let w = Parameter("w", values: [1.0])
        #expect(throws: OptimizerError.parameterInSeveralGroups("w", groups: [0, 1])) {
            try Optimizer([ParamGroup([w]), ParamGroup([w])], rules: ["sgd"], defaults: ["lr": 0.1], registry: registry)
        }
    }

    @Test func addingAGroupThatRepeatsAParameterChangesNothing() throws {
        let w = Parameter("w", values: [1.0])
        let optimizer = try Optimizer([w], rules: ["sgd"], defaults: ["lr": 0.1], registry: registry)
        #expect(throws: OptimizerError.self) { try optimizer.addGroup(ParamGroup([w])) }
        #expect(optimizer.groups.count == 1)
        try optimizer.addGroup(ParamGroup([Parameter("v", values: [2.0])], options: ["lr": 0.2]))
        #expect(optimizer.groups[1].options == ["lr": 0.2])
    }

    @Test func nesterovRejectsDampening() {
        #expect(throws: OptimizerError.self) {
            try Optimizer([Parameter("w", values: [1.0])], rules: ["nesterov", "sgd"],
                          defaults: ["lr": 0.1, "momentum": 0.9, "dampening": 0.1], registry: registry)
        }
        do {
            _ = try Optimizer([Parameter("w", values: [1.0])], preset: .sgd(lr: 0.1, momentum: 0, nesterov: true), registry: registry)
            Issue.record("Nesterov without momentum was accepted")
        } catch {
            #expect("\(error)".contains("Nesterov momentum requires a momentum and zero dampening"))
        }
    }

    @Test func parameterWithoutGradientIsSkippedAndItsStateLeftAlone() throws {
        let a = Parameter("a", values: [Float(1)]), b = Parameter("b", values: [Float(1)])
        let optimizer = try Optimizer([a, b], rules: ["momentum", "sgd"], defaults: ["lr": 0.1, "momentum": 0.9],
                                      registry: registry)
        try a.setGradient([Float(1)])
        try b.setGradient([Float(1)])
        try optimizer.step()
        let stateOfB = optimizer.state(of: b)
        b.clearGradient()
        try optimizer.step()
        #expect(try b.values(as: Float.self) == [Float(1) - Float(0.1)])
        #expect(optimizer.state(of: b) == stateOfB)
        #expect(optimizer.state(of: a)?.step == 2)
        // Second step of a: buf = 0.9 · 1 + 1 = 1.9; p = 0.9 − 0.1 · 1.9.
        #expect(try a.values(as: Float.self) == [Float(1) - Float(0.1) - Float(0.1) * (Float(0.9) * 1 + 1)])
    }

    @Test func gradientIsNeverWrittenByTheChain() throws {
        let w = Parameter("w", values: [Float(0.5), -0.5])
        let optimizer = try Optimizer([w], rules: ["l1", "l2", "momentum", "sgd"],
                                      defaults: ["lr": 0.1, "momentum": 0.9, "weight_decay1": 0.01, "weight_decay2": 0.01],
                                      registry: registry)
        try w.setGradient([Float(0.25), 0.75])
        try optimizer.step()
        #expect(try w.gradient(as: Float.self) == [Float(0.25), 0.75])
    }

    @Test func wrappedMemoryIsUpdatedInPlace() throws {
        var storage: [Double] = [1, 2, 3]
        let gradient: [Double] = [1, 1, 1]
        try storage.withUnsafeMutableBufferPointer { values in
            try gradient.withUnsafeBufferPointer { grad in
                let w = try Parameter("w", wrapping: values, gradient: grad)
                let optimizer = try Optimizer([w], rules: ["sgd"], defaults: ["lr": 0.5], registry: registry)
                try optimizer.step()
            }
        }
        #expect(storage == [0.5, 1.5, 2.5])
    }

    @Test func wrongGradientLengthIsRefusedAndKeepsTheOldGradient() throws {
        let w = Parameter("w", values: [Float(1), 2, 3])
        try w.setGradient([Float(1), 1, 1])
        #expect(throws: OptimizerError.gradientLength(parameter: "w", expected: 3, got: 2)) {
            try w.setGradient([Float(1), 1])
        }
        #expect(try w.gradient(as: Float.self) == [Float(1), 1, 1])
    }

    @Test func sgdPresetMatchesTheExplicitChain() throws {
        let initial: [Float] = (0..<5000).map { Float($0 % 17) / 8 - 1 }
        let gradients: [[Float]] = (0..<4).map { step in initial.indices.map { Float(($0 * 7 + step) % 13) / 6 - 1 } }
        let a = Parameter("a", values: initial), b = Parameter("b", values: initial)
        let sgd = try Optimizer([a], preset: .sgd(lr: 0.05, momentum: 0.8, weightDecay1: 1e-3, weightDecay2: 1e-2, nesterov: true),
                                registry: registry)
        let chain = try Optimizer([b], rules: ["l1", "l2", "nesterov", "sgd"],
                                  defaults: ["lr": 0.05, "momentum": 0.8, "weight_decay1": 1e-3, "weight_decay2": 1e-2],
                                  registry: registry)
        for gradient in gradients {
            try a.setGradient(gradient)
            try b.setGradient(gradient)
            try sgd.step()
            try chain.step()
        }
        #expect(try a.values(as: Float.self) == b.values(as: Float.self))
        #expect(sgd.state(of: a) == chain.state(of: b))
    }

    @Test(arguments: [1, 511, 512, 513, 1023, 1024, 1025, 2049, 10_000])
    func blockBoundariesDoNotChangeTheResult(count: Int) throws {
        // A parameter spanning several blocks gets the same per-element arithmetic as a one-element one.
        let values = (0..<count).map { Double($0 % 11) - 5 }
        let gradient = (0..<count).map { Double($0 % 7) / 3 - 1 }
        let whole = Parameter("whole", values: values)
        let optimizer = try Optimizer([whole], rules: ["l1", "l2", "momentum", "sgd"],
                                      defaults: ["lr": 0.1, "momentum": 0.9, "weight_decay1": 0.01, "weight_decay2": 0.02],
                                      registry: registry)
        try whole.setGradient(gradient)
        try optimizer.step()
        try optimizer.step()
        // Independent reference in plain Double arithmetic.
        var p = values, buffer = [Double](repeating: 0, count: count)
        for step in 0..<2 {
            for i in 0..<count {
                let sign: Double = p[i] > 0 ? 1 : (p[i] < 0 ? -1 : 0)
                var d = gradient[i]
                d += 0.01 * sign
                d += 0.02 * p[i]
                buffer[i] = step == 0 ? d : 0.9 * buffer[i] + (1 - 0) * d
                p[i] -= 0.1 * buffer[i]
            }
        }
        #expect(try whole.values(as: Double.self) == p)
        #expect(optimizer.state(of: whole)?.slots["momentum_buffer"] == buffer)
    }
}
