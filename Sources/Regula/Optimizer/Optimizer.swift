import Foundation

/// Updates parameters by running a chain of rules over each one, like `torch.optim` with optax-style
/// composition: `["l1", "l2", "momentum", "sgd"]` adds the L1 and L2 terms to the gradient, applies momentum,
/// then takes the step.
///
/// ```swift
/// let optimizer = try Optimizer(
///     [ParamGroup([w1, b1], options: ["lr": 1e-2]), ParamGroup([w2])],
///     rules: ["l1", "l2", "momentum", "sgd"],
///     defaults: ["lr": 0.1, "momentum": 0.9, "weight_decay1": 5e-4])
/// try optimizer.step()
/// optimizer.groups[1].learningRate! *= 0.9
/// ```
///
/// Safe to share between threads: ``step()``, ``addGroup(_:)``, ``state(of:)``, checkpoints and every
/// change to ``groups`` take the optimizer's lock, so two threads stepping at once take two whole steps, one
/// after the other, and an option changed during a step applies from the next one. (A parameter's gradient
/// must not be changed while a step that reads it runs.) ``Preset`` has the torch-shaped chains ready made
/// (`Optimizer(params, preset: .adamW(lr: 1e-3))`).
public final class Optimizer: @unchecked Sendable {
    /// The rules, in the order they run (a named chain appears as its rules).
    public var rules: [Rule] { chain.rules }
    /// The options given at construction, which filled in each group's missing options.
    public let defaults: [String: Double]
    /// The choices given at construction, by name, which filled in each group's missing choices.
    public let defaultChoices: [String: String]
    /// The parameter groups. Change options between steps; the next step validates them.
    public var groups: [ParamGroup] {
        get { lock.lock(); defer { lock.unlock() }; return storedGroups }
        set { lock.lock(); defer { lock.unlock() }; storedGroups = newValue }
    }

    /// Threads a step may use; 1 runs everything on the calling thread. Results are bit-for-bit the same
    /// whatever the count. Defaults to the number of active processors.
    public var threads: Int {
        get { lock.lock(); defer { lock.unlock() }; return executor.threads }
        set { lock.lock(); defer { lock.unlock() }; executor.threads = max(1, newValue) }
    }

    /// Bytes of optimizer state the parameters hold now: every state slot that exists (elementwise slots at
    /// the parameter's element size, scalar slots at 8 bytes each) and the step counts.
    public var stateByteCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return states.values.reduce(0) { $0 + $1.byteCount }
    }

    /// What a step does when a gradient, or the result, has a NaN or an infinity.
    public var nonFiniteSteps: NonFiniteSteps {
        get { lock.withLock { storedNonFiniteSteps } }
        set { lock.withLock { storedNonFiniteSteps = newValue } }
    }
    /// Whether a step that fails changes nothing (the default). When a rule of the chain may fail, each step
    /// first copies the values and state it is about to change into a journal, which costs memory the size
    /// of the parameters and state, and memory traffic (see Docs/BENCHMARKS.md); a chain whose rules all
    /// declare `REGULA_RULE_NEVER_FAILS` (every built-in does) needs no journal. Set it to false only where a
    /// failing rule may leave a step half done; skipping non-finite steps always keeps steps atomic.
    public var atomicSteps: Bool {
        get { lock.withLock { storedAtomicSteps } }
        set { lock.withLock { storedAtomicSteps = newValue } }
    }
    /// Whether a step journals what it changes, to undo it if it fails: an atomic step of a chain with a rule
    /// that may fail (a chain of rules that never fail cannot leave a step half done), and every step that
    /// skips non-finite values.
    package var journalsSteps: Bool { (atomicSteps && !chain.rules.allSatisfy(\.neverFails)) || nonFiniteSteps == .skip }
    /// Steps skipped because of non-finite values (see ``nonFiniteSteps``).
    public internal(set) var skippedSteps: Int {
        get { lock.withLock { storedSkippedSteps } }
        set { lock.withLock { storedSkippedSteps = newValue } }
    }

    let chain: Chain
    let compiled: CompiledChain
    let executor: ChainExecutor
    /// Taken by every public entry point; recursive, because they call one another (``groups`` inside ``step()``).
    let lock = NSRecursiveLock()
    private var storedGroups: [ParamGroup]
    // Behind the lock, as every setting a step reads: a step on one thread and a change on another must not race.
    private var storedNonFiniteSteps = NonFiniteSteps.proceed
    private var storedAtomicSteps = true
    private var storedSkippedSteps = 0
    private var states: [ObjectIdentifier: SlotStorage] = [:]
    private var resolved: [ResolvedOptions] = []
    /// The parameters' identities per group when membership and element types were last checked.
    private var checkedMembership: [[ObjectIdentifier]] = []
    /// The parameters flattened for stepping; rebuilt with the membership.
    private var plan = StepPlan()
    /// A step's work list, kept so that its memory is reused by the next step.
    private let stepItems = ReusedArray<WorkItem>()
    /// What a step changes, to take it back when it fails or is skipped.
    private let transaction: StepTransaction

    /// Builds an optimizer over `groups` that runs the rules called `rules` from `registry`.
    ///
    /// - Parameters:
    ///   - groups: Parameter groups; a group's options override `defaults`.
    ///   - rules: Rule names in the order they run.
    ///   - defaults: Options for every group that does not set its own.
    ///   - choices: Choices (such as `["adjust_lr_fn": "match_rms_adamw"]`) for every group that does not set its own.
    ///   - registry: Where rule names are looked up; `nil` for ``RuleRegistry/shared()``.
    /// - Throws: ``OptimizerError`` naming an unknown rule or option, a missing or out-of-range value, a
    ///   refused combination, a choice given as a number or by a name its rules do not declare, a parameter in
    ///   two groups or an element type a rule does not support;
    ///   ``OptimizerError/rulesUnavailable(_:)`` when `registry` is nil and the shared one cannot be built.
    public init(_ groups: [ParamGroup], rules: [String], defaults: [String: Double] = [:],
                choices: [String: String] = [:], registry: RuleRegistry? = nil) throws(OptimizerError) {
        guard !rules.isEmpty else { throw OptimizerError.emptyChain }
        let registry = if let registry { registry } else { try Self.sharedRegistry() }
        let (expanded, chainDefaults) = try registry.expand(rules)
        if let described = expanded.first(where: \.kernel.isDescription) {
            throw OptimizerError.ruleOnlyDescribed(described.name, origin: "\(described.origin)")
        }
        let chain = Chain(expanded, chainDefaults: chainDefaults)
        if chain.rules.allSatisfy(\.updateOnly) {
            throw OptimizerError.noRuleAppliesTheStep(rules: chain.rules.map(\.name))
        }
        try chain.checkNames(chainDefaults, group: nil)
        try chain.checkRanges(chainDefaults, group: nil)
        try chain.checkNames(defaults, group: nil)
        try chain.checkRanges(defaults, group: nil)
        try chain.checkChoices(choices, group: nil)
        storedGroups = try groups.enumerated().map { (index, group) throws(OptimizerError) in
            try chain.filled(group, defaults: defaults, choices: choices, index: index)
        }
        self.chain = chain
        compiled = CompiledChain(chain)
        transaction = StepTransaction(chain: compiled)
        self.defaults = defaults
        defaultChoices = choices
        executor = ChainExecutor(chain: compiled, threads: ProcessInfo.processInfo.activeProcessorCount)
        // Counted once self is whole: if validation throws now, deinit runs and balances the count.
        chain.rules.forEach { $0.kernel.usage.add(1) }
        try validate()
    }

    deinit {
        chain.rules.forEach { $0.kernel.usage.add(-1) }
    }

    /// ``RuleRegistry/shared()``, its failure told as the optimizer's.
    private static func sharedRegistry() throws(OptimizerError) -> RuleRegistry {
        do { return try RuleRegistry.shared() } catch { throw .rulesUnavailable(error) }
    }

    /// Builds an optimizer with a single group of `parameters`.
    public convenience init(_ parameters: [Parameter], rules: [String], defaults: [String: Double] = [:],
                            choices: [String: String] = [:], registry: RuleRegistry? = nil) throws(OptimizerError) {
        try self.init([ParamGroup(parameters)], rules: rules, defaults: defaults, choices: choices, registry: registry)
    }

    /// Adds a group, its missing options filled from ``defaults`` and choices from ``defaultChoices`` (torch's
    /// `add_param_group`).
    /// - Throws: ``OptimizerError`` as the initializer does; the optimizer is then unchanged.
    public func addGroup(_ group: ParamGroup) throws(OptimizerError) {
        lock.lock()
        defer { lock.unlock() }
        let filled = try chain.filled(group, defaults: defaults, choices: defaultChoices, index: groups.count)
        groups.append(filled)
        do { try validate() } catch {
            groups.removeLast()
            throw error
        }
    }

    /// Takes one step: every parameter that has a gradient is updated by the chain; the others, and their
    /// state, are left as they are.
    ///
    /// A step is all or nothing. All groups' options are validated before any parameter is touched, and if a
    /// rule fails (or, with ``nonFiniteSteps`` set to `.skip`, a gradient or the result is not finite), every
    /// parameter and every piece of state is put back exactly as it was before the step.
    /// - Returns: `.applied`, or `.skipped` with the reason when a non-finite step was skipped.
    /// - Throws: ``OptimizerError``; nothing has changed then.
    @discardableResult
    public func step() throws(OptimizerError) -> StepOutcome {
        lock.lock()
        defer { lock.unlock() }
        try validate()
        return try takeStep(agreeing: { $0 }, vetoable: false)
    }

    /// Calls `closure`, which computes the loss and sets the gradients, then takes one step (torch's
    /// `step(closure)`); a closure that fails ends the call before the step, with nothing changed by it.
    /// - Returns: The closure's loss, computed before the step, and the step's outcome.
    /// - Throws: ``OptimizerError``: the closure's (such as a gradient of the wrong length), or the step's.
    @discardableResult
    public func step(closure: () throws(OptimizerError) -> Double) throws(OptimizerError) -> (loss: Double, outcome: StepOutcome) {
        let loss = try closure()
        return (loss, try step())
    }

    /// One step over the validated options; `agree` turns this process's outcome into the one taken (the
    /// identity in a single process). A `vetoable` step is journaled, since another process may undo it.
    func takeStep(agreeing agree: (DistributionSeam.LocalStep) -> DistributionSeam.LocalStep, vetoable: Bool) throws(OptimizerError) -> StepOutcome {
        transaction.begin(journaled: journalsSteps || vetoable)
        var items = workItems()
        defer { stepItems.give(items) }
        transaction.attachJournal(to: &items, in: executor)
        // The step is kept only if it succeeded here and, when other processes have a say, everywhere.
        var outcome = DistributionSeam.LocalStep.applied
        executor.step(&items, checksFinite: nonFiniteSteps == .skip) { failure in
            let local = failure.map { localStep($0, journaled: transaction.isJournaled) } ?? .applied
            outcome = agree(local)
            if failure != nil, case .applied = outcome { outcome = local }
            if case .applied = outcome { return true }
            return false
        }
        switch outcome {
        case .applied:
            transaction.commit(items, plan: plan)
            return .applied
        case .failed(let error):
            transaction.rollBack(items, plan: &plan, states: &states)
            throw error
        case .skipped(let reason):
            transaction.rollBack(items, plan: &plan, states: &states)
            skippedSteps += 1
            return .skipped(reason: reason)
        }
    }

    /// The step's work list: every parameter with a gradient, its state prepared by the transaction.
    private func workItems() -> [WorkItem] {
        let values = resolved.map(\.values)
        // Kept between steps, so that a step of many tensors allocates nothing.
        var items = stepItems.take()
        // The groups in which an option turns on a slot: only their parameters may need one created.
        let switching = values.map { groupValues in
            compiled.conditionalSlots.contains { compiled.elementwiseSlots[$0].isEnabled(groupValues) }
        }
        for index in plan.entries.indices {
            plan.prefetch(index + StepPlan.prefetchDistance)
            guard let gradient = plan.entries[index].gradient.pointee else { continue }
            let group = plan.entries[index].group
            transaction.prepare(index, plan: &plan, states: &states, values: values[group], switching: switching[group])
            let entry = plan.entries[index], state = entry.state!
            items.append(WorkItem(
                param: entry.param, gradient: gradient, count: entry.count, dtype: entry.dtype.abiBit,
                elementSize: entry.dtype.size, step: state.step.pointee, slots: state.slots, slotLengths: state.slotLengths, scalars: state.scalars,
                hyperparameters: values[group], journal: nil, index: index, shareOffset: entry.shareOffset,
                wholeCount: entry.wholeCount, shape: entry.shape, rank: entry.rank))
        }
        return items
    }

    /// What a block failure means for the step, in words naming the parameter and the rule, and saying when a
    /// step that was not `journaled` is left half done.
    private func localStep(_ failure: BlockFailure, journaled: Bool) -> DistributionSeam.LocalStep {
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

    /// A copy of `parameter`'s state, or nil before its first step.
    public func state(of parameter: Parameter) -> ParameterState? {
        lock.lock()
        defer { lock.unlock() }
        return states[ObjectIdentifier(parameter)]?.snapshot(chain: compiled)
    }

    /// Replaces `parameter`'s state with `state`, or clears it with nil (``DistributionSeam/setState(of:to:)``).
    func setState(of parameter: Parameter, to state: ParameterState?) throws(OptimizerError) {
        lock.lock()
        defer { lock.unlock() }
        guard storedGroups.contains(where: { $0.parameters.contains { $0 === parameter } }) else {
            throw .stateRefused(parameter: parameter.name, reason: "it is not a parameter of this optimizer")
        }
        guard let state else {
            states[ObjectIdentifier(parameter)] = nil
            checkedMembership = []
            return
        }
        let storage = SlotStorage(chain: compiled, for: parameter)
        var known = Set<String>()
        var problem: String?
        storage.forEachSlot(chain: compiled) { key, shape, index, memory in
            known.insert(key)
            guard problem == nil else { return }
            guard let values = state.slots[key] else {
                let optional = shape.holdsElements && compiled.elementwiseSlots[index].enabledBy != nil
                if !optional { problem = "it has no slot \(quoted(key))" }
                return
            }
            let expected = shape == .scalar ? 1 : storage.length(of: index)
            guard values.count == expected else {
                problem = "slot \(quoted(key)) has \(values.count) values; expected \(expected)"
                return
            }
            if shape == .scalar {
                memory!.storeBytes(of: values[0], as: Double.self)
            } else {
                storage.create(index, value: 0)
                storage.store(values, in: index)
            }
        }
        if problem == nil, let unknown = state.slots.keys.sorted().first(where: { !known.contains($0) }) {
            problem = "the chain has no slot \(quoted(unknown))"
        }
        if problem == nil && state.step < 0 { problem = "its step count \(state.step) is negative" }
        if let problem { throw .stateRefused(parameter: parameter.name, reason: problem) }
        storage.step = UInt64(state.step)
        states[ObjectIdentifier(parameter)] = storage
        checkedMembership = []
    }

    /// Runs `body` under the lock with `stored`, which gives a parameter's state (nil before its first step):
    /// how checkpoints and a distributed optimizer read the state, all at one moment.
    func withStoredStates<R, E: Error>(_ body: (_ stored: (Parameter) -> SlotStorage?) throws(E) -> R) throws(E) -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body { self.states[ObjectIdentifier($0)] }
    }

    /// Puts in place what a checked checkpoint holds: each of `states` (nil for a parameter with none), every
    /// group's options and choices with their `resolved` values, and the skip count.
    func restore(states restored: [(Parameter, SlotStorage?)], resolved: [ResolvedOptions], skippedSteps: Int) {
        lock.lock()
        defer { lock.unlock() }
        for (parameter, state) in restored { states[ObjectIdentifier(parameter)] = state }
        for (index, given) in resolved.enumerated() { (storedGroups[index].options, storedGroups[index].choices) = (given.options, given.choices) }
        self.resolved = resolved
        checkedMembership = []
        self.skippedSteps = skippedSteps
    }

    /// Checks every group (options, membership, element types) and caches the resolved options.
    func validate() throws(OptimizerError) {
        let membership = groups.map { $0.parameters.map(ObjectIdentifier.init) }
        if membership != checkedMembership {
            try checkMembership()
            checkedMembership = membership
            plan = StepPlan(groups: groups, states: states)
        }
        var fresh: [ResolvedOptions] = []
        for (index, group) in groups.enumerated() {
            if index < resolved.count, resolved[index].options == group.options, resolved[index].choices == group.choices {
                fresh.append(resolved[index])
            } else {
                fresh.append(try chain.resolve(group.options, choices: group.choices, group: index))
            }
        }
        resolved = fresh
    }

    /// Refuses a parameter in several groups, two parameters of one name or of names that read alike
    /// (equal after NFKC), and an element type some rule does not support.
    private func checkMembership() throws(OptimizerError) {
        var membership: [ObjectIdentifier: [Int]] = [:]
        for (index, group) in groups.enumerated() {
            for parameter in group.parameters { membership[ObjectIdentifier(parameter), default: []].append(index) }
        }
        // Names that read alike first: Swift's == already equates some of them (K U+212A and K), and the
        // refusal should show both spellings.
        if let (first, second) = NameNormalization.firstClash(in: groups.flatMap(\.parameters).map(\.name)) {
            throw .parameterNamesReadAlike(first, second)
        }
        var names = Set<String>()
        for parameter in groups.flatMap(\.parameters) where membership[ObjectIdentifier(parameter)]!.count == 1 {
            guard names.insert(parameter.name).inserted else { throw .duplicateParameterName(parameter.name) }
        }
        for group in groups {
            for parameter in group.parameters {
                if let seen = membership[ObjectIdentifier(parameter)], seen.count > 1 {
                    throw .parameterInSeveralGroups(parameter.name, groups: seen)
                }
                if let rule = chain.rules.first(where: { !$0.dtypes.contains(parameter.dtype) }) {
                    throw .unsupportedDType(rule: rule.name, dtype: parameter.dtype, parameter: parameter.name)
                }
                if let rule = chain.rules.first(where: { !$0.ranks.contains(parameter.shape.count) }) {
                    throw .rankRefused(rule: rule.name, parameter: parameter.name, shape: parameter.shape, ranks: rule.ranks)
                }
            }
        }
    }
}

/// What a step does when a gradient, or the parameters and state it would produce, are not finite.
public enum NonFiniteSteps: Sendable {
    /// Take the step anyway (the default; no check costs anything).
    case proceed
    /// Check every gradient and every result, and skip the whole step, changing nothing, if any is NaN or
    /// infinite. The skip is counted in ``Optimizer/skippedSteps`` and reported by ``Optimizer/step()``.
    case skip
}

/// What ``Optimizer/step()`` did.
public enum StepOutcome: Sendable, Equatable {
    /// The step was applied to every parameter with a gradient.
    case applied
    /// Nothing changed, for this reason (a non-finite gradient or result, with ``NonFiniteSteps/skip``).
    case skipped(reason: String)
}
