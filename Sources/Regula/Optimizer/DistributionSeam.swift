/// The one way into an optimizer and its parameters for RegulaDistributed (another module of this package):
/// everything it does beyond the public API goes through here and the ``ReductionExchange`` it hands in.
/// It takes steps every process agrees on, moves parameters' raw memory, marks a parameter as a share of a
/// larger tensor, and moves state in and out. Every call on an optimizer takes its lock.
package struct DistributionSeam {
    /// What one process's part of a step came to, before it is kept (``step(agreeing:)``).
    package enum LocalStep: Sendable {
        /// Stepped; skipped for a non-finite value (with ``NonFiniteSteps/skip``); refused options or a failed rule.
        case applied, skipped(reason: String), failed(OptimizerError)
    }

    private let optimizer: Optimizer

    /// The seam into `optimizer`.
    package init(_ optimizer: Optimizer) { self.optimizer = optimizer }

    /// The rules of every chain the optimizer runs (its own and its groups'), in chain order.
    package var rulesOfEveryChain: [Rule] { optimizer.chains.flatMap(\.chain.rules) }

    /// Takes a step whose outcome several processes must share: the step runs (journaled, so it can be
    /// undone), `agree` is called exactly once with this process's outcome, and returns the outcome every
    /// process takes. Unless that is ``LocalStep/applied``, the step is undone, changing nothing, and the
    /// agreed skip is returned or the agreed failure thrown. `agree` is where a distributed optimizer
    /// exchanges outcomes with the other processes; it is called even when the options are refused.
    package func step(agreeing agree: (LocalStep) -> LocalStep) throws(OptimizerError) -> StepOutcome {
        optimizer.lock.lock()
        defer { optimizer.lock.unlock() }
        do {
            try optimizer.validate()
        } catch {
            switch agree(.failed(error)) {
            case .failed(let agreed): throw agreed
            case .skipped(let reason): return .skipped(reason: reason)
            case .applied: throw error
            }
        }
        return try optimizer.takeStep(agreeing: agree, vetoable: true)
    }

    /// Where steps combine their checks and reductions with the other processes'; nil in a single process.
    package var reductionExchange: (any ReductionExchange)? {
        get { optimizer.lock.withLock { optimizer.exchange } }
        nonmutating set { optimizer.lock.withLock { optimizer.exchange = newValue } }
    }

    /// Replaces `parameter`'s state with `state` (as ``Optimizer/state(of:)`` returns it), or clears it with
    /// nil. Throws, changing nothing, for a parameter not of the optimizer or a state that does not fit.
    package func setState(of parameter: Parameter, to state: ParameterState?) throws(OptimizerError) {
        try optimizer.setState(of: parameter, to: state)
    }

    /// Every state slot key of the chain `parameter` runs (as ``ParameterState/slots`` names them) with its
    /// shape, in chain order; empty for a parameter of no group.
    package func stateSlotShapes(of parameter: Parameter) -> [(key: String, shape: StateSlot.Shape)] {
        guard let compiled = optimizer.groupChain(of: parameter)?.compiled else { return [] }
        return zip(compiled.rules, compiled.slotKeys).flatMap { zip($1, $0.stateSlots.map(\.shape)).map { ($0, $1) } }
    }

    /// Whether the chain `parameter` runs has a whole-tensor rule (``Rule/isWholeTensor``), which must see the
    /// parameter whole rather than a share of it.
    package func seesWholeTensors(_ parameter: Parameter) -> Bool {
        optimizer.groupChain(of: parameter)?.chain.rules.contains(where: \.isWholeTensor) ?? false
    }

    /// Whether every rule of the chain `parameter` runs declares that it never fails.
    package func neverFails(_ parameter: Parameter) -> Bool {
        optimizer.groupChain(of: parameter)?.chain.rules.allSatisfy(\.neverFails) ?? true
    }

    /// Calls `body` with `parameter`'s scalar slots (every rule's of its chain, in chain order), if it has state.
    package func withScalarSlots(of parameter: Parameter, _ body: (UnsafeMutableBufferPointer<Double>) -> Void) {
        optimizer.withStoredStates { stored in
            guard let state = stored(parameter), let chain = optimizer.groupChain(of: parameter) else { return }
            body(UnsafeMutableBufferPointer(start: state.scalars, count: chain.compiled.totalScalars))
        }
    }

    /// Sets the optimizer's ``Optimizer/skippedSteps``, which a checkpoint restores.
    package func restoreSkippedSteps(_ count: Int) { optimizer.skippedSteps = count }

    /// A parameter's state as ``Optimizer/state(of:)`` returns it, made from a gathered `step` and `slots`.
    package static func state(step: Int, slots: [String: [Double]]) -> ParameterState {
        ParameterState(step: step, slots: slots)
    }

    /// The first of `parameter`'s values, in its element type.
    package static func values(of parameter: Parameter) -> UnsafeMutableRawPointer { parameter.storage }

    /// The first element of `parameter`'s gradient, or nil when it has none this step.
    package static func gradient(of parameter: Parameter) -> UnsafeRawPointer? { parameter.gradientStorage }

    /// Marks `part` as the share at `offset` of the tensor `whole`, so that rules see `block->offset`,
    /// `block->parameter_length` and `block->shape` as for the whole tensor (a share that does not fit traps).
    package static func makeShare(_ part: Parameter, offset: Int, of whole: Parameter) {
        part.becomeShare(offset: offset, of: whole.shape)
    }
}
