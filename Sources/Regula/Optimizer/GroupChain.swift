/// One chain an optimizer runs, for the groups that name it (or for every group that names none): the
/// rules, laid out for the executor, the executor that steps them, the step's transaction and the plan of
/// the parameters of those groups.
///
/// An optimizer holds one per distinct list of rule names among its groups (the first is its own chain);
/// a step runs each in turn, the next inside the executor's decision to keep the one before, so every chain
/// commits or every chain is undone (``Optimizer/step()``).
final class GroupChain {
    /// The names it was built from, as a group gives them.
    let names: [String]
    let chain: Chain
    let compiled: CompiledChain
    let executor: ChainExecutor
    let transaction: StepTransaction
    /// The parameters of this chain's groups, flattened for stepping (other groups' appear as empty).
    var plan = StepPlan()
    /// The current step's work list, and its memory kept for the next step.
    var items: [WorkItem] = []
    private let reused = ReusedArray<WorkItem>()

    /// The chain of rule and chain `names`, looked up in `registry`.
    /// - Throws: ``OptimizerError`` for an empty list, an unknown name, a rule only described, a chain whose
    ///   rules all leave the parameters alone, or named chains' defaults that their rules refuse.
    init(_ names: [String], registry: RuleRegistry, threads: Int) throws(OptimizerError) {
        guard !names.isEmpty else { throw OptimizerError.emptyChain }
        let (expanded, chainDefaults) = try registry.expand(names)
        if let described = expanded.first(where: \.kernel.isDescription) {
            throw OptimizerError.ruleOnlyDescribed(described.name, origin: "\(described.origin)")
        }
        let chain = Chain(expanded, chainDefaults: chainDefaults)
        if chain.rules.allSatisfy(\.updateOnly) {
            throw OptimizerError.noRuleAppliesTheStep(rules: chain.rules.map(\.name))
        }
        try chain.checkNames(chainDefaults, group: nil)
        try chain.checkRanges(chainDefaults, group: nil)
        self.names = names
        self.chain = chain
        compiled = CompiledChain(chain)
        transaction = StepTransaction(chain: compiled)
        executor = ChainExecutor(chain: compiled, threads: threads)
        chain.rules.forEach { $0.kernel.usage.add(1) }
    }

    deinit { chain.rules.forEach { $0.kernel.usage.add(-1) } }

    /// The rules' names joined as a chain reads: `clip_global_norm > adamw`.
    var described: String { chain.rules.map(\.name).joined(separator: " > ") }

    /// Rebuilds the plan over the groups at `mine` among `groups`, with the state in `states`.
    func replan(_ groups: [ParamGroup], mine: [Bool], states: [ObjectIdentifier: SlotStorage]) {
        plan = StepPlan(groups: zip(groups, mine).map { $1 ? $0 : ParamGroup([]) }, states: states)
    }

    /// Begins the step's transaction (`journaled` or not) and fills ``items`` with its work: every parameter
    /// of the plan with a gradient, its state prepared by the transaction. `values` are every group's resolved
    /// options; only those of this chain's groups (`mine`) are read.
    func takeItems(journaled: Bool, states: inout [ObjectIdentifier: SlotStorage], values: [UnsafeMutablePointer<Double>],
                   mine: [Bool]) {
        transaction.begin(journaled: journaled)
        items = reused.take()
        // The groups in which an option turns on a slot: only their parameters may need one created.
        let switching = zip(values, mine).map { groupValues, isMine in
            isMine && compiled.conditionalSlots.contains { compiled.elementwiseSlots[$0].isEnabled(groupValues) }
        }
        for index in plan.entries.indices {
            plan.prefetch(index + StepPlan.prefetchDistance)
            guard let gradient = plan.entries[index].gradient.pointee else { continue }
            let group = plan.entries[index].group
            transaction.prepare(index, plan: &plan, states: &states, values: values[group], switching: switching[group])
            let entry = plan.entries[index], state = entry.state!
            items.append(WorkItem(
                param: entry.param, gradient: gradient, count: entry.count, dtype: entry.dtype.abiBit,
                elementSize: entry.dtype.size, step: state.step.pointee, slots: state.slots, slotLengths: state.slotLengths,
                scalars: state.scalars,
                hyperparameters: values[group], journal: nil, index: index, shareOffset: entry.shareOffset,
                wholeCount: entry.wholeCount, shape: entry.shape, rank: entry.rank))
        }
        transaction.attachJournal(to: &items, in: executor)
    }

    /// Ends the step: keeps it (`kept`) or takes it back, and gives the work list's memory back.
    func finish(kept: Bool, states: inout [ObjectIdentifier: SlotStorage]) {
        if kept { transaction.commit(items, plan: plan) } else { transaction.rollBack(items, plan: &plan, states: &states) }
        reused.give(items)
        items = []
    }

    /// What a block failure means for the step, in words naming the parameter and the rule, and saying when a
    /// step that was not `journaled` is left half done.
    func localStep(_ failure: BlockFailure, journaled: Bool) -> DistributionSeam.LocalStep {
        let name = plan.parameters[failure.item].name
        switch failure.kind {
        case .kernel:
            let rule = chain.rules[failure.rule]
            let unjournaled = journaled ? "" : rule.neverFails
                ? " (the rule declared it never fails, so the step was not journaled and is left half done)"
                : " (atomic steps are off, so the step is left half done)"
            return .failed(.kernelFailed(rule: rule.name, parameter: name, status: failure.status, message: failure.words + unjournaled))
        case .nonFiniteGradient:
            return .skipped(reason: "the gradient of parameter \(quoted(name)) has a NaN or an infinity")
        case .nonFiniteResult:
            return .skipped(reason: "the update would leave a NaN or an infinity in parameter \(quoted(name)) or its state")
        }
    }
}
