import Foundation
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

    /// A bias-corrected running mean, m = beta * m + (1 - beta) * d and d = m / (1 - beta^t), whose per-step
    /// constants `prepare` computes once per parameter into scratch, and which counts its prepare calls in a
    /// scalar slot: in C, and below in Swift with the same arithmetic.
    static let correctedSource = """
        #include <regula/regula.h>
        static const regula_hyperparameter hyperparameters[] = { REGULA_REAL("beta", "decay", 0.9, 0.0, 0.999) };
        static const regula_state_slot slots[] = {
            REGULA_SLOT("m", "running mean"),
            REGULA_SLOT_WITH("prepared", "prepare calls", .shape = REGULA_SLOT_SCALAR),
        };
        static regula_status corrections(const regula_block *parameter, double *scratch, regula_message *message) {
            (void)message;
            parameter->scalar_slots[0] += 1;
            scratch[0] = 1.0 - parameter->hyperparameters[0];
            scratch[1] = 1.0 / (1.0 - pow(parameter->hyperparameters[0], (double)(parameter->step + 1)));
            return REGULA_OK;
        }
        REGULA_KERNEL(corrected, {
            T *d = block->update, *m = block->elementwise_slots[0];
            const T beta = (T)block->hyperparameters[0], keep = (T)block->scratch[0], correction = (T)block->scratch[1];
            for (size_t i = 0; i < block->length; i++) { m[i] = beta * m[i] + keep * d[i]; d[i] = m[i] * correction; }
        })
        static const regula_rule rules[] = {
            REGULA_RULE("corrected", "bias-corrected running mean", .version = 1, .dtypes = REGULA_KERNEL_DTYPES,
                        .flags = REGULA_RULE_USES_ABI_1_2, REGULA_HYPERPARAMETERS(hyperparameters), REGULA_SLOTS(slots),
                        .kernel = corrected, REGULA_PREPARE(corrections, 2)),
        };
        REGULA_EXPORT_PLUGIN(rules)
        """

    /// The kernel of the Swift `corrected`, for elements of type `T`.
    static func correct<T: ParameterElement>(_ block: RuleBlock, _: T.Type) {
        let d = block.update(as: T.self), m = block.slot(0, as: T.self)
        let beta = T(block.hyperparameter(0)), keep = T(block.scratch[0]), correction = T(block.scratch[1])
        for i in 0..<block.count {
            m[i] = beta * m[i] + keep * d[i]
            d[i] = m[i] * correction
        }
    }

    static func correctedRule() throws -> Rule {
        try Rule(
            name: "corrected", summary: "bias-corrected running mean",
            hyperparameters: [Hyperparameter("beta", doc: "decay", default: 0.9, range: 0...0.999)],
            stateSlots: [StateSlot("m", doc: "running mean"), StateSlot("prepared", doc: "prepare calls", shape: .scalar)],
            scratchCount: 2,
            prepare: { parameter, scratch in
                #expect(parameter.count == 0 && parameter.scratch.isEmpty && scratch.allSatisfy { $0 == 0 })
                parameter.scalarSlots[0] += 1
                scratch[0] = 1 - parameter.hyperparameter(0)
                scratch[1] = 1 / (1 - pow(parameter.hyperparameter(0), Double(parameter.step + 1)))
            },
            kernel: { block in
                if block.dtype == .float32 { Self.correct(block, Float.self) } else { Self.correct(block, Double.self) }
            })
    }

    @Test(arguments: DType.allCases)
    func swiftPrepareAndScratchComputeWhatTheSameRuleInCComputes(dtype: DType) throws {
        let folder = try TemporaryDirectory()
        let fromC = try RuleRegistry.standard(environment: [:])
        try fromC.loadPlugin(at: PluginCompiler.compile(Self.correctedSource, named: "corrected", in: folder).path)
        try registry.register(Self.correctedRule())
        #expect(try registry.rule(named: "corrected").scratchCount == 2)
        func run(_ registry: RuleRegistry) throws -> (values: [Double], state: [String: [Double]]?) {
            // 5000 elements: several blocks, each reading the scratch its parameter's prepare wrote once.
            let values = (0..<5000).map { Double($0 % 17) / 8 - 1 }
            let w = dtype == .float32 ? Parameter("w", values: values.map(Float.init)) : Parameter("w", values: values)
            let optimizer = try Optimizer([ParamGroup([w]), ParamGroup([Parameter("b", values: [0.5, -0.5])], options: ["beta": 0.5])],
                                          rules: ["corrected", "sgd"], defaults: ["lr": 0.1], registry: registry)
            for step in 0..<4 {
                let gradient = (0..<5000).map { Double(($0 * 7 + step * 3) % 11) / 5 - 1 }
                if dtype == .float32 { try w.setGradient(gradient.map(Float.init)) } else { try w.setGradient(gradient) }
                try optimizer.step()
            }
            let result = try dtype == .float32 ? w.values(as: Float.self).map(Double.init) : w.values(as: Double.self)
            return (result, optimizer.state(of: w)?.slots)
        }
        let (swift, c) = (try run(registry), try run(fromC))
        #expect(swift.values.map(\.bitPattern) == c.values.map(\.bitPattern))
        #expect(swift.state == c.state)
        #expect(swift.state?["prepared"] == [4])
    }

    @Test func scratchWithoutPrepareIsRefused() {
        #expect {
            try Rule(name: "unprepared", summary: "asks for scratch nobody fills", scratchCount: 1) { _ in }
        } throws: { error in
            "\(error)".contains("asks for scratch but has no prepare function to fill it")
        }
    }

    @Test func registeringATakenNameIsRefused() throws {
        let l1Path = try registry.rule(named: "l1").origin.description
        #expect(throws: RegistryError.self) {
            try registry.register(Rule(name: "l1", summary: "impostor") { _ in })
        }
        #expect(try registry.rule(named: "l1").origin.description == l1Path)
    }
}
