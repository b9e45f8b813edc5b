import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Rules that see their parameter whole (`REGULA_RULE_WHOLE_TENSOR`, ABI 1.3): run once per parameter between
/// the fused passes of the block rules around them, on any number of threads with the same bits, undone with
/// the rest of a failed step, refused where the rank is not theirs, and their declarations checked at load.
struct WholeTensorRuleTests {
    /// The rank-2 whole-tensor rule `row_center` (``PluginSource/rowCenter``).
    static let rowCenter = PluginSource.rowCenter

    /// A registry with the built-ins and `source`'s rules.
    static func registry(_ source: String, named name: String = "row_center") throws -> (RuleRegistry, TemporaryDirectory) {
        let folder = try TemporaryDirectory()
        let registry = RuleRegistry()
        try registry.loadBuiltins()
        try registry.loadPlugin(at: PluginCompiler.compile(source, named: name, in: folder).path)
        return (registry, folder)
    }

    /// Matrices of one, several and many blocks, with values and gradients from a seed.
    static func matrices(_ shapes: [[Int]], seed: UInt64) throws -> [Parameter] {
        var random = SeededGenerator(seed: seed)
        return try shapes.enumerated().map { index, shape in
            let count = shape.reduce(1, *)
            let parameter = try Parameter("W\(index)", values: (0..<count).map { _ in Double.random(in: -1...1, using: &random) },
                                          shape: shape)
            try parameter.setGradient((0..<count).map { _ in Double.random(in: -1...1, using: &random) })
            return parameter
        }
    }

    static let shapes = [[3, 5], [40, 100], [64, 600], [2, 2048]]

    /// `l2 > row_center > sgd`: the block rules before and after run as passes of their own, and the result
    /// is the arithmetic written out here, the same on one thread as on two.
    @Test func aWholeTensorRuleRunsBetweenBlockPassesWithTheSameBitsOnAnyThreadCount() throws {
        let (registry, folder) = try Self.registry(Self.rowCenter)
        defer { _ = folder }
        var results: [[[Double]]] = []
        for threads in [1, 2] {
            let parameters = try Self.matrices(Self.shapes, seed: 11)
            let optimizer = try Optimizer(parameters, rules: ["l2", "row_center", "sgd"],
                                          defaults: ["lr": 0.1, "weight_decay2": 0.01], registry: registry)
            optimizer.threads = threads
            try optimizer.step()
            results.append(try parameters.map { try $0.values(as: Double.self) })
            let reference = try Self.matrices(Self.shapes, seed: 11)
            for (index, (parameter, shape)) in zip(reference, Self.shapes).enumerated() {
                let p = try parameter.values(as: Double.self), g = try #require(try parameter.gradient(as: Double.self))
                var d = zip(g, p).map { $0 + 0.01 * $1 }
                let columns = shape[1]
                for row in 0..<shape[0] {
                    let range = (row * columns)..<((row + 1) * columns)
                    let mean = d[range].reduce(0, +) / Double(columns)
                    for i in range { d[i] -= mean }
                }
                let expected = zip(p, d).map { $0 - 0.1 * $1 }
                #expect(results.last![index] == expected, "W\(index) on \(threads) thread(s)")
                let norm = d.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let kept = try #require(optimizer.state(of: parameters[index])?.slots["norm"]?.first)
                #expect(abs(kept - norm) <= 1e-12 * norm, "the norm row_center kept for W\(index)")
            }
        }
        #expect(results[0] == results[1])
    }

    /// A whole-tensor kernel that fails undoes the step of every parameter, the ones stepped before it included.
    @Test func aFailingWholeTensorKernelUndoesTheWholeStep() throws {
        let (registry, folder) = try Self.registry(Self.rowCenter)
        defer { _ = folder }
        let parameters = try Self.matrices([[64, 600], [7, 3], [40, 100]], seed: 5)
        let before = try parameters.map { try $0.values(as: Double.self) }
        let optimizer = try Optimizer(parameters, rules: ["l2", "row_center", "momentum", "sgd"],
                                      defaults: ["lr": 0.1, "weight_decay2": 0.01, "momentum": 0.9], registry: registry)
        do {
            try optimizer.step()
            Issue.record("the step of a seven-row matrix succeeded")
        } catch {
            #expect("\(error)".contains("seven rows are refused"), "\(error)")
            #expect("\(error)".contains("W1"), "\(error)")
        }
        #expect(try parameters.map { try $0.values(as: Double.self) } == before)
        for parameter in parameters { #expect(optimizer.state(of: parameter)?.step ?? 0 == 0) }
    }

    /// A rule declaring ranks refuses a parameter of another rank when the optimizer is built, naming both.
    @Test func aParameterOfAnotherRankIsRefusedNamingTheRuleAndTheShape() throws {
        let (registry, folder) = try Self.registry(Self.rowCenter)
        defer { _ = folder }
        let vector = Parameter("bias", values: [1.0, 2.0, 3.0])
        #expect {
            try Optimizer([vector], rules: ["row_center", "sgd"], defaults: ["lr": 0.1], registry: registry)
        } throws: { error in
            "\(error)" == #"rule "row_center" steps parameters of rank 2 only; parameter "bias" has shape [3] (rank 1)"#
        }
        #expect(try registry.rule(named: "row_center").ranks == 2...2)
        #expect(try registry.rule(named: "row_center").isWholeTensor)
    }

    /// Declarations a 1.3 host refuses at load, with the words for each.
    @Test(arguments: [
        (".flags = REGULA_RULE_WHOLE_TENSOR", "does not set REGULA_RULE_USES_ABI_1_3"),
        (".flags = REGULA_RULE_USES_ABI_1_3, .min_rank = 3, .max_rank = 2", "min_rank 3 is above max_rank 2"),
        (".flags = REGULA_RULE_USES_ABI_1_3, .max_rank = 9", "max_rank is 9; allowed: 0 (no bound) or 1 to 8"),
        (".min_rank = 2", "does not set REGULA_RULE_USES_ABI_1_3"),
        (".flags = REGULA_RULE_WHOLE_TENSOR | REGULA_RULE_USES_ABI_1_3, REGULA_REDUCTIONS(sums, fold)",
         "sees whole tensors and also declares reductions"),
    ])
    func malformedDeclarationsAreRefusedAtLoad(fields: String, words: String) throws {
        let source = PluginSource.plugin(rules: ["{ RULE(\"bad_whole\"), .kernel = scale, \(fields) }"], declarations: """
            __attribute__((unused)) static const regula_reduction sums[] = { REGULA_REDUCTION("sum", NULL, REGULA_COMBINE_SUM) };
            __attribute__((unused)) static regula_status fold(const regula_block *b, double *p, regula_message *m) {
                (void)b; (void)m; p[0] += 1; return REGULA_OK;
            }
            """)
        let folder = try TemporaryDirectory()
        let path = try PluginCompiler.compile(source, named: "bad_whole", in: folder).path
        #expect {
            try RuleRegistry().loadPlugin(at: path)
        } throws: { error in
            "\(error)".contains(words) && "\(error)".contains("bad_whole")
        }
    }
}
