import Foundation
import Regula
import RegulaTestSupport
import Testing

/// The contract grows by minor versions: plugins compiled against the 1.0, 1.1 and 1.2 headers (kept in
/// Tests/Fixtures/abi-1.0, abi-1.1 and abi-1.2, as they shipped) load into this host and compute bit for bit
/// what today's sources compiled against today's header compute: the same source for the stateful rule, and
/// for the examples their sources as they were before 1.3's declaration macros (frozen in
/// Tests/Fixtures/abi-compat-sources) against today's macro-based ones. And the 1.2 and 1.3 additions keep
/// their promises.
@Suite struct ABICompatibilityTests {
    /// A stateful rule using every 1.0 feature: a hyperparameter, a check, elementwise and scalar slots.
    static let statefulSource = """
        #include <regula/regula.h>
        static const regula_hyperparameter hyperparameters[] = {
            { .struct_size = sizeof(regula_hyperparameter), .name = "decay", .type = REGULA_HYPERPARAMETER_REAL,
              .default_value = 0.5, .minimum = 0.0, .maximum = 1.0 } };
        static const regula_state_slot slots[] = {
            { .struct_size = sizeof(regula_state_slot), .name = "trace", .shape = REGULA_SLOT_ELEMENTWISE, .initial_value = 0.25 },
            { .struct_size = sizeof(regula_state_slot), .name = "blocks", .shape = REGULA_SLOT_SCALAR } };
        static regula_status check(const double *values, void *data, regula_message *message) {
            (void)data;
            return values[0] == 1.0 ? regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "decay 1 never forgets") : REGULA_OK;
        }
        REGULA_KERNEL(trace_kernel, {
            T *d = (T *)block->update, *trace = (T *)block->elementwise_slots[0];
            const T decay = (T)block->hyperparameters[0];
            for (size_t i = 0; i < block->length; i++) { trace[i] = decay * trace[i] + d[i]; d[i] = trace[i]; }
            if (block->offset == 0) block->scalar_slots[0] += 1;
        })
        static const regula_rule rules[] = {
            { .struct_size = sizeof(regula_rule), .name = "trace", .version = 1, .summary = "a decaying trace",
              .dtypes = REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64, .hyperparameter_count = 1,
              .hyperparameters = hyperparameters, .slot_count = 2, .slots = slots, .kernel = trace_kernel, .check = check } };
        REGULA_EXPORT_PLUGIN(rules)
        """

    /// Builds the stateful rule and the max_norm and elastic_net examples against `headers` (nil: today's, with
    /// the examples as they are in Plugins/examples; an older header gets their frozen pre-1.3 sources).
    static func registry(headers: URL?, in folder: TemporaryDirectory) throws -> RuleRegistry {
        let registry = try RuleRegistry.standard(environment: [:])
        let tag = headers?.lastPathComponent.replacingOccurrences(of: ".", with: "_") ?? "current"
        try registry.loadPlugin(at: PluginCompiler.compile(statefulSource, named: "trace_\(tag)", in: folder, headers: headers).path)
        for example in ["max_norm", "elastic_net"] {
            let path = headers == nil ? "Plugins/examples/\(example)/\(example).c" : "Tests/Fixtures/abi-compat-sources/\(example).c"
            let source = try String(contentsOf: TestPaths.packageRoot.appendingPathComponent(path), encoding: .utf8)
            try registry.loadPlugin(at: PluginCompiler.compile(source, named: "\(example)_\(tag)", in: folder, headers: headers).path)
        }
        return registry
    }

    /// Parameters and state after six steps of `trace > elastic_net > sgd > max_norm` over two groups.
    static func trajectory(_ registry: RuleRegistry, dtype: DType) throws -> ([UInt64], [String: [Double]]) {
        func values(_ count: Int, _ seed: Int) -> [Double] { (0..<count).map { Double(($0 * 31 + seed) % 97) / 24 - 2 } }
        let parameters = [("w", 2500), ("b", 9)].map { name, count in
            dtype == .float32 ? Parameter(name, values: values(count, 1).map(Float.init)) : Parameter(name, values: values(count, 1))
        }
        let optimizer = try Optimizer([ParamGroup([parameters[0]]), ParamGroup([parameters[1]], options: ["decay": 0.9])],
                                      rules: ["trace", "elastic_net", "sgd", "max_norm"],
                                      defaults: ["lr": 0.05, "alpha": 1e-2, "l1_ratio": 0.3, "max_norm": 10], registry: registry)
        for step in 0..<6 {
            for parameter in parameters {
                let gradient = values(parameter.count, step * 11)
                if dtype == .float32 { try parameter.setGradient(gradient.map(Float.init)) } else { try parameter.setGradient(gradient) }
            }
            try optimizer.step()
        }
        let bits = try parameters.flatMap { dtype == .float32 ? try $0.values(as: Float.self).map { UInt64($0.bitPattern) }
                                                              : try $0.values(as: Double.self).map(\.bitPattern) }
        return (bits, optimizer.state(of: parameters[0])?.slots ?? [:])
    }

    @Test(arguments: ["abi-1.0", "abi-1.1", "abi-1.2"], DType.allCases)
    func pluginBuiltAgainstAnOlderHeaderComputesTheSame(version: String, dtype: DType) throws {
        let folder = try TemporaryDirectory()
        let old = try Self.registry(headers: TestPaths.fixtures(version), in: folder)
        let current = try Self.registry(headers: nil, in: folder)
        let (oldBits, oldState) = try Self.trajectory(old, dtype: dtype)
        let (currentBits, currentState) = try Self.trajectory(current, dtype: dtype)
        #expect(oldBits == currentBits)
        #expect(oldState == currentState)
        #expect(oldState["blocks"] == [6 * 1])
        // The older structs are smaller; what they lack reads as absent.
        let trace = try old.rule(named: "trace")
        #expect(trace.stateSlots.allSatisfy { $0.initialFrom == nil && $0.enabledBy == nil && !$0.isNonNegative })
        #expect(trace.scratchCount == 0 && !trace.updateOnly)
        #expect(try old.rule(named: "max_norm").reductions.map(\.scope) == [.parameter])
    }

    @Test func ruleUsingABI12FeaturesMustSayItDoes() throws {
        let folder = try TemporaryDirectory()
        let source = PluginSource.plugin(
            rules: [#"{ RULE("unflagged"), .kernel = scale, .slot_count = 1, .slots = slots, .hyperparameter_count = 1, .hyperparameters = on }"#],
            declarations: """
                static const regula_hyperparameter on[] = {{ .struct_size = sizeof(regula_hyperparameter), .name = "on",
                    .type = REGULA_HYPERPARAMETER_BOOLEAN, .minimum = 0, .maximum = 1 }};
                static const regula_state_slot slots[] = {{ .struct_size = sizeof(regula_state_slot), .name = "s",
                    .shape = REGULA_SLOT_ELEMENTWISE, .enabled_by = "on" }};
                """)
        let file = try PluginCompiler.compile(source, named: "unflagged", in: folder)
        #expect {
            try RuleRegistry().loadPlugin(at: file.path)
        } throws: { error in
            "\(error)".contains("does not set REGULA_RULE_USES_ABI_1_2")
        }
    }

    /// A plugin with one slot declared by `slot` (the fields after `.name = "s"`), compiled against today's header.
    static func slotPlugin(_ slot: String, named name: String, in folder: TemporaryDirectory) throws -> URL {
        try PluginCompiler.compile(PluginSource.plugin(
            rules: [#"{ RULE("\#(name)"), .kernel = scale, .flags = REGULA_RULE_USES_ABI_1_2, .slot_count = 1, .slots = slots, .hyperparameter_count = 1, .hyperparameters = start }"#],
            declarations: """
                static const regula_hyperparameter start[] = {{ .struct_size = sizeof(regula_hyperparameter), .name = "start",
                    .type = REGULA_HYPERPARAMETER_REAL, .minimum = -1, .maximum = 1 }};
                static const regula_state_slot slots[] = {{ .struct_size = sizeof(regula_state_slot), .name = "s", \(slot) }};
                """), named: name, in: folder)
    }

    @Test func slotDeclaredNonNegativeLoadsAsSuch() throws {
        let folder = try TemporaryDirectory()
        let registry = RuleRegistry()
        try registry.loadPlugin(at: Self.slotPlugin(".flags = REGULA_SLOT_NON_NEGATIVE", named: "squares", in: folder).path)
        #expect(try registry.rule(named: "squares").stateSlots.map(\.isNonNegative) == [true])
    }

    @Test(arguments: [
        (".flags = 0x6", "sets unknown flags 0x4; ABI 1.3 defines REGULA_SLOT_NON_NEGATIVE (0x1) and REGULA_SLOT_FROM_PARAMETER (0x2)"),
        (".flags = REGULA_SLOT_NON_NEGATIVE, .initial_value = -0.5", "state slot \"s\" of rule \"bad_slot\": declared non-negative, but its initial value is -0.5"),
        (".flags = REGULA_SLOT_NON_NEGATIVE, .initial_from = \"start\"", "declared non-negative, but it starts from \"start\", which may be as low as -1"),
    ])
    func slotDeclarationThatContradictsItselfIsRefused(slot: String, words: String) throws {
        let folder = try TemporaryDirectory()
        let file = try Self.slotPlugin(slot, named: "bad_slot", in: folder)
        #expect {
            try RuleRegistry().loadPlugin(at: file.path)
        } throws: { error in
            "\(error)".contains(words) && "\(error)".contains(file.path)
        }
    }

    @Test func slotSwitchMustNameAHyperparameterOfTheRule() throws {
        let folder = try TemporaryDirectory()
        let source = PluginSource.plugin(
            rules: [#"{ RULE("bad_switch"), .kernel = scale, .flags = REGULA_RULE_USES_ABI_1_2, .slot_count = 1, .slots = slots }"#],
            declarations: """
                static const regula_state_slot slots[] = {{ .struct_size = sizeof(regula_state_slot), .name = "s",
                    .shape = REGULA_SLOT_ELEMENTWISE, .enabled_by = "missing" }};
                """)
        let file = try PluginCompiler.compile(source, named: "bad_switch", in: folder)
        #expect {
            try RuleRegistry().loadPlugin(at: file.path)
        } throws: { error in
            "\(error)".contains("enabled_by names \"missing\", which is not one of the rule's hyperparameters")
        }
    }

    /// A rule whose prepare advances a scalar slot and fails on the parameter's third step.
    static let failingPrepareSource = PluginSource.plugin(
        rules: [#"{ RULE("counting"), .kernel = scaled, .flags = REGULA_RULE_USES_ABI_1_2, .slot_count = 1, .slots = slots, .prepare = count, .scratch_count = 1 }"#],
        declarations: """
            static const regula_state_slot slots[] = {{ .struct_size = sizeof(regula_state_slot), .name = "calls",
                .shape = REGULA_SLOT_SCALAR }};
            static regula_status count(const regula_block *parameter, double *scratch, regula_message *message) {
                parameter->scalar_slots[0] += 1;
                scratch[0] = parameter->scalar_slots[0];
                if (parameter->step == 2) return regula_message_set(message, REGULA_ERROR_NUMERIC, "third step refused");
                return REGULA_OK;
            }
            REGULA_KERNEL(scaled, {
                T *d = (T *)block->update;
                for (size_t i = 0; i < block->length; i++) d[i] *= (T)block->scratch[0];
            })
            """)

    @Test func prepareRunsOncePerParameterAndAFailureChangesNothing() throws {
        let folder = try TemporaryDirectory()
        let registry = try RuleRegistry.standard(environment: [:])
        try registry.loadPlugin(at: PluginCompiler.compile(Self.failingPrepareSource, named: "counting", in: folder).path)
        // 5000 elements: several blocks, each sees the scratch its parameter's prepare wrote once.
        let w = Parameter("w", values: [Double](repeating: 0, count: 5000))
        let optimizer = try Optimizer([w], rules: ["counting", "sgd"], defaults: ["lr": 1], registry: registry)
        try w.setGradient([Double](repeating: 1, count: 5000))
        try optimizer.step()
        try optimizer.step()
        // Steps scaled the gradient by 1, then by 2: p = -1 - 2.
        #expect(try w.values(as: Double.self).allSatisfy { $0 == -3 })
        let before = optimizer.state(of: w)
        #expect(before?.slots["calls"] == [2])
        #expect {
            try optimizer.step()
        } throws: { error in
            "\(error)".contains("prepare: third step refused")
        }
        #expect(optimizer.state(of: w) == before)
        #expect(try w.values(as: Double.self).allSatisfy { $0 == -3 })
    }
}
