import Regula
import RegulaTestSupport
import Testing

/// The executor: the same bits whatever the thread count, for one large tensor, many small ones, and a
/// chain with a whole-parameter reduction.
@Suite struct ExecutionTests {
    let registry: RuleRegistry

    init() throws {
        registry = try RuleRegistry.standard(environment: [:])
        try registry.loadPlugin(at: TestPaths.binDirectory.appendingPathComponent("libRegulaExampleMaxNorm.so").path)
    }

    /// Runs three steps of `rules` over tensors of the given sizes with `threads` threads; returns every
    /// parameter and state slot, flattened.
    func run(sizes: [Int], rules: [String], threads: Int) throws -> [Float] {
        let parameters = sizes.enumerated().map { index, size in
            Parameter("p\(index)", values: (0..<size).map { Float(($0 * 31 + index * 7) % 97) / 24 - 2 })
        }
        let options = ["lr": 0.05, "momentum": 0.9, "weight_decay1": 1e-3, "weight_decay2": 1e-2, "max_norm": 20,
                       "weight_decay": 1e-2]
        let names = rules.flatMap { registry.chain(named: $0)?.rules ?? [$0] }
        let taken = Set(try names.flatMap { try registry.rule(named: $0).hyperparameters.map(\.name) })
        let optimizer = try Optimizer(parameters, rules: rules, defaults: options.filter { taken.contains($0.key) },
                                      registry: registry)
        optimizer.threads = threads
        #expect(optimizer.threads == threads)
        for step in 0..<3 {
            for (index, parameter) in parameters.enumerated() {
                try parameter.setGradient((0..<parameter.count).map { Float(($0 * 13 + index + step * 5) % 41) / 20 - 1 })
            }
            try optimizer.step()
        }
        // Every parameter with a gradient counts each step, the empty ones too.
        #expect(parameters.map { optimizer.state(of: $0)?.step } == parameters.map { _ in 3 }, "\(sizes), \(threads) threads")
        return try parameters.flatMap { parameter in
            let slots = optimizer.state(of: parameter)?.slots ?? [:]
            return try parameter.values(as: Float.self) + slots.keys.sorted().flatMap { slots[$0]!.map(Float.init) }
        }
    }

    static let layouts: [(String, [Int])] = [
        ("one large tensor", [300_001]),
        ("many small tensors", Array(repeating: 37, count: 3000) + [5000, 1, 70_000]),
    ]

    @Test(arguments: layouts.map(\.0))
    func threadCountDoesNotChangeABit(layout: String) throws {
        let sizes = Self.layouts.first { $0.0 == layout }!.1
        let rules = ["l1", "l2", "nesterov", "sgd"]
        let one = try run(sizes: sizes, rules: rules, threads: 1)
        for threads in [2, 3, 8] {
            let other = try run(sizes: sizes, rules: rules, threads: threads)
            #expect(one.map(\.bitPattern) == other.map(\.bitPattern), "\(threads) threads")
        }
    }

    @Test func reductionChainIsThreadIndependentToo() throws {
        let sizes = [200_003, 50, 40_000]
        let rules = ["l2", "momentum", "sgd", "max_norm"]
        let one = try run(sizes: sizes, rules: rules, threads: 1)
        let four = try run(sizes: sizes, rules: rules, threads: 4)
        #expect(one.map(\.bitPattern) == four.map(\.bitPattern))
        // And the bound holds for the large tensor.
        let large = one.prefix(200_003).map(Double.init)
        #expect(abs(large.reduce(0) { $0 + $1 * $1 }.squareRoot() - 20) < 1e-3)
    }

    /// Reductions over the whole step, leading (read from the gradients) and staged, and per-parameter stages
    /// after a prepare: the same bits for any thread count.
    @Test(arguments: [["clip_global_norm", "adamw"], ["momentum", "clip_global_norm", "sgd"], ["lamb"], ["nadam"]])
    func newReductionsAndPrepareAreThreadIndependent(rules: [String]) throws {
        let sizes = [150_001, 37, 3000, 70_000]
        let one = try run(sizes: sizes, rules: rules, threads: 1)
        for threads in [2, 3] {
            #expect(one.map(\.bitPattern) == (try run(sizes: sizes, rules: rules, threads: threads)).map(\.bitPattern),
                    "\(rules), \(threads) threads")
        }
    }

    /// Empty parameters where the threads' shares of the elements meet, and at the very end, still take their
    /// step (and count it), and a step-wide reduction sees every block exactly once.
    @Test func emptyParametersAtTheThreadsBoundariesAreSteppedOnce() throws {
        let sizes = [40_000, 0, 0, 40_000, 0]
        let one = try run(sizes: sizes, rules: ["clip_global_norm", "momentum", "sgd"], threads: 1)
        for threads in [2, 3, 4] {
            #expect(one.map(\.bitPattern) == (try run(sizes: sizes, rules: ["clip_global_norm", "momentum", "sgd"], threads: threads))
                .map(\.bitPattern), "\(threads) threads")
        }
    }

    /// The threads take the blocks in pieces of 65,536 elements, more pieces than threads: empty parameters
    /// where pieces meet are stepped once too, and results stay bit for bit those of one thread.
    @Test func emptyParametersWherePiecesMeetAreSteppedOnce() throws {
        let piece = 65_536  // the executor's piece (ChainExecutor.pieceElements)
        let sizes = [piece, 0, piece, 0, piece - 1, 1, 0]
        let one = try run(sizes: sizes, rules: ["clip_global_norm", "momentum", "sgd"], threads: 1)
        for threads in [2, 3] {
            #expect(one.map(\.bitPattern) == (try run(sizes: sizes, rules: ["clip_global_norm", "momentum", "sgd"], threads: threads))
                .map(\.bitPattern), "\(threads) threads")
        }
    }

    @Test func globalNormClipSpansEveryGroupAndSkipsParametersWithoutAGradient() throws {
        let a = Parameter("a", values: [Double](repeating: 0, count: 3)), b = Parameter("b", values: [Double](repeating: 0, count: 1))
        let idle = Parameter("idle", values: [Double](repeating: 0, count: 2))
        let optimizer = try Optimizer([ParamGroup([a, idle]), ParamGroup([b])], rules: ["clip_global_norm", "sgd"],
                                      defaults: ["lr": 1, "max_norm": 1], registry: registry)
        try a.setGradient([3.0, 0, 0])
        try b.setGradient([4.0])
        try optimizer.step()
        // The norm over a and b is 5: both are scaled by 1 / (5 + 1e-6), whatever group they are in.
        let scale = 1 / (5 + 1e-6)
        #expect(try a.values(as: Double.self) == [-3 * scale, 0, 0])
        #expect(try b.values(as: Double.self) == [-4 * scale])
        #expect(try idle.values(as: Double.self) == [0, 0])
    }

    @Test func kernelFailureNamesTheFirstFailingParameterWhateverTheThreads() throws {
        try registry.register(Rule(name: "fails_on_negative", summary: "refuses a negative update") { block in
            let d = block.update(as: Float.self)
            if (0..<block.count).contains(where: { d[$0] < 0 }) { throw RuleFailure("negative update") }
        })
        let parameters = (0..<6).map { Parameter("p\($0)", values: [Float](repeating: 1, count: 20_000)) }
        let optimizer = try Optimizer(parameters, rules: ["fails_on_negative", "sgd"], defaults: ["lr": 0.1], registry: registry)
        optimizer.threads = 2
        for (index, parameter) in parameters.enumerated() {
            try parameter.setGradient([Float](repeating: index >= 3 ? -1 : 1, count: 20_000))
        }
        #expect(throws: OptimizerError.kernelFailed(rule: "fails_on_negative", parameter: "p3", status: 1, message: "negative update")) {
            try optimizer.step()
        }
    }

    /// With many more pieces than threads, taken in whatever order the threads come, the failure reported is
    /// still the first in parameter order.
    @Test(arguments: [2, 3])
    func kernelFailureAmongManyPiecesNamesTheFirstFailingParameter(threads: Int) throws {
        try registry.register(Rule(name: "fails_on_negative", summary: "refuses a negative update") { block in
            let d = block.update(as: Float.self)
            if (0..<block.count).contains(where: { d[$0] < 0 }) { throw RuleFailure("negative update") }
        })
        let parameters = (0..<40).map { Parameter("p\($0)", values: [Float](repeating: 1, count: 20_000)) }
        let optimizer = try Optimizer(parameters, rules: ["fails_on_negative", "sgd"], defaults: ["lr": 0.1], registry: registry)
        optimizer.threads = threads
        for (index, parameter) in parameters.enumerated() {
            try parameter.setGradient([Float](repeating: index == 17 || index == 31 ? -1 : 1, count: 20_000))
        }
        #expect(throws: OptimizerError.kernelFailed(rule: "fails_on_negative", parameter: "p17", status: 1, message: "negative update")) {
            try optimizer.step()
        }
    }
}
