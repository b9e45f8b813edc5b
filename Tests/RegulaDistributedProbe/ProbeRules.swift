import Foundation
import Regula
import Synchronization

/// Rules the error scenarios arm on one rank: they behave like no rule at all until armed.
enum ProbeRules {
    /// When set, `fail_on_rank` fails on this rank.
    static let failingRank = Atomic<Int>(-1)

    /// The built-in rules, the `max_norm` example, `count_blocks` (which counts steps in a scalar slot from the
    /// block at offset 0), and two rules that fail on demand on one rank: `fail_on_rank` (its kernel throws)
    /// and `picky` (its check refuses `picky = 1` on rank `rank`).
    static func registry(rank: Int) throws -> RuleRegistry {
        let registry = try RuleRegistry.standard()
        if let folder = PluginSearchPath.builtinDirectory() {
            try registry.loadPlugin(at: folder + "/\(PluginSearchPath.examplePrefix)MaxNorm.so")
        }
        // As a 1.0 rule may (Docs/ABI.md section 11): a scalar slot advanced from the block at offset 0 only.
        try registry.register(Rule(name: "count_blocks", summary: "counts steps from the block at offset 0",
                                   stateSlots: [StateSlot("count", shape: .scalar)], kernel: { block in
            if block.offset == 0 { block.scalarSlots[0] += 1 }
        }))
        try registry.register(Rule(name: "fail_on_rank", summary: "fails on the armed rank", kernel: { _ in
            if failingRank.load(ordering: .relaxed) == rank { throw RuleFailure("armed to fail on rank \(rank)") }
        }))
        try registry.register(Rule(
            name: "picky", summary: "refuses picky = 1 on one rank",
            hyperparameters: [Hyperparameter("picky", doc: "1 is refused on rank 1", default: 0, range: 0...1)],
            check: { values in
                if values[0] == 1 && rank == 1 { throw RuleFailure("picky = 1 is refused on rank 1") }
            },
            kernel: { _ in }))
        return registry
    }
}
