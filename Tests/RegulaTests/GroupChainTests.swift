import Foundation
import Regula
import RegulaTestSupport
import Testing

/// A chain per parameter group (optax's `partition`, issue 15): groups running different chains in one
/// optimizer give bit for bit what separate optimizers give, a step is all or nothing across the chains,
/// `clip_global_norm` spans every chain, checkpoints record each group's chain, and what cannot work is
/// refused in words.
@Suite struct GroupChainTests {
    let registry: RuleRegistry

    init() throws {
        registry = try RuleRegistry.standard(environment: [:])
        // Fails on any block whose update holds a value above 100 (as GuardedStepTests' rule).
        try registry.register(Rule(name: "fails_above_100", summary: "refuses large updates") { block in
            if block.update(as: Float.self).contains(where: { $0 > 100 }) { throw RuleFailure("update above 100") }
        })
    }

    /// Parameters of `counts` elements with fixed values, named `prefix0`, `prefix1`, ….
    static func parameters(_ counts: [Int], prefix: String = "p") -> [Parameter] {
        counts.enumerated().map { index, count in
            Parameter("\(prefix)\(index)", values: (0..<count).map { Float(($0 * 37 + index * 11) % 101) / 50 - 1 })
        }
    }

    /// Sets a fixed gradient for `step` on each parameter (the same for a parameter's twin in another list).
    static func setGradients(_ parameters: [Parameter], step: Int, scale: Float = 1) throws {
        for (index, parameter) in parameters.enumerated() {
            try parameter.setGradient((0..<parameter.count).map { scale * (Float(($0 * 13 + index * 5 + step * 7) % 41) / 20 - 1) })
        }
    }

    /// Every value's bits and every state slot's bits, with the step count, per parameter.
    static func bits(_ parameters: [Parameter], _ optimizer: Optimizer) throws -> [[UInt64]] {
        try parameters.map { parameter in
            let state = optimizer.state(of: parameter)
            return try parameter.values(as: Float.self).map { UInt64($0.bitPattern) }
                + (state?.slots.keys.sorted().flatMap { state!.slots[$0]!.map(\.bitPattern) } ?? []) + [UInt64(bitPattern: Int64(state?.step ?? -1))]
        }
    }

    // MARK: - Agreement

    @Test(arguments: [1, 2])
    func groupsWithTheirOwnChainsStepAsSeparateOptimizersDo(threads: Int) throws {
        let sizes = [40_000, 17, 9000]
        let (together, sgdAlone, adamAlone) = (Self.parameters(sizes), Self.parameters(sizes), Self.parameters(sizes))
        let optimizer = try Optimizer(
            [ParamGroup([together[0]], rules: ["momentum", "sgd"], options: ["lr": 0.05, "momentum": 0.9]),
             ParamGroup([together[1], together[2]], options: ["lr": 2e-3])],
            rules: ["adamw"], defaults: ["lr": 1e-3, "weight_decay": 0.01, "momentum": 0.5], registry: registry)
        optimizer.threads = threads
        #expect(optimizer.groups.map(\.rules) == [["momentum", "sgd"], ["adamw"]])
        // Defaults reach only the groups whose chains read them: adamw reads no momentum, sgd no weight decay.
        #expect(optimizer.groups[0].options["weight_decay"] == nil && optimizer.groups[0].options["momentum"] == 0.9)
        #expect(optimizer.groups[1].options["momentum"] == nil && optimizer.groups[1].options["weight_decay"] == 0.01)
        // The separate optimizers, torch-verified chains (Tests/Fixtures/torch-optim), with the options filled in.
        let sgd = try Optimizer([ParamGroup([sgdAlone[0]], options: optimizer.groups[0].options)], rules: ["momentum", "sgd"],
                                registry: registry)
        let adam = try Optimizer([ParamGroup([adamAlone[1], adamAlone[2]], options: optimizer.groups[1].options)],
                                 rules: ["adamw"], registry: registry)
        sgd.threads = threads
        adam.threads = threads
        for step in 0..<6 {
            if step == 3 {
                optimizer.groups[0].learningRate! *= 0.5
                optimizer.groups[1].learningRate! *= 0.25
                sgd.groups[0].learningRate! *= 0.5
                adam.groups[0].learningRate! *= 0.25
            }
            try Self.setGradients(together, step: step)
            try Self.setGradients(sgdAlone, step: step)
            try Self.setGradients(adamAlone, step: step)
            // The bias has no gradient in one step: it and its state are left alone, as alone.
            if step == 2 {
                together[1].clearGradient()
                adamAlone[1].clearGradient()
            }
            try optimizer.step()
            try sgd.step()
            try adam.step()
        }
        #expect(try Self.bits([together[0]], optimizer) == Self.bits([sgdAlone[0]], sgd))
        #expect(try Self.bits(Array(together[1...]), optimizer) == Self.bits(Array(adamAlone[1...]), adam))
        #expect(Set(try #require(optimizer.state(of: together[0])).slots.keys) == ["momentum_buffer"])
        #expect(Set(try #require(optimizer.state(of: together[2])).slots.keys) == ["exp_avg", "exp_avg_sq"])
    }

    @Test func groupsNamingTheSameRulesShareOneChainAndTheOptimizersOwnNamesMeanItsChain() throws {
        let parameters = Self.parameters([10, 20, 30])
        let optimizer = try Optimizer(
            [ParamGroup([parameters[0]], rules: ["sgd"]), ParamGroup([parameters[1]], rules: ["adamw"]),
             ParamGroup([parameters[2]], rules: ["sgd"], options: ["lr": 0.5])],
            rules: ["adamw"], defaults: ["lr": 0.1], registry: registry)
        // Both sgd groups run one chain, as one sgd optimizer over the two would.
        let alone = Self.parameters([10, 20, 30])
        let sgd = try Optimizer([ParamGroup([alone[0]]), ParamGroup([alone[2]], options: ["lr": 0.5])], rules: ["sgd"],
                                defaults: ["lr": 0.1], registry: registry)
        for step in 0..<2 {
            try Self.setGradients(parameters, step: step)
            try Self.setGradients(alone, step: step)
            try optimizer.step()
            try sgd.step()
        }
        #expect(try [parameters[0], parameters[2]].map { try $0.values(as: Float.self) } == [alone[0], alone[2]].map { try $0.values(as: Float.self) })
        #expect(optimizer.groups.map(\.rules) == [["sgd"], ["adamw"], ["sgd"]])
        #expect(Set(try #require(optimizer.state(of: parameters[1])).slots.keys) == ["exp_avg", "exp_avg_sq"])
    }

    // MARK: - All or nothing

    @Test(arguments: [false, true])
    func aFailingChainUndoesEveryOtherChainsStep(failingFirst: Bool) throws {
        let parameters = Self.parameters([50_000, 30, 7000])
        let failing = ParamGroup([parameters[2]], rules: ["fails_above_100", "sgd"])
        let others = [ParamGroup([parameters[0]], rules: ["momentum", "sgd"], options: ["momentum": 0.9]), ParamGroup([parameters[1]])]
        let optimizer = try Optimizer(failingFirst ? [failing] + others : others + [failing], rules: ["adamw"],
                                      defaults: ["lr": 0.01], registry: registry)
        optimizer.threads = 2
        for step in 0..<2 {
            try Self.setGradients(parameters, step: step)
            try optimizer.step()
        }
        // A parameter that never stepped: its first step would create its state, which must go again.
        let fresh = Parameter("fresh", values: [Float](repeating: 1, count: 40))
        try optimizer.addGroup(ParamGroup([fresh], rules: ["momentum", "sgd"]))
        try fresh.setGradient([Float](repeating: 1, count: 40))
        let before = try Self.bits(parameters, optimizer)
        try parameters[2].setGradient((0..<7000).map { $0 > 6000 ? Float(1000) : 0.5 })
        #expect(throws: OptimizerError.kernelFailed(rule: "fails_above_100", parameter: "p2", status: 1, message: "update above 100")) {
            try optimizer.step()
        }
        #expect(try Self.bits(parameters, optimizer) == before, "a chain's step was kept while another failed")
        #expect(optimizer.state(of: fresh) == nil)
        #expect(try fresh.values(as: Float.self) == [Float](repeating: 1, count: 40))
        // And the next good step runs every chain.
        try Self.setGradients(parameters, step: 2)
        try optimizer.step()
        #expect(optimizer.state(of: parameters[0])?.step == 3 && optimizer.state(of: fresh)?.step == 1)
    }

    @Test func aSkippedNonFiniteStepChangesNoChain() throws {
        let parameters = Self.parameters([3000, 20])
        let optimizer = try Optimizer([ParamGroup([parameters[0]], rules: ["momentum", "sgd"]), ParamGroup([parameters[1]])],
                                      rules: ["adamw"], defaults: ["lr": 0.01, "momentum": 0.9], registry: registry)
        optimizer.nonFiniteSteps = .skip
        try Self.setGradients(parameters, step: 0)
        try optimizer.step()
        let before = try Self.bits(parameters, optimizer)
        try Self.setGradients(parameters, step: 1)
        try parameters[1].setGradient([Float](repeating: .nan, count: 20))
        #expect(try optimizer.step() == .skipped(reason: "the gradient of parameter \"p1\" has a NaN or an infinity"))
        #expect(try Self.bits(parameters, optimizer) == before)
    }

    // MARK: - clip_global_norm across chains

    @Test(arguments: [1, 2])
    func clipGlobalNormSpansEveryChainAsTorchsClipGradNormOverAllParameters(threads: Int) throws {
        let sizes = [40_000, 300, 9000]
        let (split, whole) = (Self.parameters(sizes), Self.parameters(sizes))
        // momentum 0 (no dampening) passes the update on unchanged, so both chains are clip, then p -= lr * d.
        let optimizer = try Optimizer(
            [ParamGroup([split[0], split[1]], rules: ["clip_global_norm", "momentum", "sgd"], options: ["momentum": 0]),
             ParamGroup([split[2]])],
            rules: ["clip_global_norm", "sgd"], defaults: ["lr": 0.1, "max_norm": 5], registry: registry)
        let reference = try Optimizer(whole, rules: ["clip_global_norm", "sgd"], defaults: ["lr": 0.1, "max_norm": 5], registry: registry)
        optimizer.threads = threads
        for step in 0..<3 {
            try Self.setGradients(split, step: step)
            try Self.setGradients(whole, step: step)
            try optimizer.step()
            try reference.step()
        }
        #expect(try split.map { try $0.values(as: Float.self) } == whole.map { try $0.values(as: Float.self) })

        // By hand, one more step: total = the L2 norm of every gradient of every chain.
        let before = try split.map { try $0.values(as: Float.self) }
        try Self.setGradients(split, step: 3)
        let gradients = (0..<3).map { index in (0..<sizes[index]).map { Float(($0 * 13 + index * 5 + 21) % 41) / 20 - 1 } }
        let total = gradients.joined().reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let scale = Float(5 / (total + 1e-6))
        #expect(scale < 0.1, "the gradients must be clipped for this to test anything")
        try optimizer.step()
        for (index, parameter) in split.enumerated() {
            let expected = zip(before[index], gradients[index]).map { $0 - 0.1 * ($1 * scale) }
            for (ours, theirs) in zip(try parameter.values(as: Float.self), expected) {
                #expect(abs(ours - theirs) <= 1e-6 * max(1, abs(theirs)))
            }
        }
    }

    @Test func aStepWideReductionThatCannotSpanEveryChainIsRefused() throws {
        let (w, b) = (Self.parameters([10])[0], Self.parameters([5], prefix: "b")[0])
        #expect {
            try Optimizer([ParamGroup([w], rules: ["adamw"]), ParamGroup([b])], rules: ["clip_global_norm", "sgd"],
                          defaults: ["lr": 0.1, "max_norm": 1], registry: registry)
        } throws: { error in
            "\(error)" == "rule clip_global_norm in group 1's chain (clip_global_norm > sgd) folds a reduction over every parameter "
                + "of the step, but group 0's chain (adamw) does not start with it; start every group's chain with clip_global_norm, or no group's"
        }
        #expect {
            try Optimizer([ParamGroup([w], rules: ["adamw"]), ParamGroup([b])], rules: ["momentum", "clip_global_norm", "sgd"],
                          defaults: ["lr": 0.1, "max_norm": 1], registry: registry)
        } throws: { error in
            "\(error)".contains("rule clip_global_norm in group 1's chain (momentum > clip_global_norm > sgd) folds a reduction over "
                + "every parameter of the step, after other rules of that chain")
        }
        // One chain for every group keeps working wherever the rule stands.
        _ = try Optimizer([ParamGroup([w]), ParamGroup([b], rules: ["momentum", "clip_global_norm", "sgd"])],
                          rules: ["momentum", "clip_global_norm", "sgd"], defaults: ["lr": 0.1, "max_norm": 1], registry: registry)
    }

    // MARK: - Refusals

    @Test func optionsAndRulesAreRefusedInWordsNamingTheGroup() throws {
        let (w, b) = (Self.parameters([10])[0], Self.parameters([5], prefix: "b")[0])
        #expect {
            try Optimizer([ParamGroup([w], rules: ["sgd"], options: ["weight_decay": 0.1]), ParamGroup([b])], rules: ["adamw"],
                          defaults: ["lr": 0.1], registry: registry)
        } throws: { error in
            "\(error)" == "unknown hyperparameter \"weight_decay\" in group 0; rules sgd take: lr"
        }
        #expect {
            try Optimizer([ParamGroup([w], rules: ["sgd"]), ParamGroup([b])], rules: ["adamw"], defaults: ["lr": 0.1, "momentun": 0.9],
                          registry: registry)
        } throws: { error in
            "\(error)".hasPrefix("unknown hyperparameter \"momentun\" in the optimizer's defaults") && "\(error)".contains("rules adamw, sgd take: ")
        }
        #expect {
            try Optimizer([ParamGroup([w], rules: ["adamm"])], rules: ["sgd"], defaults: ["lr": 0.1], registry: registry)
        } throws: { error in
            guard case .unknownRule("adamm", let suggestion, _, _)? = error as? OptimizerError else { return false }
            return suggestion != nil
        }
        #expect(throws: OptimizerError.emptyChain) {
            try Optimizer([ParamGroup([w], rules: [])], rules: ["sgd"], defaults: ["lr": 0.1], registry: registry)
        }
        // A group added later with a chain the optimizer refuses leaves the optimizer as it was.
        let optimizer = try Optimizer([ParamGroup([w])], rules: ["sgd"], defaults: ["lr": 0.1], registry: registry)
        #expect(throws: OptimizerError.self) { try optimizer.addGroup(ParamGroup([b], rules: ["sgd"], options: ["momentum": 1])) }
        #expect(optimizer.groups.count == 1)
    }

    @Test func aGroupsChainIsFixedOnceItsParametersHaveState() throws {
        let parameters = Self.parameters([10, 5])
        let optimizer = try Optimizer([ParamGroup([parameters[0]], rules: ["momentum", "sgd"]), ParamGroup([parameters[1]])],
                                      rules: ["adamw"], defaults: ["lr": 0.1, "momentum": 0.9], registry: registry)
        try Self.setGradients(parameters, step: 0)
        try optimizer.step()
        let before = try Self.bits(parameters, optimizer)
        optimizer.groups[0] = ParamGroup(parameters[..<1].map { $0 }, rules: ["sgd"], options: ["lr": 0.1])
        #expect {
            try optimizer.step()
        } throws: { error in
            "\(error)" == "group 0 now runs rules sgd, but its parameters hold the state of rules momentum > sgd; a group's chain "
                + "stays as it was once its parameters have state (clear their state, or build a new optimizer)"
        }
        #expect(try Self.bits(parameters, optimizer) == before)
    }

    // MARK: - Checkpoints

    @Test func aCheckpointRecordsEachGroupsChainAndResumesBitForBitWithOneScheduleForBoth() throws {
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("groups.safetensors")
        func make(_ parameters: [Parameter], firstRules: [String] = ["momentum", "sgd"]) throws -> Optimizer {
            try Optimizer([ParamGroup([parameters[0]], rules: firstRules, options: ["momentum": 0.9]),
                           ParamGroup([parameters[1], parameters[2]])],
                          rules: ["adamw"], defaults: ["lr": 0.01], registry: registry)
        }
        let (first, second) = (Self.parameters([3000, 17, 400]), Self.parameters([3000, 17, 400]))
        let running = try make(first)
        let schedule = try LearningRateScheduler(running, schedule: .exponential(gamma: 0.5))
        for step in 0..<3 {
            try Self.setGradients(first, step: step)
            try running.step()
            try schedule.step()
        }
        // One schedule moves both groups' rates, whatever chain each runs.
        let rates: [Double?] = running.groups.map(\.learningRate)
        #expect(rates == [0.00125, 0.00125])
        try running.saveCheckpoint(to: file, schedulers: [schedule])
        let resumed = try make(second)
        let resumedSchedule = try LearningRateScheduler(resumed, schedule: .exponential(gamma: 0.5))
        try resumed.loadCheckpoint(from: file, schedulers: [resumedSchedule])
        #expect(try Self.bits(second, resumed) == Self.bits(first, running))
        #expect(resumed.groups.map(\.learningRate) == running.groups.map(\.learningRate))
        #expect(resumed.groups.map(\.rules) == [["momentum", "sgd"], ["adamw"]])
        for step in 3..<5 {
            try Self.setGradients(first, step: step)
            try Self.setGradients(second, step: step)
            try running.step()
            try resumed.step()
            try schedule.step()
            try resumedSchedule.step()
        }
        #expect(try Self.bits(second, resumed) == Self.bits(first, running))

        let other = Self.parameters([3000, 17, 400])
        let mismatched = try make(other, firstRules: ["momentum", "nesterov", "sgd"])
        let untouched = try Self.bits(other, mismatched)
        #expect {
            try mismatched.loadCheckpoint(from: file)
        } throws: { error in
            "\(error)".contains("group 0 ran rules momentum > sgd in the checkpoint; here it runs momentum > nesterov > sgd")
        }
        #expect(try Self.bits(other, mismatched) == untouched)
        // A file of one chain does not resume into groups of two, and the words say which group differs.
        let single = try Optimizer(Self.parameters([3000, 17, 400]), rules: ["adamw"], defaults: ["lr": 0.01], registry: registry)
        #expect {
            try single.loadCheckpoint(from: file)
        } throws: { error in
            "\(error)".contains("group")
        }
    }

    // MARK: - Replay specs

    @Test func aReplaySpecsGroupMayCarryItsOwnRules() throws {
        let spec = """
            {"dtype": "float32", "rules": ["adamw"], "defaults": {"lr": 0.01, "momentum": 0.9},
             "groups": [{"params": ["w"], "rules": ["momentum", "sgd"], "lr": 0.1}, {"params": ["b"]}],
             "params": {"w": [0.5, -1.0, 2.0], "b": [0.25]},
             "steps": [{"grads": {"w": [0.1, 0.2, -0.3], "b": [1.0]}}, {"grads": {"w": [0.3, 0.1, -0.1], "b": [-1.0]}}]}
            """
        let result = try ReplaySpec(json: Data(spec.utf8)).run(registry: registry)
        let (w, b) = (Parameter("w", values: [Float(0.5), -1, 2]), Parameter("b", values: [Float(0.25)]))
        let optimizer = try Optimizer([ParamGroup([w], rules: ["momentum", "sgd"], options: ["lr": 0.1]), ParamGroup([b])],
                                      rules: ["adamw"], defaults: ["lr": 0.01, "momentum": 0.9], registry: registry)
        for (gw, gb) in [([Float(0.1), 0.2, -0.3], [Float(1)]), ([0.3, 0.1, -0.1], [-1])] {
            try w.setGradient(gw)
            try b.setGradient(gb)
            try optimizer.step()
        }
        #expect(result.parameters["w"] == (try w.values(as: Float.self)).map(Double.init))
        #expect(result.parameters["b"] == (try b.values(as: Float.self)).map(Double.init))
        #expect(result.state["w"]?.keys.sorted() == ["momentum_buffer"])
        let bad = spec.replacingOccurrences(of: #""rules": ["momentum", "sgd"]"#, with: #""rules": "sgd""#)
        #expect { try ReplaySpec(json: Data(bad.utf8)) } throws: { "\($0)".contains("spec.groups[0].rules") }
    }

    @Test func aGroupNamingAnUnknownRuleInASpecIsRefusedWithASuggestion() throws {
        // The fixture's chain is muon's; a stand-in of that name is enough to reach the group's misspelling.
        let standIn = try RuleRegistry.standard(environment: [:])
        try standIn.register(Rule(name: "muon", summary: "stand-in", hyperparameters: [Hyperparameter("lr", default: 0.02)]) { _ in })
        let fixture = try #require(TorchFixture.refusals([.matrix]).first { $0.file == "bad-group-unknown-rule.json" })
        #expect {
            _ = try ReplaySpec(json: fixture.spec).run(registry: standIn)
        } throws: { error in
            let words = "\(error)"
            return fixture.errorWords.allSatisfy(words.contains) && words.contains("did you mean \"muon\"?")
        }
    }
}
