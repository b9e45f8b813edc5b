import Foundation
import Regula
import RegulaTestSupport
import Testing

/// The presets of issue 15, `.muon(...)`, `.adafactor(...)` and `.asgd(...)`, and a group that runs a preset of
/// its own: each follows torch's trajectories (Tests/Fixtures/torch-matrix) as the rule-name form does, carries
/// the plugins' declared defaults, and is refused in words when a value is out of range.
@Suite struct PresetTests {
    /// A torch-matrix case (both dtypes) and the preset that says what its spec's `defaults` say.
    static let cases: [(name: String, preset: Preset)] = [
        ("muon", .muon(lr: 0.02)),
        ("muon-plain-match-rms", .muon(lr: 0.01, weightDecay: 0.05, momentum: 0.9, nesterov: false, nsSteps: 3,
                                       adjustLR: .matchRMSAdamW)),
        ("muon-spectral-coefficients", .muon(lr: 0.01, nsCoefficients: (2, -1.5, 0.5), adjustLR: .spectralUnclamped)),
        ("adafactor", .adafactor()),
        ("adafactor-decay-clip", .adafactor(lr: 0.005, beta2Decay: -0.6, eps: (1e-20, 1e-4), d: 1.5, weightDecay: 0.01)),
        ("asgd", .asgd()),
        ("asgd-averaging", .asgd(lr: 0.02, lambda: 0.001, t0: 5, weightDecay: 0.01)),
    ]

    static func fixture(_ name: String, _ dtype: String) -> TorchFixture {
        TorchFixture.trajectories([.matrix]).first { $0.file == "\(name)-\(dtype).json" }!
    }

    /// The optimizer built from the preset steps the fixture's parameters to torch's values, state and state
    /// shapes. Every option and choice the spec sets must be the preset's, so a preset that forgot or
    /// misspelt one fails here rather than agreeing by the plugin's defaults.
    @Test(arguments: cases, ["float32", "float64"])
    func presetFollowsTorch(_ presetCase: (name: String, preset: Preset), dtype: String) throws {
        let fixture = Self.fixture(presetCase.name, dtype)
        let spec = try ReplaySpec(json: fixture.spec)
        let preset = presetCase.preset
        #expect(spec.rules == preset.rules)
        for (name, value) in spec.defaults { #expect(preset.defaults[name] == value, "option \(name)") }
        for (name, choice) in spec.defaultChoices { #expect(preset.choices[name] == choice, "choice \(name)") }
        let result = try spec.run { (groups) throws(OptimizerError) in
            try Optimizer(groups.map { ParamGroup($0.parameters) }, preset: preset)
        }
        #expect(fixture.disagreements(parameters: result.parameters, state: result.state, stateShapes: result.stateShapes) == [])
    }

    /// Muon on the matrices in a group of its own beside an AdamW optimizer for the biases, as the README
    /// shows it, is torch's `Muon` and `AdamW` side by side: the `muon-and-adamw-groups` case, whose spec gives
    /// the muon group lr 0.02 and weight decay 0.1 and AdamW lr 0.003 without weight decay.
    @Test(arguments: ["float32", "float64"])
    func muonGroupBesideAdamWFollowsTorch(dtype: String) throws {
        let fixture = Self.fixture("muon-and-adamw-groups", dtype)
        let spec = try ReplaySpec(json: fixture.spec)
        #expect(spec.groupRules == [["muon"], nil])
        let result = try spec.run { (groups) throws(OptimizerError) in
            try Optimizer([ParamGroup(groups[0].parameters, preset: .muon(lr: 0.02, weightDecay: 0.1)),
                           ParamGroup(groups[1].parameters)],
                          preset: .adamW(lr: 0.003, weightDecay: 0))
        }
        #expect(fixture.disagreements(parameters: result.parameters, state: result.state, stateShapes: result.stateShapes) == [])
    }

    /// A preset's defaults and choices are the ones its plugin declares, read from the registry, so the
    /// Swift signature and the rule cannot drift apart unnoticed.
    @Test(arguments: [("muon", Preset.muon()), ("adafactor", .adafactor()), ("asgd", .asgd())])
    func defaultsAreThePluginsDeclaredDefaults(rule name: String, preset: Preset) throws {
        let rule = try RuleRegistry.shared().rule(named: name)
        var numbers: [String: Double] = [:], choices: [String: String] = [:]
        for hyperparameter in rule.hyperparameters {
            if hyperparameter.kind == .choice { choices[hyperparameter.name] = hyperparameter.defaultChoice }
            else { numbers[hyperparameter.name] = hyperparameter.defaultValue }
        }
        #expect(preset.rules == [name])
        #expect(preset.defaults == numbers)
        #expect(preset.choices == choices)
    }

    /// The names of `Preset.MuonLRAdjustment` and `Preset.MuonNewtonSchulzDType` are exactly the choices `muon`
    /// declares for `adjust_lr_fn` and `ns_dtype`.
    @Test func muonChoicesAreTheRulesChoices() throws {
        let hyperparameters = try RuleRegistry.shared().rule(named: "muon").hyperparameters
        #expect(hyperparameters.first { $0.name == "adjust_lr_fn" }?.choices == Preset.MuonLRAdjustment.allCases.map(\.rawValue))
        #expect(hyperparameters.first { $0.name == "ns_dtype" }?.choices == Preset.MuonNewtonSchulzDType.allCases.map(\.rawValue))
    }

    /// A value out of range through a preset is refused when the optimizer is built, with the option's name,
    /// the value and the range allowed, whether the preset is the optimizer's or a group's.
    @Test(arguments: [(Preset.muon(lr: -1), [#""lr" = -1"#, "≥ 0"]),
                      (.muon(nsSteps: 100), [#""ns_steps" = 100"#, "[0, 99]"]),
                      (.adafactor(d: 0.5), [#""d" = 0.5"#, "≥ 1"]),
                      (.adafactor(beta2Decay: 0.5), [#""beta2_decay" = 0.5"#, "≤ 0"]),
                      (.asgd(lambda: -0.1), [#""lambd" = -0.1"#, "≥ 0"])])
    func outOfRangeValuesAreRefusedByName(_ preset: Preset, words: [String]) throws {
        let w = try Parameter("W", values: [Double](repeating: 0.5, count: 12), shape: [3, 4])
        let b = Parameter("b", values: [Double](repeating: 0.5, count: 3))
        #expect {
            try Optimizer([w], preset: preset)
        } throws: { error in
            words.allSatisfy { "\(error)".contains($0) }
        }
        #expect {
            try Optimizer([ParamGroup([w], preset: preset), ParamGroup([b])], preset: .adamW())
        } throws: { error in
            words.allSatisfy { "\(error)".contains($0) } && "\(error)".contains("group 0")
        }
    }

    /// A group's own options and choices override its preset's by name, the rest of the preset stays, and
    /// none of the optimizer's defaults reaches the group: AdamW's `eps` of 1e-8 is not muon's 1e-7.
    @Test func aGroupsOwnOptionsOverrideItsPreset() throws {
        let w = try Parameter("W", values: [Double](repeating: 0.5, count: 12), shape: [3, 4])
        let b = Parameter("b", values: [Double](repeating: 0.5, count: 3))
        let group = ParamGroup([w], preset: .muon(lr: 0.02), options: ["momentum": 0.9],
                               choices: ["adjust_lr_fn": "match_rms_adamw"])
        let optimizer = try Optimizer([group, ParamGroup([b])], preset: .adamW(lr: 1e-3))
        let filled = optimizer.groups[0]
        #expect(filled.rules == ["muon"])
        #expect(filled.options == Preset.muon(lr: 0.02).defaults.merging(["momentum": 0.9]) { $1 })
        #expect(filled.choices == ["adjust_lr_fn": "match_rms_adamw", "ns_dtype": "parameter"])
        #expect(optimizer.groups[1].rules == ["adamw"] && optimizer.groups[1].options["eps"] == 1e-8)
    }

    /// A group's preset option that its chain does not read is refused naming the group, as any group's is.
    @Test func anOptionTheGroupsPresetDoesNotReadIsRefused() throws {
        let w = try Parameter("W", values: [Double](repeating: 0.5, count: 12), shape: [3, 4])
        #expect {
            try Optimizer([ParamGroup([w], preset: .muon(), options: ["beta1": 0.9])], preset: .adamW())
        } throws: { error in
            "\(error)".contains(#"unknown hyperparameter "beta1" in group 0"#)
        }
    }
}
