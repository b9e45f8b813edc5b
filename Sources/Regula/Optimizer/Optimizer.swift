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
/// Not thread-safe: call ``step()`` and change ``groups`` from one thread at a time. ``SGD`` is the
/// ready-made chain for torch.optim.SGD plus the L1 term.
public class Optimizer {
    /// The rules, in the order they run.
    public var rules: [Rule] { chain.rules }
    /// The options given at construction, which filled in each group's missing options.
    public let defaults: [String: Double]
    /// The parameter groups. Change options between steps; the next step validates them.
    public var groups: [ParamGroup]

    /// Threads a step may use; 1 runs everything on the calling thread. Results are bit-for-bit the same
    /// whatever the count. Defaults to the number of active processors.
    public var threads: Int {
        get { executor.threads }
        set { executor.threads = max(1, newValue) }
    }

    /// What a step does when a gradient, or the result, has a NaN or an infinity.
    public var nonFiniteSteps: NonFiniteSteps = .proceed
    /// Whether a step that fails changes nothing (the default). When a rule of the chain may fail, each step
    /// first copies the values and state it is about to change into a journal, which costs memory the size
    /// of the parameters and state, and memory traffic (see Docs/BENCHMARKS.md); a chain whose rules all
    /// declare `REGULA_RULE_NEVER_FAILS` (every built-in does) needs no journal. Set it to false only where a
    /// failing rule may leave a step half done; skipping non-finite steps always keeps steps atomic.
    public var atomicSteps = true
    /// Steps skipped because of non-finite values (see ``nonFiniteSteps``).
    public internal(set) var skippedSteps = 0

    let chain: Chain
    let compiled: CompiledChain
    private let executor: ChainExecutor
    var states: [ObjectIdentifier: SlotStorage] = [:]
    var resolved: [ResolvedOptions] = []
    /// The parameters' identities per group when membership and element types were last checked.
    var checkedMembership: [[ObjectIdentifier]] = []
    /// The parameters flattened for stepping; rebuilt with the membership.
    private var plan = StepPlan()

    /// Builds an optimizer over `groups` that runs the rules called `rules` from `registry`.
    ///
    /// - Parameters:
    ///   - groups: Parameter groups; a group's options override `defaults`.
    ///   - rules: Rule names in the order they run.
    ///   - defaults: Options for every group that does not set its own.
    ///   - registry: Where rule names are looked up; `nil` for ``RuleRegistry/shared()``.
    /// - Throws: ``OptimizerError`` naming an unknown rule or option, a missing or out-of-range value, a
    ///   refused combination, a parameter in two groups or an element type a rule does not support;
    ///   ``BuiltinRulesNotFound`` when the shared registry cannot find the built-ins.
    public init(_ groups: [ParamGroup], rules: [String], defaults: [String: Double] = [:],
                registry: RuleRegistry? = nil) throws {
        guard !rules.isEmpty else { throw OptimizerError.emptyChain }
        let registry = try registry ?? RuleRegistry.shared()
        let chain = Chain(try rules.map { name throws(OptimizerError) in try registry.rule(named: name) })
        try chain.checkNames(defaults, group: nil)
        try chain.checkRanges(defaults, group: nil)
        self.groups = try groups.enumerated().map { index, group in
            ParamGroup(group.parameters, options: try chain.filled(group.options, defaults: defaults, group: index))
        }
        self.chain = chain
        compiled = CompiledChain(chain)
        self.defaults = defaults
        executor = ChainExecutor(chain: compiled, threads: ProcessInfo.processInfo.activeProcessorCount)
        // Counted once self is whole: if validation throws now, deinit runs and balances the count.
        chain.rules.forEach { $0.kernel.usage.add(1) }
        try validate()
    }

    deinit {
        chain.rules.forEach { $0.kernel.usage.add(-1) }
    }

    /// Builds an optimizer with a single group of `parameters`.
    public convenience init(_ parameters: [Parameter], rules: [String], defaults: [String: Double] = [:],
                            registry: RuleRegistry? = nil) throws {
        try self.init([ParamGroup(parameters)], rules: rules, defaults: defaults, registry: registry)
    }

    /// Adds a group, its missing options filled from ``defaults`` (torch's `add_param_group`).
    /// - Throws: ``OptimizerError`` as the initializer does; the optimizer is then unchanged.
    public func addGroup(_ group: ParamGroup) throws {
        let filled = ParamGroup(group.parameters,
                                options: try chain.filled(group.options, defaults: defaults, group: groups.count))
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
        try validate()
        // A chain of rules that never fail cannot leave a step half done: no journal is needed for that.
        let atomic = (atomicSteps && !chain.rules.allSatisfy(\.neverFails)) || nonFiniteSteps == .skip
        let values = resolved.map(\.values)
        var items: [WorkItem] = []
        items.reserveCapacity(plan.entries.count)
        var journalOffsets: [Int] = []
        var journalBytes = 0
        var savedScalars: [Double] = []
        for index in plan.entries.indices {
            guard let gradient = plan.entries[index].gradient.pointee else { continue }
            if plan.entries[index].state == nil {
                let parameter = plan.parameters[index]
                let created = SlotStorage(chain: compiled, count: parameter.count, dtype: parameter.dtype)
                states[ObjectIdentifier(parameter)] = created
                plan.attach(created, at: index)
            }
            let entry = plan.entries[index], state = entry.state!
            if atomic {
                savedScalars.append(contentsOf: UnsafeBufferPointer(start: state.scalars, count: compiled.totalScalars))
                journalOffsets.append(journalBytes)
                journalBytes += WorkItem.journalBytes(count: entry.count, elementSize: entry.dtype.size, slots: compiled.totalSlots)
            }
            items.append(WorkItem(
                param: entry.param, gradient: gradient, count: entry.count, dtype: entry.dtype.abiBit,
                elementSize: entry.dtype.size, step: state.step.pointee, slots: state.slots, scalars: state.scalars,
                hyperparameters: values[entry.group], journal: nil, index: index))
        }
        if atomic {
            let journal = executor.journal(bytes: journalBytes)
            for (position, offset) in journalOffsets.enumerated() { items[position].journal = journal + offset }
        }
        guard let failure = executor.step(items, checksFinite: nonFiniteSteps == .skip) else {
            for item in items { plan.entries[item.index].state!.step.pointee += 1 }
            return .applied
        }
        // With atomic steps everything the executor touched is already back; put back the scalar slots too.
        for (position, item) in items.enumerated() where atomic {
            let saved = savedScalars[(position * compiled.totalScalars)...].prefix(compiled.totalScalars)
            item.scalars.update(from: Array(saved), count: compiled.totalScalars)
        }
        let name = plan.parameters[failure.item].name
        switch failure.kind {
        case .kernel:
            let rule = chain.rules[failure.rule]
            let unjournaled = atomic ? "" : rule.neverFails
                ? " (the rule declared it never fails, so the step was not journaled and is left half done)"
                : " (atomic steps are off, so the step is left half done)"
            throw .kernelFailed(rule: rule.name, parameter: name, status: failure.status, message: failure.words + unjournaled)
        case .nonFiniteGradient:
            skippedSteps += 1
            return .skipped(reason: "the gradient of parameter \(quoted(name)) has a NaN or an infinity")
        case .nonFiniteResult:
            skippedSteps += 1
            return .skipped(reason: "the update would leave a NaN or an infinity in parameter \(quoted(name)) or its state")
        }
    }

    /// A copy of `parameter`'s state, or nil before its first step.
    public func state(of parameter: Parameter) -> ParameterState? {
        states[ObjectIdentifier(parameter)]?.snapshot(chain: compiled)
    }

    /// Checks every group (options, membership, element types) and caches the resolved options.
    private func validate() throws(OptimizerError) {
        let membership = groups.map { $0.parameters.map(ObjectIdentifier.init) }
        if membership != checkedMembership {
            try checkMembership()
            checkedMembership = membership
            plan = StepPlan(groups: groups, states: states)
        }
        var fresh: [ResolvedOptions] = []
        for (index, group) in groups.enumerated() {
            if index < resolved.count, resolved[index].options == group.options {
                fresh.append(resolved[index])
            } else {
                fresh.append(try chain.resolve(group.options, group: index))
            }
        }
        resolved = fresh
    }

    /// Refuses a parameter in several groups and an element type some rule does not support.
    private func checkMembership() throws(OptimizerError) {
        var membership: [ObjectIdentifier: [Int]] = [:]
        for (index, group) in groups.enumerated() {
            for parameter in group.parameters { membership[ObjectIdentifier(parameter), default: []].append(index) }
        }
        for group in groups {
            for parameter in group.parameters {
                if let seen = membership[ObjectIdentifier(parameter)], seen.count > 1 {
                    throw .parameterInSeveralGroups(parameter.name, groups: seen)
                }
                if let rule = chain.rules.first(where: { !$0.dtypes.contains(parameter.dtype) }) {
                    throw .unsupportedDType(rule: rule.name, dtype: parameter.dtype, parameter: parameter.name)
                }
            }
        }
    }
}

extension RuleRegistry {
    private static let sharedLock = NSLock()
    nonisolated(unsafe) private static var sharedRegistry: RuleRegistry?

    /// The process-wide registry: ``RuleRegistry/standard(environment:onConflict:)`` built once, on first use.
    /// - Throws: ``BuiltinRulesNotFound`` if the built-ins are missing (and tries again next time).
    public static func shared() throws -> RuleRegistry {
        try sharedLock.withLock {
            if let sharedRegistry { return sharedRegistry }
            let registry = try standard()
            sharedRegistry = registry
            return registry
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
