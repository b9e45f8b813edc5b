import Foundation
import Regula
import RegulaTestSupport
import Testing

/// A value a rule computes over its whole tensor and needs again next step (NovoGrad's layer-wise second
/// moment) kept without tricks (ABI 1.3): a whole-tensor rule writes it to a scalar slot of its parameter, and
/// the host keeps it across steps, reports it, checkpoints it and puts it back after a failed step.
struct KeptReductionTests {
    /// `layer_moment` keeps `v`, the running mean of the squared norm of each parameter's update (the first step
    /// takes the norm itself, as NovoGrad does), and divides the update by `sqrt(v) + eps`; with `fail` on it
    /// fails after writing `v`.
    static let source = PluginSource.plugin(rules: [#"""
        { RULE("layer_moment"), .summary = "divides by a running norm kept per parameter",
          .flags = REGULA_RULE_WHOLE_TENSOR | REGULA_RULE_USES_ABI_1_3, .kernel = layer_moment,
          REGULA_SLOTS(moment_slots), REGULA_HYPERPARAMETERS(moment_options) }
        """#], declarations: """
        static const regula_state_slot moment_slots[] = {
            { .struct_size = sizeof(regula_state_slot), .name = "v", .shape = REGULA_SLOT_SCALAR, .flags = REGULA_SLOT_NON_NEGATIVE },
        };
        static const regula_hyperparameter moment_options[] = {
            REGULA_REAL("beta", "decay of the running norm", 0.9, 0, 1), REGULA_REAL("eps", "added to the root", 1e-8, 0, 1),
            REGULA_SWITCH("fail", "fail after writing v"),
        };
        #include <math.h>
        REGULA_KERNEL(layer_moment, {
            T *d = (T *)block->update;
            double norm = 0, beta = block->hyperparameters[0], *v = &block->scalar_slots[0];
            for (size_t i = 0; i < block->length; i++) norm += (double)d[i] * (double)d[i];
            *v = block->step == 0 ? norm : beta * *v + (1 - beta) * norm;
            if (block->hyperparameters[2] != 0) return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "asked to fail");
            double scale = 1 / (sqrt(*v) + block->hyperparameters[1]);
            for (size_t i = 0; i < block->length; i++) d[i] = (T)((double)d[i] * scale);
        })
        """)

    static let shapes = [[4, 6], [50]]
    static let options = ["lr": 0.1, "beta": 0.8, "eps": 1e-8]

    /// Parameters of ``shapes`` with values from a seed.
    static func parameters() throws -> [Parameter] {
        var random = SeededGenerator(seed: 5)
        return try shapes.enumerated().map { index, shape in
            try Parameter("p\(index)", values: (0..<shape.reduce(1, *)).map { _ in Double.random(in: -1...1, using: &random) }, shape: shape)
        }
    }

    /// The gradient of parameter `index` at `step`.
    static func gradient(_ index: Int, step: Int, count: Int) -> [Double] {
        (0..<count).map { Double(($0 * 7 + index * 3 + step * 5) % 23) / 11 - 1 }
    }

    static func setGradients(_ parameters: [Parameter], step: Int) throws {
        for (index, parameter) in parameters.enumerated() { try parameter.setGradient(gradient(index, step: step, count: parameter.count)) }
    }

    /// The arithmetic written out: each parameter's `v` and values after `steps` steps of `layer_moment > sgd`.
    static func reference(steps: Int) throws -> [(v: Double, values: [Double])] {
        try parameters().enumerated().map { index, parameter in
            var p = try parameter.values(as: Double.self), v = 0.0
            for step in 0..<steps {
                let g = gradient(index, step: step, count: p.count)
                let norm = g.reduce(0) { $0 + $1 * $1 }
                v = step == 0 ? norm : 0.8 * v + (1 - 0.8) * norm
                let scale = 1 / (v.squareRoot() + 1e-8)
                p = zip(p, g).map { $0 - 0.1 * ($1 * scale) }
            }
            return (v, p)
        }
    }

    static func optimizer(_ parameters: [Parameter], registry: RuleRegistry) throws -> Optimizer {
        try Optimizer(parameters, rules: ["layer_moment", "sgd"], defaults: options, registry: registry)
    }

    static func registry() throws -> (RuleRegistry, TemporaryDirectory) {
        let folder = try TemporaryDirectory()
        let registry = RuleRegistry()
        try registry.loadBuiltins()
        try registry.loadPlugin(at: PluginCompiler.compile(source, named: "layer_moment", in: folder).path)
        return (registry, folder)
    }

    @Test func theKeptValueCarriesIntoTheNextStepsAndIsReportedAsState() throws {
        let (registry, folder) = try Self.registry()
        defer { _ = folder }
        let parameters = try Self.parameters()
        let optimizer = try Self.optimizer(parameters, registry: registry)
        for step in 0..<4 {
            try Self.setGradients(parameters, step: step)
            try optimizer.step()
        }
        for (parameter, expected) in zip(parameters, try Self.reference(steps: 4)) {
            let state = try #require(optimizer.state(of: parameter))
            #expect(state.slots["v"] == [expected.v], "\(parameter.name)")
            #expect(state.shapes["v"] == [])
            #expect(try parameter.values(as: Double.self) == expected.values, "\(parameter.name)")
        }
    }

    /// Saved after two steps and loaded into a fresh optimizer, the run goes on as if never stopped; a step that
    /// fails after the kernel wrote `v` leaves `v` as it was.
    @Test func theKeptValueSurvivesACheckpointAndAFailedStep() throws {
        let (registry, folder) = try Self.registry()
        let parameters = try Self.parameters()
        let first = try Self.optimizer(parameters, registry: registry)
        for step in 0..<2 {
            try Self.setGradients(parameters, step: step)
            try first.step()
        }
        let file = folder.url.appendingPathComponent("moment.safetensors")
        try first.saveCheckpoint(to: file)
        let resumed = try Self.parameters()
        let second = try Self.optimizer(resumed, registry: registry)
        try second.loadCheckpoint(from: file)

        try Self.setGradients(resumed, step: 2)
        let before = resumed.map { second.state(of: $0) }
        second.groups[0].options["fail"] = 1
        #expect(throws: OptimizerError.self) { try second.step() }
        #expect(resumed.map { second.state(of: $0) } == before)
        second.groups[0].options["fail"] = 0
        for step in 2..<4 {
            try Self.setGradients(resumed, step: step)
            try second.step()
        }
        for (parameter, expected) in zip(resumed, try Self.reference(steps: 4)) {
            #expect(second.state(of: parameter)?.slots["v"] == [expected.v], "\(parameter.name)")
            #expect(try parameter.values(as: Double.self) == expected.values, "\(parameter.name)")
        }
    }
}
