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
/// A group may run a chain of its own (``ParamGroup/rules``, optax's `partition`): `ParamGroup(matrices,
/// rules: ["muon"])` beside an `["adamw"]` optimizer. Its parameters then step with that chain, in the same
/// step, checkpoint and schedule as the others.
///
/// Safe to share between threads: ``step()``, ``addGroup(_:)``, ``state(of:)``, checkpoints and every
/// change to ``groups`` take the optimizer's lock, so two threads stepping at once take two whole steps, one
/// after the other, and an option changed during a step applies from the next one. (A parameter's gradient
/// must not be changed while a step that reads it runs.) ``Preset`` has the torch-shaped chains ready made
/// (`Optimizer(params, preset: .adamW(lr: 1e-3))`).
public final class Optimizer: @unchecked Sendable {
    /// The optimizer's rules, in the order they run (a named chain appears as its rules): the chain of every
    /// group that names none of its own (``ParamGroup/rules``).
    public var rules: [Rule] { chains[0].chain.rules }
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
        get { lock.lock(); defer { lock.unlock() }; return storedThreads }
        set {
            lock.lock()
            defer { lock.unlock() }
            storedThreads = max(1, newValue)
            for chain in chains { chain.executor.threads = storedThreads }
            span?.threads = storedThreads
        }
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
    /// Whether a step journals what it changes, to undo it if it fails: an atomic step of chains with a rule
    /// that may fail (chains of rules that never fail cannot leave a step half done), and every step that
    /// skips non-finite values. With several chains every one journals, since any may undo the others.
    package var journalsSteps: Bool {
        lock.withLock {
            let rules = usedChains.flatMap(\.chain.rules)
            return (atomicSteps && !rules.allSatisfy(\.neverFails)) || nonFiniteSteps == .skip
        }
    }
    /// Steps skipped because of non-finite values (see ``nonFiniteSteps``).
    public internal(set) var skippedSteps: Int {
        get { lock.withLock { storedSkippedSteps } }
        set { lock.withLock { storedSkippedSteps = newValue } }
    }

    /// The chains the groups run: the optimizer's own first, then one per other list of rule names a group
    /// gives (built when a group first names it).
    private(set) var chains: [GroupChain]
    /// Where rule names are looked up, for a chain a group added later names.
    private let registry: RuleRegistry
    /// Taken by every public entry point; recursive, because they call one another (``groups`` inside ``step()``).
    let lock = NSRecursiveLock()
    private var storedGroups: [ParamGroup]
    // Behind the lock, as every setting a step reads: a step on one thread and a change on another must not race.
    private var storedNonFiniteSteps = NonFiniteSteps.proceed
    private var storedAtomicSteps = true
    private var storedSkippedSteps = 0
    private var storedThreads = ProcessInfo.processInfo.activeProcessorCount
    private var states: [ObjectIdentifier: SlotStorage] = [:]
    private var resolved: [ResolvedOptions] = []
    /// The parameters' identities and rule names per group when membership and element types were last checked.
    private var checkedMembership: [[ObjectIdentifier]] = []
    private var checkedRules: [[String]?] = []
    /// Per group, the index in ``chains`` of the chain it runs; rebuilt with the membership.
    private var chainOfGroup: [Int] = []
    /// The chain each parameter runs, by identity; rebuilt with the membership.
    private var chainOfParameter: [ObjectIdentifier: GroupChain] = [:]
    /// The step-wide reduction that spans several chains, when the groups run several and they start with one.
    private var span: SpanningReduction?
    /// Where steps combine their reductions with other processes (``DistributionSeam/reductionExchange``).
    var exchange: (any ReductionExchange)? {
        didSet { for chain in chains { chain.executor.exchange = exchange } }
    }

    /// Builds an optimizer over `groups` that runs the rules called `rules` from `registry`, or, for a group
    /// that names its own (``ParamGroup/rules``), those.
    ///
    /// A default that a group's chain does not read is left out of that group's options; every default must
    /// be read by some chain of the optimizer, and a group's own options by its own chain.
    /// - Parameters:
    ///   - groups: Parameter groups; a group's options override `defaults`, its rules `rules`.
    ///   - rules: Rule names in the order they run.
    ///   - defaults: Options for every group that does not set its own.
    ///   - choices: Choices (such as `["adjust_lr_fn": "match_rms_adamw"]`) for every group that does not set its own.
    ///   - registry: Where rule names are looked up; `nil` for ``RuleRegistry/shared()``.
    /// - Throws: ``OptimizerError`` naming an unknown rule or option, a missing or out-of-range value, a
    ///   refused combination, a choice given as a number or by a name its rules do not declare, a parameter in
    ///   two groups or an element type a rule does not support, or a reduction over the whole step that
    ///   cannot span the groups' chains (``OptimizerError/reductionSpansChains(rule:group:chain:reason:)``);
    ///   ``OptimizerError/rulesUnavailable(_:)`` when `registry` is nil and the shared one cannot be built.
    public init(_ groups: [ParamGroup], rules: [String], defaults: [String: Double] = [:],
                choices: [String: String] = [:], registry: RuleRegistry? = nil) throws(OptimizerError) {
        guard !rules.isEmpty else { throw OptimizerError.emptyChain }
        let registry = if let registry { registry } else { try Self.sharedRegistry() }
        let threads = ProcessInfo.processInfo.activeProcessorCount
        var chains = [try GroupChain(rules, registry: registry, threads: threads)]
        for group in groups {
            guard let names = group.rules, !chains.contains(where: { $0.names == names }) else { continue }
            chains.append(try GroupChain(names, registry: registry, threads: threads))
        }
        // With one chain, its own checks (and words); with several, a default must be one some chain reads.
        var seen = Set<String>()
        let checking = chains.count == 1 ? chains[0].chain : Chain(chains.flatMap(\.chain.rules).filter { seen.insert($0.name).inserted })
        try checking.checkNames(defaults, group: nil)
        try checking.checkRanges(defaults, group: nil)
        try checking.checkChoices(choices, group: nil)
        storedGroups = try groups.enumerated().map { (index, group) throws(OptimizerError) in
            let chain = chains.first { $0.names == group.rules ?? rules }!
            return try chain.chain.filled(group, defaults: defaults, choices: choices, index: index, rules: chain.names)
        }
        self.chains = chains
        self.registry = registry
        self.defaults = defaults
        defaultChoices = choices
        try validate()
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
        let chains = self.chains
        do {
            let chain = try self.chain(named: group.rules ?? chains[0].names)
            groups.append(try chain.chain.filled(group, defaults: defaults, choices: defaultChoices, index: groups.count,
                                                 rules: chain.names))
        } catch {
            self.chains = chains
            throw error
        }
        do { try validate() } catch {
            groups.removeLast()
            self.chains = chains
            throw error
        }
    }

    /// Takes one step: every parameter that has a gradient is updated by its group's chain; the others, and
    /// their state, are left as they are.
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
    ///
    /// With several chains, each runs inside the executor's decision to keep the one before it, so the
    /// outcome is decided once every chain has run (or one has failed), and every chain then keeps or undoes.
    func takeStep(agreeing agree: (DistributionSeam.LocalStep) -> DistributionSeam.LocalStep, vetoable: Bool) throws(OptimizerError) -> StepOutcome {
        let used = usedChains, journaled = journalsSteps || vetoable
        let values = resolved.map(\.values)
        for chain in used {
            chain.takeItems(journaled: journaled, states: &states, values: values, mine: chainOfGroup.map { chains[$0] === chain })
        }
        // The step is kept only if it succeeded here and, when other processes have a say, everywhere.
        var outcome = DistributionSeam.LocalStep.applied
        func decide(_ failure: (chain: GroupChain, failure: BlockFailure)?) -> Bool {
            let local = failure.map { $0.chain.localStep($0.failure, journaled: journaled) } ?? .applied
            outcome = agree(local)
            if failure != nil, case .applied = outcome { outcome = local }
            if case .applied = outcome { return true }
            return false
        }
        func run(from position: Int) -> Bool {
            guard position < used.count else { return decide(nil) }
            let chain = used[position]
            var kept = false
            chain.executor.step(&chain.items, checksFinite: nonFiniteSteps == .skip) { failure in
                kept = failure.map { decide((chain, $0)) } ?? run(from: position + 1)
                return kept
            }
            return kept
        }
        let kept: Bool
        if let span, let failure = span.fold(used, exchange: exchange) {
            kept = decide(failure)
        } else {
            kept = run(from: 0)
        }
        for chain in used {
            chain.executor.exchange = exchange
            chain.finish(kept: kept, states: &states)
        }
        switch outcome {
        case .applied:
            return .applied
        case .failed(let error):
            throw error
        case .skipped(let reason):
            skippedSteps += 1
            return .skipped(reason: reason)
        }
    }

    /// The chains some group runs, in the order of ``chains``.
    private var usedChains: [GroupChain] {
        Set(chainOfGroup).sorted().map { chains[$0] }
    }

    /// The chain of rule and chain `names`: one the optimizer has, or a new one, added to ``chains``.
    private func chain(named names: [String]) throws(OptimizerError) -> GroupChain {
        if let known = chains.first(where: { $0.names == names }) { return known }
        let chain = try GroupChain(names, registry: registry, threads: storedThreads)
        chain.executor.exchange = exchange
        chains.append(chain)
        return chain
    }

    /// The chain `parameter` runs, as its group names it; nil for a parameter of no group.
    func groupChain(of parameter: Parameter) -> GroupChain? {
        lock.withLock {
            if let known = chainOfParameter[ObjectIdentifier(parameter)] { return known }
            return storedGroups.firstIndex { $0.parameters.contains { $0 === parameter } }.flatMap(groupChain(ofGroup:))
        }
    }

    /// The chain group `index` names (its own rules, or the optimizer's), if the optimizer has built it.
    func groupChain(ofGroup index: Int) -> GroupChain? {
        lock.withLock { chains.first { $0.names == storedGroups[index].rules ?? chains[0].names } }
    }

    /// A copy of `parameter`'s state, or nil before its first step.
    public func state(of parameter: Parameter) -> ParameterState? {
        lock.lock()
        defer { lock.unlock() }
        guard let state = states[ObjectIdentifier(parameter)], let chain = groupChain(of: parameter) else { return nil }
        return state.snapshot(chain: chain.compiled)
    }

    /// Replaces `parameter`'s state with `state`, or clears it with nil (``DistributionSeam/setState(of:to:)``).
    func setState(of parameter: Parameter, to state: ParameterState?) throws(OptimizerError) {
        lock.lock()
        defer { lock.unlock() }
        guard let chain = groupChain(of: parameter) else {
            throw .stateRefused(parameter: parameter.name, reason: "it is not a parameter of this optimizer")
        }
        let compiled = chain.compiled
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

    /// Checks every group (options, membership, chains, element types) and caches the resolved options.
    func validate() throws(OptimizerError) {
        let membership = groups.map { $0.parameters.map(ObjectIdentifier.init) }, rules = groups.map(\.rules)
        if membership != checkedMembership || rules != checkedRules {
            let chains = self.chains
            do { try assignChains() } catch {
                self.chains = chains
                throw error
            }
            (checkedMembership, checkedRules) = (membership, rules)
        }
        var fresh: [ResolvedOptions] = []
        for (index, group) in groups.enumerated() {
            if index < resolved.count, resolved[index].options == group.options, resolved[index].choices == group.choices {
                fresh.append(resolved[index])
            } else {
                fresh.append(try chains[chainOfGroup[index]].chain.resolve(group.options, choices: group.choices, group: index))
            }
        }
        resolved = fresh
    }

    /// Finds (or builds) each group's chain, checks membership, element types and step-wide reductions, and
    /// replans every chain; changes nothing but ``chains`` when it throws.
    private func assignChains() throws(OptimizerError) {
        let groups = self.groups
        let assigned = try groups.map { (group) throws(OptimizerError) in try chain(named: group.rules ?? chains[0].names) }
        try checkMembership(chains: assigned)
        var byParameter: [ObjectIdentifier: GroupChain] = [:]
        for (index, (group, chain)) in zip(groups, assigned).enumerated() {
            for parameter in group.parameters {
                let id = ObjectIdentifier(parameter)
                if states[id] != nil, let before = chainOfParameter[id], before !== chain {
                    throw .groupChainChanged(group: index, from: before.described, to: chain.described)
                }
                byParameter[id] = chain
            }
        }
        let indices = assigned.map { chain in chains.firstIndex { $0 === chain }! }
        let used = Set(indices).sorted()
        let spanned = try SpanningReduction.check(used.map { chains[$0] }, groupOf: used.map { indices.firstIndex(of: $0)! })
        (chainOfGroup, chainOfParameter) = (indices, byParameter)
        if let spanned, span?.rule.name != spanned.name || span?.rule.origin != spanned.origin {
            span = SpanningReduction(spanned, threads: storedThreads)
        } else if spanned == nil {
            span = nil
        }
        for (position, chain) in chains.enumerated() { chain.replan(groups, mine: indices.map { $0 == position }, states: states) }
    }

    /// Refuses a parameter in several groups, two parameters of one name or of names that read alike
    /// (equal after NFKC), and an element type some rule of its group's chain (`chains`) does not support.
    private func checkMembership(chains: [GroupChain]) throws(OptimizerError) {
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
        for (group, chain) in zip(groups, chains) {
            for parameter in group.parameters {
                if let seen = membership[ObjectIdentifier(parameter)], seen.count > 1 {
                    throw .parameterInSeveralGroups(parameter.name, groups: seen)
                }
                if let rule = chain.chain.rules.first(where: { !$0.dtypes.contains(parameter.dtype) }) {
                    throw .unsupportedDType(rule: rule.name, dtype: parameter.dtype, parameter: parameter.name)
                }
                if let rule = chain.chain.rules.first(where: { !$0.ranks.contains(parameter.shape.count) }) {
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
