import Regula
import RegulaTestSupport
import Testing

/// Rules defined in Swift code: turned into C function pointers by libffi and run like loaded ones.
@Suite struct SwiftRuleTests {
    let registry = try! RuleRegistry.standard(environment: [:])

    /// d ← factor · d, and a running sum of updates in an elementwise slot.
    static func scaleRule() throws -> Rule {
        try Rule(name: "scale", summary: "multiplies the update by factor",
                 hyperparameters: [Hyperparameter("factor", doc: "multiplier", default: 1, range: 0...10)],
                 stateSlots: [StateSlot("total", doc: "sum of scaled updates")]) { block in
            switch block.dtype {
            case .float32:
                let d = block.update(as: Float.self), total = block.slot(0, as: Float.self)
                for i in 0..<block.count {
                    d[i] *= Float(block.hyperparameter(0))
                    total[i] += d[i]
                }
            case .float64:
                let d = block.update(as: Double.self), total = block.slot(0, as: Double.self)
                for i in 0..<block.count {
                    d[i] *= block.hyperparameter(0)
                    total[i] += d[i]
                }
            }
        }
    }

    @Test func swiftRuleStepsLikeALoadedOne() throws {
        try registry.register(Self.scaleRule())
        let values = (0..<5000).map { Double($0 % 9) - 4 }, gradient = (0..<5000).map { Double($0 % 5) - 2 }
        let w = Parameter("w", values: values)
        let optimizer = try Optimizer([w], rules: ["scale", "sgd"], defaults: ["lr": 0.25, "factor": 3],
                                      registry: registry)
        try w.setGradient(gradient)
        try optimizer.step()
        try optimizer.step()
        #expect(try w.values(as: Double.self) == zip(values, gradient).map { $0 - 0.25 * (3 * $1) - 0.25 * (3 * $1) })
        #expect(optimizer.state(of: w)?.slots["total"] == gradient.map { 3 * $0 + 3 * $0 })
        #expect(try registry.rule(named: "scale").origin.description.contains("SwiftRuleTests.swift"))
    }

    @Test func swiftRuleHandlesFloat32() throws {
        try registry.register(Self.scaleRule())
        let w = Parameter("w", values: [Float(1), 2])
        let optimizer = try Optimizer([w], rules: ["scale", "sgd"], defaults: ["lr": 0.5, "factor": 2], registry: registry)
        try w.setGradient([Float(1), -1])
        try optimizer.step()
        #expect(try w.values(as: Float.self) == [Float(0), 3])
    }

    @Test func errorThrownByASwiftKernelFailsTheStepWithItsWords() throws {
        try registry.register(Rule(name: "refuse", summary: "always fails") { _ in
            throw RuleFailure("no update today")
        })
        let w = Parameter("w", values: [1.0])
        let optimizer = try Optimizer([w], rules: ["refuse", "sgd"], defaults: ["lr": 0.1], registry: registry)
        try w.setGradient([1.0])
        #expect(throws: OptimizerError.kernelFailed(rule: "refuse", parameter: "w", status: 1, message: "no update today")) {
            try optimizer.step()
        }
    }

    @Test func swiftCheckRefusesACombination() throws {
        try registry.register(Rule(
            name: "bounded", summary: "needs low < high",
            hyperparameters: [Hyperparameter("low", default: 0), Hyperparameter("high", default: 1)],
            check: { values in if values[0] >= values[1] { throw RuleFailure("low must be below high") } },
            kernel: { _ in }))
        #expect(throws: OptimizerError.combinationRejected(rule: "bounded", group: 0, message: "low must be below high")) {
            try Optimizer([Parameter("w", values: [1.0])], rules: ["bounded", "sgd"],
                          defaults: ["lr": 0.1, "low": 2, "high": 1], registry: registry)
        }
    }

    @Test func malformedSwiftRuleIsRefused() {
        #expect(throws: RuleDeclarationError.self) {
            try Rule(name: "2fast", summary: "bad name") { _ in }
        }
        do {
            _ = try Rule(name: "ok", summary: "default outside range",
                         hyperparameters: [Hyperparameter("beta", default: 2, range: 0...1)]) { _ in }
            Issue.record("a default outside its range was accepted")
        } catch {
            #expect("\(error)".contains("\"beta\""))
            #expect("\(error)".contains("outside its range"))
        }
    }

    @Test func registeringATakenNameIsRefused() throws {
        let l1Path = try registry.rule(named: "l1").origin.description
        #expect(throws: PluginLoadError.self) {
            try registry.register(Rule(name: "l1", summary: "impostor") { _ in })
        }
        #expect(try registry.rule(named: "l1").origin.description == l1Path)
    }
}
