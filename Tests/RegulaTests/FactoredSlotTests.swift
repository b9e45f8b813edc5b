import Foundation
import Regula
import RegulaTestSupport
import Testing

/// State shaped by the parameter (ABI 1.3): rows and columns slots over the last two dimensions, slots that
/// exist only for some ranks, and slots that start from the parameter's values — their sizes, shapes, absence
/// (NULL to the kernel, no key in the state), checkpoints, and the undo of a failed step.
struct FactoredSlotTests {
    /// `factor_test` (whole tensor) adds each row's and each column's gradient sum to `row_sum` and `col_sum`,
    /// adds the gradient to `vector_sum` (vectors only), and moves `z` (started at the parameter's values) by the
    /// gradient; then steps the parameter by `lr` times the gradient. With `fail` on it fails after writing its
    /// slots, and it fails whenever a slot is present or absent against its declaration.
    static let source = PluginSource.plugin(rules: [#"""
        { RULE("factor_test"), .flags = REGULA_RULE_WHOLE_TENSOR | REGULA_RULE_USES_ABI_1_3, .kernel = factor,
          REGULA_SLOTS(factor_slots), REGULA_HYPERPARAMETERS(factor_options) }
        """#], declarations: """
        static const regula_state_slot factor_slots[] = {
            { .struct_size = sizeof(regula_state_slot), .name = "row_sum", .shape = REGULA_SLOT_ROWS },
            { .struct_size = sizeof(regula_state_slot), .name = "col_sum", .shape = REGULA_SLOT_COLUMNS },
            { .struct_size = sizeof(regula_state_slot), .name = "vector_sum", .max_rank = 1 },
            { .struct_size = sizeof(regula_state_slot), .name = "z", .flags = REGULA_SLOT_FROM_PARAMETER },
        };
        static const regula_hyperparameter factor_options[] = {
            REGULA_REAL("lr", "step size", 0.5, 0, 10), REGULA_SWITCH("fail", "fail after writing the slots"),
        };
        REGULA_KERNEL(factor, {
            T *const *slots = (T *const *)block->elementwise_slots;
            const T *g = (const T *)block->grad;
            T *p = (T *)block->param;
            int matrix = block->rank >= 2;
            if ((slots[0] != NULL) != matrix || (slots[1] != NULL) != matrix || (slots[2] != NULL) == matrix || !slots[3])
                return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "a slot is present or absent wrongly");
            if (matrix) {
                size_t n = block->shape[block->rank - 1], m = block->shape[block->rank - 2], batches = m * n != 0 ? block->length / (m * n) : 0;
                for (size_t b = 0; b < batches; b++)
                    for (size_t i = 0; i < m; i++)
                        for (size_t j = 0; j < n; j++) {
                            T x = g[(b * m + i) * n + j];
                            slots[0][b * m + i] += x;
                            slots[1][b * n + j] += x;
                        }
            } else {
                for (size_t i = 0; i < block->length; i++) slots[2][i] += g[i];
            }
            for (size_t i = 0; i < block->length; i++) slots[3][i] += g[i];
            if (block->hyperparameters[1] != 0) return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "asked to fail");
            for (size_t i = 0; i < block->length; i++) p[i] -= (T)block->hyperparameters[0] * g[i];
        })
        """)

    static func registry() throws -> (RuleRegistry, TemporaryDirectory) {
        let folder = try TemporaryDirectory()
        let registry = RuleRegistry()
        try registry.loadPlugin(at: PluginCompiler.compile(source, named: "factor_test", in: folder).path)
        return (registry, folder)
    }

    /// A matrix, a rank-3 tensor and a vector, with gradients that are their element indices.
    static func parameters() throws -> [Parameter] {
        try [("W", [3, 5]), ("T", [2, 3, 4]), ("v", [6])].map { name, shape in
            let count = shape.reduce(1, *)
            let parameter = try Parameter(name, values: (0..<count).map { Double($0) / 10 }, shape: shape)
            try parameter.setGradient((0..<count).map { Double($0) })
            return parameter
        }
    }

    /// The sums after `steps` steps of gradient `index`, written out: rows and columns over the last two sizes.
    static func expectedState(shape: [Int], steps: Int) -> [String: [Double]] {
        let count = shape.reduce(1, *), s = Double(steps)
        var state = ["z": (0..<count).map { Double($0) / 10 + s * Double($0) }]
        guard shape.count >= 2 else {
            state["vector_sum"] = (0..<count).map { s * Double($0) }
            return state
        }
        let n = shape[shape.count - 1], m = shape[shape.count - 2]
        var rows = [Double](repeating: 0, count: count / n), columns = [Double](repeating: 0, count: count / m)
        for index in 0..<count {
            let batch = index / (m * n), row = index / n, column = index % n
            rows[row] += s * Double(index)
            columns[batch * n + column] += s * Double(index)
        }
        state["row_sum"] = rows
        state["col_sum"] = columns
        return state
    }

    @Test func slotsTakeTheShapesOfTheirParameterAndExistOnlyForTheirRanks() throws {
        let (registry, folder) = try Self.registry()
        defer { _ = folder }
        let parameters = try Self.parameters()
        let optimizer = try Optimizer(parameters, rules: ["factor_test"], registry: registry)
        for _ in 0..<2 { try optimizer.step() }
        let shapes: [String: [String: [Int]]] = [
            "W": ["row_sum": [3, 1], "col_sum": [1, 5], "z": [3, 5]],
            "T": ["row_sum": [2, 3, 1], "col_sum": [2, 1, 4], "z": [2, 3, 4]],
            "v": ["vector_sum": [6], "z": [6]],
        ]
        for parameter in parameters {
            let state = try #require(optimizer.state(of: parameter))
            #expect(state.slots == Self.expectedState(shape: parameter.shape, steps: 2), "\(parameter.name)")
            #expect(state.shapes == shapes[parameter.name], "\(parameter.name)")
        }
    }

    /// A checkpoint holds each slot at its own shape, and a fresh optimizer restored from it continues with
    /// the same state.
    @Test func checkpointsKeepFactoredSlotsAtTheirShapes() throws {
        let (registry, folder) = try Self.registry()
        let parameters = try Self.parameters()
        let optimizer = try Optimizer(parameters, rules: ["factor_test"], registry: registry)
        try optimizer.step()
        let file = folder.url.appendingPathComponent("factored.safetensors")
        try optimizer.saveCheckpoint(to: file)
        let restored = try Self.parameters()
        let other = try Optimizer(restored, rules: ["factor_test"], registry: registry)
        try other.loadCheckpoint(from: file)
        for (mine, theirs) in zip(parameters, restored) {
            #expect(other.state(of: theirs) == optimizer.state(of: mine))
            #expect(other.state(of: theirs)?.shapes == optimizer.state(of: mine)?.shapes)
        }
        try other.step()
        for parameter in restored {
            #expect(other.state(of: parameter)?.slots == Self.expectedState(shape: parameter.shape, steps: 2), "\(parameter.name)")
        }
    }

    /// A step whose kernel fails after writing the rows, columns and other slots leaves every one as it was.
    @Test func aFailedStepPutsBackRowsAndColumns() throws {
        let (registry, folder) = try Self.registry()
        defer { _ = folder }
        let parameters = try Self.parameters()
        let optimizer = try Optimizer(parameters, rules: ["factor_test"], registry: registry)
        try optimizer.step()
        let before = parameters.map { optimizer.state(of: $0) }
        let values = try parameters.map { try $0.values(as: Double.self) }
        optimizer.groups[0].options["fail"] = 1
        #expect(throws: OptimizerError.self) { try optimizer.step() }
        #expect(parameters.map { optimizer.state(of: $0) } == before)
        #expect(try parameters.map { try $0.values(as: Double.self) } == values)
    }

    /// Declarations a 1.3 host refuses at load, with the words for each.
    @Test(arguments: [
        ("REGULA_RULE_USES_ABI_1_3", ".shape = REGULA_SLOT_ROWS", "a rows slot needs a whole-tensor rule"),
        ("REGULA_RULE_WHOLE_TENSOR | REGULA_RULE_USES_ABI_1_3", ".shape = REGULA_SLOT_COLUMNS, .min_rank = 1",
         "a columns slot exists for ranks 2 and up, not 1"),
        ("REGULA_RULE_USES_ABI_1_3", ".shape = REGULA_SLOT_SCALAR, .flags = REGULA_SLOT_FROM_PARAMETER",
         "only an elementwise slot can start from the parameter's values"),
        ("0", ".flags = REGULA_SLOT_FROM_PARAMETER", "does not set REGULA_RULE_USES_ABI_1_3"),
        ("0", ".max_rank = 1", "does not set REGULA_RULE_USES_ABI_1_3"),
        ("REGULA_RULE_USES_ABI_1_3", ".flags = 0x4", "sets unknown flags 0x4"),
    ])
    func malformedSlotsAreRefusedAtLoad(flags: String, slot: String, words: String) throws {
        let source = PluginSource.plugin(rules: ["{ RULE(\"bad_slot\"), .kernel = scale, .flags = \(flags), REGULA_SLOTS(bad) }"],
                                         declarations: """
            static const regula_state_slot bad[] = { { .struct_size = sizeof(regula_state_slot), .name = "s", \(slot) } };
            """)
        let folder = try TemporaryDirectory()
        let path = try PluginCompiler.compile(source, named: "bad_slot", in: folder).path
        #expect {
            try RuleRegistry().loadPlugin(at: path)
        } throws: { error in
            "\(error)".contains(words)
        }
    }

    /// ``source`` with the one-line summary `regula check` asks of a rule.
    static let checkedSource = source.replacingOccurrences(of: #"RULE("factor_test"),"#,
                                                           with: #"RULE("factor_test"), .summary = "sums rows and columns","#)

    /// `regula check` hands the slots as the host does: `factor_test` fails whenever a slot is present or absent
    /// against its declaration, so it passes every check only if each shape gets the right slots, at their
    /// lengths (the guard pages sit right after each one).
    @Test(arguments: [[], ["--shape", "5003"], ["--shape", "3,8,5"]])
    func theCheckHandsEachShapeItsSlots(_ shape: [String]) throws {
        let folder = try TemporaryDirectory()
        let file = try PluginCompiler.compile(Self.checkedSource, named: "factor_test", in: folder)
        let (output, results) = try ConformanceTests.checked(file, shape + ["--option", "fail=0"])
        #expect(output.status == 0, "\(output.standardOutput)\(output.standardError)")
        #expect(results.count >= 12 && results.allSatisfy(\.passed), "\(output.standardOutput)")
    }

    /// A kernel that writes one element past its rows slot fails the check for writes outside, naming the slot.
    @Test func writingPastARowsSlotFailsTheCheck() throws {
        let folder = try TemporaryDirectory()
        let broken = Self.checkedSource.replacingOccurrences(of: "slots[0][b * m + i] += x;",
                                                             with: "slots[0][b * m + i] += x; if (i == 0 && j == 0) slots[0][batches * m] = 1;")
        #expect(broken != Self.checkedSource)
        let file = try PluginCompiler.compile(broken, named: "factor_test", in: folder)
        let (output, results) = try ConformanceTests.checked(file, ["--option", "fail=0", "--skip", "factor_test:guard-after"])
        #expect(output.status == 1)
        let result = try #require(results.first { $0.check == .writesInsideBlock }, "\(output.standardOutput)")
        #expect(!result.passed && result.detail.contains("row_sum[24] changed, outside the slot's 24 elements"), "\(result.detail)")
    }
}
