import Foundation
import Regula
import RegulaTestSupport
import Testing

/// The optimizer family beyond the torch trajectories (TorchAgreementTests): state that exists only when an
/// option turns it on, named chains and their defaults, the Swift conveniences, refusals in words, and bit-exact
/// checkpoint resumes of every rule.
@Suite struct OptimizerFamilyTests {
    let registry = try! RuleRegistry.standard(environment: [:])

    /// Parameters `w` (3000 float32) and `b` (17 float32) with fixed values.
    static func parameters() -> (w: Parameter, b: Parameter) {
        (Parameter("w", values: (0..<3000).map { Float(($0 * 37) % 101) / 50 - 1 }),
         Parameter("b", values: (0..<17).map { Float($0) / 10 - 0.8 }))
    }

    /// Sets a deterministic gradient on every parameter for `step`.
    static func setGradients(_ parameters: [Parameter], step: Int) throws {
        for (index, parameter) in parameters.enumerated() {
            try parameter.setGradient((0..<parameter.count).map { Float(($0 * 13 + index * 5 + step * 7) % 41) / 20 - 1 })
        }
    }

    // MARK: - State that options turn on

    @Test func amsgradSlotExistsOnlyWhenAmsgradIsOn() throws {
        let (w, b) = Self.parameters()
        let optimizer = try Optimizer([ParamGroup([w]), ParamGroup([b], options: ["amsgrad": 1])], rules: ["adam"],
                                      registry: registry)
        try Self.setGradients([w, b], step: 0)
        try optimizer.step()
        #expect(Set(try #require(optimizer.state(of: w)).slots.keys) == ["exp_avg", "exp_avg_sq"])
        #expect(Set(try #require(optimizer.state(of: b)).slots.keys) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"])
        // Turned on later, the slot starts afresh at 0 and then holds the running maximum.
        optimizer.groups[0].options["amsgrad"] = 1
        try Self.setGradients([w, b], step: 1)
        try optimizer.step()
        let state = try #require(optimizer.state(of: w))
        #expect(state.slots["max_exp_avg_sq"] == state.slots["exp_avg_sq"])
    }

    @Test func rmspropKeepsMomentumAndGradientAveragesOnlyWhenAsked() throws {
        let (w, b) = Self.parameters()
        let optimizer = try Optimizer([ParamGroup([w]), ParamGroup([b], options: ["momentum": 0.9, "centered": 1])],
                                      rules: ["rmsprop"], registry: registry)
        try Self.setGradients([w, b], step: 0)
        try optimizer.step()
        #expect(Set(try #require(optimizer.state(of: w)).slots.keys) == ["square_avg"])
        #expect(Set(try #require(optimizer.state(of: b)).slots.keys) == ["square_avg", "momentum_buffer", "grad_avg"])
    }

    @Test func slotsStartFromTheirOption() throws {
        let (w, _) = Self.parameters()
        let adagrad = try Optimizer([w], rules: ["adagrad"], defaults: ["initial_accumulator_value": 0.25], registry: registry)
        try w.setGradient([Float](repeating: 0, count: w.count))
        try adagrad.step()
        #expect(try #require(adagrad.state(of: w)).slots["sum"]?.allSatisfy { $0 == 0.25 } == true)
        let (v, _) = Self.parameters()
        let rprop = try Optimizer([v], rules: ["rprop"], defaults: ["lr": 0.125], registry: registry)
        try v.setGradient([Float](repeating: 0, count: v.count))
        try rprop.step()
        #expect(try #require(rprop.state(of: v)).slots["step_size"]?.allSatisfy { $0 == 0.125 } == true)
    }

    /// ASGD steps with the eta the previous step left, as torch does, so a new lr reaches the step after next:
    /// with lambd = 0, eta is lr as it was when the step before ended.
    @Test func asgdStepsWithTheEtaThePreviousStepLeft() throws {
        let w = Parameter("w", values: [1.0, -2.0])
        let optimizer = try Optimizer([w], rules: ["asgd"], defaults: ["lr": 0.25, "lambd": 0], registry: registry)
        try w.setGradient([1.0, 1.0])
        try optimizer.step()
        optimizer.groups[0].options["lr"] = 0.5
        try w.setGradient([1.0, 1.0])
        try optimizer.step()
        #expect(try w.values(as: Double.self) == [0.5, -2.5])
        #expect(try #require(optimizer.state(of: w)).slots["eta"] == [0.5])
        try w.setGradient([1.0, 1.0])
        try optimizer.step()
        #expect(try w.values(as: Double.self) == [0.0, -3.0])
    }

    // MARK: - Named chains

    @Test func namedChainStandsForItsRules() throws {
        let (w, _) = Self.parameters()
        let lamb = try Optimizer([w], rules: ["l1", "lamb"], defaults: ["lr": 0.01], registry: registry)
        #expect(lamb.rules.map(\.name) == ["l1", "scale_by_adam", "add_decayed_weights", "scale_by_trust_ratio", "sgd"])
        // The chain's default (eps 1e-6) replaces scale_by_adam's own (1e-8); the rule's stands elsewhere.
        #expect(lamb.groups[0].options["eps"] == 1e-6)
        #expect(try Optimizer([w], rules: ["scale_by_adam", "sgd"], defaults: ["lr": 0.01], registry: registry)
            .groups[0].options["eps"] == 1e-8)
        // The user's defaults and group options come first.
        let mine = try Optimizer([ParamGroup([w], options: ["weight_decay": 0.5])], rules: ["lion"],
                                 defaults: ["lr": 0.01, "beta2": 0.9], registry: registry)
        #expect(mine.groups[0].options["weight_decay"] == 0.5)
        #expect(mine.groups[0].options["beta2"] == 0.9)
        #expect(try Optimizer([w], rules: ["lion"], defaults: ["lr": 0.01], registry: registry).groups[0].options["weight_decay"] == 1e-3)
    }

    @Test func chainDeclaredInSwiftRunsLikeItsRules() throws {
        let registry = try RuleRegistry.standard(environment: [:])
        try registry.register(NamedChain(name: "heavy_ball", summary: "momentum SGD", rules: ["momentum", "sgd"],
                                         defaults: ["momentum": 0.9]))
        #expect(registry.chains.map(\.name).contains("heavy_ball"))
        let (a, _) = Self.parameters(), (b, _) = Self.parameters()
        let named = try Optimizer([a], rules: ["heavy_ball"], defaults: ["lr": 0.1], registry: registry)
        let spelled = try Optimizer([b], rules: ["momentum", "sgd"], defaults: ["lr": 0.1, "momentum": 0.9], registry: registry)
        for step in 0..<3 {
            try Self.setGradients([a], step: step)
            try Self.setGradients([b], step: step)
            try named.step()
            try spelled.step()
        }
        #expect(try a.values(as: Float.self) == b.values(as: Float.self))
        // A chain's name is taken like a rule's.
        #expect(throws: RegistryError.self) {
            try registry.register(NamedChain(name: "sgd", summary: "clash", rules: ["sgd"]))
        }
    }

    @Test func chainWithAMissingRuleIsRefusedNamingIt() throws {
        let registry = try RuleRegistry.standard(environment: [:])
        try registry.register(NamedChain(name: "broken", summary: "names a rule nobody loaded", rules: ["momentum", "nowhere"]))
        let (w, _) = Self.parameters()
        #expect {
            try Optimizer([w], rules: ["broken"], defaults: ["lr": 0.1], registry: registry)
        } throws: { error in
            "\(error)".contains("chain \"broken\"") && "\(error)".contains("\"nowhere\", which is not loaded")
        }
        #expect(throws: OptimizerError.unknownRule("lamb", suggestion: nil, available: registry.rules.map(\.name), isChain: true)) {
            try registry.rule(named: "lamb")
        }
    }

    // MARK: - Refusals

    @Test(arguments: [
        (["adam"], ["beta1": 1.0], "beta1 must be below 1"),
        (["adamw"], ["beta2": 1.0], "beta2 must be below 1"),
        (["nadam"], ["eps": -1e-8], "\"eps\" = -1e-08"),
        (["rprop"], ["etaminus": 1.0], "0 < etaminus < 1 < etaplus"),
        (["rprop"], ["etaplus": 1.0], "0 < etaminus < 1 < etaplus"),
        (["rprop"], ["step_size_min": 2, "step_size_max": 1], "step_size_min (2) must not exceed step_size_max (1)"),
        (["asgd"], ["lambd": -1], "\"lambd\" = -1"),
        (["clip_global_norm", "sgd"], ["max_norm": -1, "lr": 0.1], "\"max_norm\" = -1"),
        (["sgd"], ["lr": Double.infinity], "a finite number"),
        (["adamw"], ["weight_decya": 0.1], "did you mean \"weight_decay\""),
    ] as [([String], [String: Double], String)])
    func badOptionsAreRefusedInWords(rules: [String], options: [String: Double], words: String) throws {
        let (w, _) = Self.parameters()
        #expect {
            try Optimizer([w], rules: rules, defaults: options, registry: registry)
        } throws: { error in
            "\(error)".contains(words)
        }
    }

    @Test func chainThatNeverWritesTheParametersIsRefused() {
        let (w, _) = Self.parameters()
        #expect(throws: OptimizerError.noRuleAppliesTheStep(rules: ["l1", "momentum"])) {
            try Optimizer([w], rules: ["l1", "momentum"], defaults: ["lr": 0.1], registry: registry)
        }
    }

    @Test func infiniteLearningRateSetLaterIsRefusedAndChangesNothing() throws {
        let (w, _) = Self.parameters()
        let optimizer = try Optimizer([w], preset: .adamW(), registry: registry)
        try Self.setGradients([w], step: 0)
        try optimizer.step()
        let before = (try w.values(as: Float.self), optimizer.state(of: w))
        optimizer.groups[0].learningRate = .infinity
        #expect(throws: OptimizerError.self) { try optimizer.step() }
        #expect(try w.values(as: Float.self) == before.0)
        #expect(optimizer.state(of: w) == before.1)
    }

    // MARK: - Swift conveniences

    @Test func conveniencesAreTheirChains() throws {
        func trajectory(_ make: ([Parameter]) throws -> Optimizer) throws -> [Float] {
            let (w, b) = Self.parameters()
            let optimizer = try make([w, b])
            for step in 0..<4 {
                try Self.setGradients([w, b], step: step)
                try optimizer.step()
            }
            return try w.values(as: Float.self) + b.values(as: Float.self)
        }
        let registry = self.registry
        #expect(try trajectory { try Optimizer($0, preset: .adam(lr: 0.01, betas: (0.8, 0.99), weightDecay: 0.1, amsgrad: true), registry: registry) }
            == trajectory { try Optimizer($0, rules: ["l2", "adam"], defaults: ["lr": 0.01, "beta1": 0.8, "beta2": 0.99,
                                                                              "weight_decay2": 0.1, "amsgrad": 1], registry: registry) })
        #expect(try trajectory { try Optimizer($0, preset: .adamW(lr: 0.01, weightDecay: 0.2), registry: registry) }
            == trajectory { try Optimizer($0, rules: ["adamw"], defaults: ["lr": 0.01, "weight_decay": 0.2], registry: registry) })
        #expect(try trajectory { try Optimizer($0, preset: .rmsprop(lr: 0.01, momentum: 0.5, centered: true), registry: registry) }
            == trajectory { try Optimizer($0, rules: ["l2", "rmsprop"], defaults: ["lr": 0.01, "momentum": 0.5, "centered": 1],
                                          registry: registry) })
        #expect(throws: OptimizerError.self) { try Optimizer([Parameter("x", values: [1.0])], preset: .adam(betas: (1, 0.999)), registry: registry) }
    }

    // MARK: - Checkpoints

    /// Every built-in rule and chain of the family, with options that create every slot it can have.
    static let resumable: [(rules: [String], options: [String: Double])] = [
        (["adam"], ["amsgrad": 1]), (["l2", "adam"], ["weight_decay2": 0.1]), (["adamw"], [:]), (["adagrad"], ["lr_decay": 0.1]),
        (["rmsprop"], ["momentum": 0.9, "centered": 1]), (["adadelta"], [:]), (["adamax"], [:]), (["nadam"], [:]),
        (["radam"], [:]), (["rprop"], [:]), (["asgd"], ["t0": 1, "weight_decay": 0.01]), (["lion"], ["lr": 1e-3]), (["lamb"], ["lr": 1e-2, "weight_decay": 0.1]),
        (["clip_global_norm", "adamw"], ["max_norm": 1]),
        (["momentum", "momentum", "sgd"], ["lr": 0.01, "momentum": 0.5]),
    ]

    @Test(arguments: resumable.indices)
    func checkpointResumesBitForBit(_ index: Int) throws {
        let (rules, options) = Self.resumable[index]
        let (w, b) = Self.parameters()
        let optimizer = try Optimizer([ParamGroup([w]), ParamGroup([b], options: ["lr": 0.003])], rules: rules,
                                      defaults: options, registry: registry)
        for step in 0..<3 {
            try Self.setGradients([w, b], step: step)
            try optimizer.step()
        }
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("resume.safetensors")
        try optimizer.saveCheckpoint(to: file)
        func continueRun() throws -> ([Float], ParameterState?, ParameterState?) {
            for step in 3..<6 {
                try Self.setGradients([w, b], step: step)
                try optimizer.step()
            }
            return (try w.values(as: Float.self) + b.values(as: Float.self), optimizer.state(of: w), optimizer.state(of: b))
        }
        let straight = try continueRun()
        try optimizer.loadCheckpoint(from: file)
        #expect(optimizer.state(of: w)?.step == 3)
        let resumed = try continueRun()
        #expect(straight.0.map(\.bitPattern) == resumed.0.map(\.bitPattern), "\(rules)")
        #expect(straight.1 == resumed.1 && straight.2 == resumed.2, "\(rules)")
        #expect(resumed.1?.step == 6)
    }

    @Test func aRuleRepeatedInTheChainKeepsOneStatePerPosition() throws {
        let (w, _) = Self.parameters()
        let optimizer = try Optimizer([w], rules: ["momentum", "momentum", "sgd"], defaults: ["lr": 0.01, "momentum": 0.5],
                                      registry: registry)
        try Self.setGradients([w], step: 0)
        try optimizer.step()
        try Self.setGradients([w], step: 1)
        try optimizer.step()
        let slots = try #require(optimizer.state(of: w)).slots
        #expect(Set(slots.keys) == ["momentum#1.momentum_buffer", "momentum#2.momentum_buffer"])
        #expect(slots["momentum#1.momentum_buffer"] != slots["momentum#2.momentum_buffer"])
    }
}
