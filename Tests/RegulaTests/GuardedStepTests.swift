import Foundation
import Regula
import RegulaTestSupport
import Testing

/// A step is all or nothing: a failing rule, or a skipped non-finite step, leaves every parameter and every
/// piece of state bit-identical to before.
@Suite struct GuardedStepTests {
    let registry: RuleRegistry

    init() throws {
        registry = try RuleRegistry.standard(environment: [:])
        try registry.loadPlugin(at: TestPaths.binDirectory.appendingPathComponent("libRegulaExampleMaxNorm.so").path)
        // Fails on any block whose update holds a value above 100; keeps a scalar count of the steps it saw,
        // written by the first block only (blocks of a parameter run at once and share its scalar slots).
        try registry.register(Rule(name: "fails_above_100", summary: "refuses large updates",
                                   stateSlots: [StateSlot("steps_seen", shape: .scalar)]) { block in
            if block.offset == 0 { block.scalarSlots[0] += 1 }
            switch block.dtype {
            case .float32: if block.update(as: Float.self).contains(where: { $0 > 100 }) { throw RuleFailure("update above 100") }
            case .float64: if block.update(as: Double.self).contains(where: { $0 > 100 }) { throw RuleFailure("update above 100") }
            }
        })
    }

    /// Every parameter's bits and every state slot's bits.
    func snapshot(_ parameters: [Parameter], _ optimizer: Optimizer) throws -> [[UInt64]] {
        try parameters.map { parameter in
            let state = optimizer.state(of: parameter)
            return try parameter.values(as: Float.self).map { UInt64($0.bitPattern) }
                + (state?.slots.keys.sorted().flatMap { state!.slots[$0]!.map(\.bitPattern) } ?? [])
                + [UInt64(state?.step ?? -1)]
        }
    }

    /// Whether every bit is as in `before` (a Bool, so a failure does not print every value).
    func unchanged(_ parameters: [Parameter], _ optimizer: Optimizer, since before: [[UInt64]]) throws -> Bool {
        try snapshot(parameters, optimizer) == before
    }

    func model(_ rules: [String], options: [String: Double], threads: Int) throws -> ([Parameter], Optimizer) {
        let parameters = [50_000, 10, 7000, 30_000].enumerated().map { index, count in
            Parameter("p\(index)", values: (0..<count).map { Float(($0 * 7 + index) % 23) / 11 - 1 })
        }
        let optimizer = try Optimizer(parameters, rules: rules, defaults: options, registry: registry)
        optimizer.threads = threads
        for parameter in parameters {
            try parameter.setGradient((0..<parameter.count).map { Float($0 % 5) / 4 })
        }
        try optimizer.step()
        try optimizer.step()
        return (parameters, optimizer)
    }

    @Test(arguments: [1, 2])
    func failingRuleLeavesEverythingAsItWas(threads: Int) throws {
        let (parameters, optimizer) = try model(["l1", "momentum", "fails_above_100", "sgd"],
                                                options: ["lr": 0.1, "momentum": 0.9, "weight_decay1": 0.01], threads: threads)
        let before = try snapshot(parameters, optimizer)
        // A gradient that only the third parameter's last blocks make too large.
        try parameters[2].setGradient((0..<7000).map { $0 > 6000 ? Float(1000) : 0.5 })
        #expect(throws: OptimizerError.kernelFailed(rule: "fails_above_100", parameter: "p2", status: 1, message: "update above 100")) {
            try optimizer.step()
        }
        #expect(try unchanged(parameters, optimizer, since: before), "the step changed a parameter or its state")
    }

    @Test func failingReductionChainLeavesEverythingAsItWas() throws {
        let (parameters, optimizer) = try model(["momentum", "fails_above_100", "sgd", "max_norm"],
                                                options: ["lr": 0.1, "momentum": 0.9, "max_norm": 5], threads: 2)
        let before = try snapshot(parameters, optimizer)
        try parameters[3].setGradient((0..<30_000).map { $0 == 29_999 ? Float(1000) : 0.5 })
        #expect(throws: OptimizerError.self) { try optimizer.step() }
        #expect(try unchanged(parameters, optimizer, since: before), "the step changed a parameter or its state")
    }

    @Test func nonFiniteGradientSkipsTheWholeStep() throws {
        let (parameters, optimizer) = try model(["l2", "nesterov", "sgd"],
                                                options: ["lr": 0.1, "momentum": 0.9, "weight_decay2": 0.01], threads: 2)
        optimizer.nonFiniteSteps = .skip
        let before = try snapshot(parameters, optimizer)
        try parameters[3].setGradient((0..<30_000).map { $0 == 12_345 ? Float.nan : 0.5 })
        let outcome = try optimizer.step()
        #expect(outcome == .skipped(reason: "the gradient of parameter \"p3\" has a NaN or an infinity"))
        #expect(optimizer.skippedSteps == 1)
        #expect(try unchanged(parameters, optimizer, since: before), "the step changed a parameter or its state")
        try parameters[3].setGradient([Float](repeating: 0.5, count: 30_000))
        #expect(try optimizer.step() == .applied)
        #expect(optimizer.skippedSteps == 1)
        #expect(try !unchanged(parameters, optimizer, since: before))
    }

    @Test func updateThatOverflowsSkipsTheWholeStep() throws {
        let (parameters, optimizer) = try model(["sgd"], options: ["lr": 1], threads: 1)
        optimizer.nonFiniteSteps = .skip
        let before = try snapshot(parameters, optimizer)
        optimizer.groups[0].learningRate = 1e38
        try parameters[0].setGradient([Float](repeating: 1e10, count: 50_000))
        let outcome = try optimizer.step()
        #expect(outcome == .skipped(reason: "the update would leave a NaN or an infinity in parameter \"p0\" or its state"))
        #expect(try unchanged(parameters, optimizer, since: before), "the step changed a parameter or its state")
    }

    @Test func withoutTheGuardANonFiniteStepIsTaken() throws {
        let (parameters, optimizer) = try model(["sgd"], options: ["lr": 0.1], threads: 1)
        try parameters[1].setGradient((0..<10).map { _ in Float.infinity })
        #expect(try optimizer.step() == .applied)
        #expect(try parameters[1].values(as: Float.self).allSatisfy { $0 == -.infinity })
    }
}

/// Rules that declare they never fail need no journal; one that lies is reported as such.
@Suite struct NeverFailingRuleTests {
    @Test func builtinsDeclareTheyNeverFail() throws {
        let registry = try RuleRegistry.standard(environment: [:])
        for name in ["l1", "l2", "momentum", "nesterov", "sgd"] { #expect(try registry.rule(named: name).neverFails, "\(name)") }
    }

    @Test func aRuleThatBreaksItsWordIsReportedWithTheConsequence() throws {
        let folder = try TemporaryDirectory()
        let liar = try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("liar"), .flags = REGULA_RULE_NEVER_FAILS, .kernel = fails }"#],
            declarations: #"REGULA_KERNEL(fails, { (void)sizeof(T); return regula_message_set(message, 3, "broke its word"); })"#),
            named: "liar", in: folder)
        let registry = try RuleRegistry.standard(environment: [:])
        try registry.loadPlugin(at: liar.path)
        #expect(try registry.rule(named: "liar").neverFails)
        let w = Parameter("w", values: [1.0, 2.0])
        let optimizer = try Optimizer([w], rules: ["sgd", "liar"], defaults: ["lr": 0.5], registry: registry)
        try w.setGradient([1.0, 1.0])
        do {
            try optimizer.step()
            Issue.record("the failing rule was not reported")
        } catch {
            #expect("\(error)".contains("broke its word (the rule declared it never fails, so the step was not journaled and is left half done)"), "\(error)")
        }
        // With the non-finite guard on, steps are journaled whatever the rules declare, so the same failure
        // changes nothing.
        optimizer.nonFiniteSteps = .skip
        let before = try w.values(as: Double.self)
        #expect(throws: OptimizerError.self) { try optimizer.step() }
        #expect(try w.values(as: Double.self) == before)
    }
}
