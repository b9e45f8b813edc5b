/// The one way into an optimizer and its parameters for RegulaDistributed, the distributed optimizer in
/// another module of this package: everything it does beyond the public API goes through here (and through
/// the ``ReductionExchange`` it hands in), and the rest of Regula stays internal.
///
/// Through it a distributed optimizer takes steps whose outcome every process agrees on, moves parameters'
/// raw memory between processes, marks a parameter as a share of a larger tensor, and gathers and scatters
/// state: whole states, the scalar slots, and the skip count a checkpoint carries. Every call on an
/// optimizer takes its lock.
package struct DistributionSeam {
    /// What one process's part of a step came to, before it is kept (``step(agreeing:)``).
    package enum LocalStep: Sendable {
        /// Every parameter with a gradient was stepped.
        case applied
        /// A non-finite gradient or result (with ``NonFiniteSteps/skip``).
        case skipped(reason: String)
        /// Options refused, or a rule failed.
        case failed(OptimizerError)
    }

    private let optimizer: Optimizer

    /// The seam into `optimizer`.
    package init(_ optimizer: Optimizer) { self.optimizer = optimizer }

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

    /// Where the optimizer's steps combine their checks and reductions with the other processes'; nil (the
    /// default) in a single process.
    package var reductionExchange: (any ReductionExchange)? {
        get { optimizer.lock.withLock { optimizer.executor.exchange } }
        nonmutating set { optimizer.lock.withLock { optimizer.executor.exchange = newValue } }
    }

    /// Replaces `parameter`'s state with `state` (as ``Optimizer/state(of:)`` returns it), or clears it with
    /// nil.
    /// - Throws: ``OptimizerError`` when the parameter is not one of the optimizer's, or `state` names a slot
    ///   the chain does not have, lacks one every parameter has, or holds the wrong number of values; nothing
    ///   changes then.
    package func setState(of parameter: Parameter, to state: ParameterState?) throws(OptimizerError) {
        try optimizer.setState(of: parameter, to: state)
    }

    /// Every state slot key of the chain (as ``ParameterState/slots`` names them) with its shape, in chain order.
    package var stateSlotShapes: [(key: String, shape: StateSlot.Shape)] {
        zip(optimizer.compiled.rules, optimizer.compiled.slotKeys).flatMap { rule, keys in
            zip(keys, rule.stateSlots.map(\.shape)).map { ($0, $1) }
        }
    }

    /// Calls `body` with `parameter`'s scalar slots (every rule's, in chain order), if it has state.
    package func withScalarSlots(of parameter: Parameter, _ body: (UnsafeMutableBufferPointer<Double>) -> Void) {
        optimizer.withStoredStates { stored in
            guard let state = stored(parameter) else { return }
            body(UnsafeMutableBufferPointer(start: state.scalars, count: optimizer.compiled.totalScalars))
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

    /// Marks `part` as the share at `offset` of a tensor of `wholeCount` elements, so that rules see
    /// `block->offset` and `block->parameter_length` as they would for the whole tensor.
    /// - Precondition: the share fits in the whole tensor (misuse traps).
    package static func makeShare(_ part: Parameter, offset: Int, wholeCount: Int) {
        part.share = (offset, wholeCount)
    }
}
