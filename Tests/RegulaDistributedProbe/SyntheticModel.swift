import Foundation
import Regula
import RegulaDistributed

/// A model whose gradients are cheap and known: three parameters (one over several blocks, one of 7 elements,
/// one of 1, so that some ranks' shares are empty) in two groups, and a batch of 12 samples. Sample i pulls
/// element j of parameter k towards x(k, i, j) with weight s(k, i, j): its gradient is s · (p − x). The
/// gradient of a set of samples is the mean of theirs, so the mean over ranks of equal shares of the batch is
/// the whole batch's gradient.
enum SyntheticModel {
    static let shapes = [("w", 2500), ("v", 7), ("b", 1)]
    static let batch = 12

    /// A chain the tests run, with its options.
    struct Chain {
        let name: String
        let rules: [String]
        let defaults: [String: Double]
        /// The options of the second group, laid over the defaults.
        let secondGroup: [String: Double]
        /// The second group's own chain (``ParamGroup/rules``), or nil for `rules`.
        var secondRules: [String]? = nil
    }

    static let chains = [
        // Elementwise only, with a scalar slot advanced in prepare (nadam's mu_product).
        Chain(name: "plain", rules: ["l1", "nadam"], defaults: ["lr": 0.01, "weight_decay1": 1e-3], secondGroup: ["lr": 0.02]),
        // A step-wide reduction first, then lamb's per-parameter trust ratio in a later stage.
        Chain(name: "reductions", rules: ["clip_global_norm", "lamb"], defaults: ["lr": 0.01, "max_norm": 0.5, "weight_decay": 0.01],
              secondGroup: ["max_norm": 0.25]),
        // A plugin with a reduction over the parameter itself, after the step.
        Chain(name: "max_norm", rules: ["momentum", "sgd", "max_norm"], defaults: ["lr": 0.1, "momentum": 0.9, "max_norm": 1],
              secondGroup: ["lr": 0.05]),
        // A scalar slot that only the block at offset 0 advances, as a 1.0 rule may.
        Chain(name: "counter", rules: ["count_blocks", "momentum", "sgd"], defaults: ["lr": 0.1, "momentum": 0.5], secondGroup: [:]),
        // A chain per group: nadam for the first, a scalar slot advanced by one block only in the second's.
        Chain(name: "groups", rules: ["l1", "nadam"], defaults: ["lr": 0.01, "weight_decay1": 1e-3, "momentum": 0.5],
              secondGroup: ["lr": 0.1], secondRules: ["count_blocks", "momentum", "sgd"]),
        // clip_global_norm first in both groups' chains: the total spans the parameters of both, on every rank.
        Chain(name: "groups-clip", rules: ["clip_global_norm", "lamb"], defaults: ["lr": 0.01, "max_norm": 0.5, "momentum": 0.9],
              secondGroup: ["lr": 0.05], secondRules: ["clip_global_norm", "momentum", "sgd"]),
    ]

    /// A number in [0, 1) fixed by its three coordinates (splitmix64).
    static func uniform(_ a: Int, _ b: Int, _ c: Int) -> Double {
        var z = UInt64(truncatingIfNeeded: a &* 1_000_003 &+ b &* 10_007 &+ c) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }

    static func initialValues(_ parameter: Int) -> [Double] {
        (0..<shapes[parameter].1).map { 2 * uniform(parameter + 100, 0, $0) - 1 }
    }

    /// The mean gradient of `samples` for parameter `index` at `values`.
    static func gradient(_ index: Int, at values: [Double], samples: Range<Int>) -> [Double] {
        values.indices.map { j in
            samples.reduce(0.0) { sum, i in
                sum + (0.5 + uniform(index, i, j)) * (values[j] - (4 * uniform(index + 10, i, j) - 2))
            } / Double(samples.count)
        }
    }

    /// Rank `rank`'s share of the batch among `ranks`.
    static func samples(rank: Int, of ranks: Int) -> Range<Int> { batch * rank / ranks ..< batch * (rank + 1) / ranks }

    /// Fresh parameters in `T` at their initial values (or `shift` away from them), and the groups.
    static func parameters<T: ParameterElement>(_: T.Type, chain: Chain, shift: Double = 0) -> ([Parameter], [ParamGroup]) {
        let parameters = shapes.indices.map { Parameter(shapes[$0].0, values: initialValues($0).map { T($0 + shift) }) }
        return (parameters, [ParamGroup([parameters[0], parameters[1]]),
                             ParamGroup([parameters[2]], rules: chain.secondRules, options: chain.secondGroup)])
    }

    /// Sets every parameter's gradient over `samples`.
    static func setGradients<T: ParameterElement>(_: T.Type, _ parameters: [Parameter], samples: Range<Int>) throws {
        for (index, parameter) in parameters.enumerated() {
            let values = try parameter.values(as: T.self).map(Double.init)
            try parameter.setGradient(gradient(index, at: values, samples: samples).map { T($0) })
        }
    }

    /// Every parameter's values as doubles, by name.
    static func values<T: ParameterElement>(_: T.Type, _ parameters: [Parameter]) throws -> [String: [Double]] {
        Dictionary(uniqueKeysWithValues: try parameters.map { ($0.name, try $0.values(as: T.self).map(Double.init)) })
    }
}
