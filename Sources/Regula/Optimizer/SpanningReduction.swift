/// A step-wide reduction (`REGULA_REDUCTION_STEP`, such as `clip_global_norm`'s total) in an optimizer whose
/// groups run several chains: it still spans every parameter that has a gradient, as torch's
/// `clip_grad_norm_` over all parameters does.
///
/// Every chain in use must start with the same rule, whose reductions read the gradients themselves. Before
/// any chain runs, that rule's reductions are folded over the parameters of every chain at once, in the
/// optimizer's order (per parameter in block order, then across processes, then over the step), exactly as
/// one chain over all the parameters would fold them; each chain's executor then receives the step-wide
/// values in place of those over its own parameters. It costs one more read of the gradients. A step-wide
/// reduction anywhere else, or in some chains only, would need a value no single chain can see, and is
/// refused (``check(_:groupOf:)``).
final class SpanningReduction {
    /// The rule every chain starts with.
    let rule: Rule
    private let executor: ChainExecutor
    private let width: Int
    /// Reuse of the combined work list's memory.
    private let reused = ReusedArray<WorkItem>()

    /// Folds `rule`'s reductions on up to `threads` threads.
    init(_ rule: Rule, threads: Int) {
        self.rule = rule
        executor = ChainExecutor(chain: CompiledChain(Chain([rule])), threads: threads)
        width = rule.reductions.count
    }

    /// Threads the fold may use.
    var threads: Int {
        get { executor.threads }
        set { executor.threads = newValue }
    }

    /// The rule whose step-wide reduction must span `chains` (those in use, each with the first group that
    /// runs it, `groupOf`), or nil when one chain is in use or no chain has one.
    /// - Throws: ``OptimizerError/reductionSpansChains(rule:group:chain:reason:)`` when it cannot be made exact.
    static func check(_ chains: [GroupChain], groupOf: [Int]) throws(OptimizerError) -> Rule? {
        guard chains.count > 1 else { return nil }
        for (chain, group) in zip(chains, groupOf) {
            guard let late = chain.chain.rules.dropFirst().first(where: { $0.reductions.contains { $0.scope == .step } }) else { continue }
            throw .reductionSpansChains(rule: late.name, group: group, chain: chain.described,
                                        reason: "after other rules of that chain, where it can see only the parameters of its own "
                                            + "chain; put it first in every group's chain, or give every group the same chain")
        }
        guard let index = chains.firstIndex(where: { $0.chain.rules[0].reductions.contains { $0.scope == .step } }) else { return nil }
        let rule = chains[index].chain.rules[0]
        for (chain, group) in zip(chains, groupOf) where chain.chain.rules[0].name != rule.name || chain.chain.rules[0].origin != rule.origin {
            throw .reductionSpansChains(rule: rule.name, group: groupOf[index], chain: chains[index].described,
                                        reason: "but group \(group)'s chain (\(chain.described)) does not start with it; start every "
                                            + "group's chain with \(rule.name), or no group's")
        }
        if rule.kernel.prepare != nil {
            throw .reductionSpansChains(rule: rule.name, group: groupOf[index], chain: chains[index].described,
                                        reason: "and has a prepare function, which its reduction may read; across several chains it "
                                            + "would have to run twice; give every group the same chain")
        }
        return rule
    }

    /// Folds the rule's reductions over the work of every chain in `chains` (their ``GroupChain/items``, in
    /// the optimizer's order: group, then parameter), combining through `exchange` as a step does, and arms
    /// each chain's executor to take the step-wide values at its own fold of them.
    /// - Returns: The first failure, as the chain it belongs to would report it, or nil.
    func fold(_ chains: [GroupChain], exchange: (any ReductionExchange)?) -> (chain: GroupChain, failure: BlockFailure)? {
        var order: [(group: Int, chain: Int, item: Int)] = []
        for (position, chain) in chains.enumerated() {
            for (place, item) in chain.items.enumerated() { order.append((chain.plan.entries[item.index].group, position, place)) }
        }
        order.sort { ($0.group, $0.chain, $0.item) < ($1.group, $1.chain, $1.item) }
        var items = reused.take()
        defer { reused.give(items) }
        for (position, (_, chain, place)) in order.enumerated() {
            let item = chains[chain].items[place]
            items.append(WorkItem(param: item.param, gradient: item.gradient, count: item.count, dtype: item.dtype,
                                  elementSize: item.elementSize, step: item.step, slots: item.slots, slotLengths: item.slotLengths,
                                  scalars: item.scalars,
                                  hyperparameters: item.hyperparameters, journal: nil, index: position, shareOffset: item.shareOffset,
                                  wholeCount: item.wholeCount, shape: item.shape, rank: item.rank))
        }
        executor.exchange = exchange
        defer { executor.exchange = nil }
        if let failure = executor.foldLeadingReductions(&items) {
            let (_, chain, place) = order[failure.item]
            let owner = chains[chain]
            return (owner, BlockFailure(item: owner.items[place].index, block: failure.block, rule: 0, status: failure.status,
                                        words: failure.words, kind: failure.kind))
        }
        let totals = rule.reductions.indices.filter { rule.reductions[$0].scope == .step }
            .map { (slot: $0, value: items.first?.reductions?[$0] ?? rule.reductions[$0].combine.identity) }
        for chain in chains {
            chain.executor.exchange = StepWideValues(inner: exchange, totals: totals, width: width)
        }
        return nil
    }
}

/// The exchange a chain's executor sees while a ``SpanningReduction`` holds the step-wide values: its first
/// call of the step (the leading fold) combines across processes as usual, then puts each step-wide value at
/// the first parameter and the combine's identity at the others, so the executor's fold over its own
/// parameters comes out at the value over all; later calls only combine across processes.
private final class StepWideValues: ReductionExchange, @unchecked Sendable {
    private let inner: (any ReductionExchange)?
    private let totals: [(slot: Int, value: Double)]
    private let width: Int
    private var pending = true

    init(inner: (any ReductionExchange)?, totals: [(slot: Int, value: Double)], width: Int) {
        (self.inner, self.totals, self.width) = (inner, totals, width)
    }

    func combineAcrossProcesses(_ values: UnsafeMutableBufferPointer<Double>, combines: [Reduction.Combine]) {
        inner?.combineAcrossProcesses(values, combines: combines)
        guard pending, combines.count == width else { return }
        pending = false
        for (slot, value) in totals {
            for index in stride(from: slot, to: values.count, by: width) {
                values[index] = index == slot ? value : combines[slot].identity
            }
        }
    }
}
