/// What a distributed optimizer in another module of this package (RegulaDistributed) needs beyond
/// `Optimizer.step(agreeing:)`, `Optimizer.setState(of:to:)` and `ReductionExchange`: the raw memory
/// of the parameters it moves between processes, the shape of each state slot and the scalar slots'
/// memory, and the skip count a checkpoint carries.
extension Parameter {
    /// The first of the parameter's `count` values, in its element type.
    package var valuesAddress: UnsafeMutableRawPointer { storage }
    /// The first element of the gradient, or nil when the parameter has none this step.
    package var gradientAddress: UnsafeRawPointer? { gradientStorage }
}

extension Optimizer {
    /// Every state slot key of the chain (as ``ParameterState/slots`` names them) with its shape, in chain order.
    package var stateSlotShapes: [(key: String, shape: StateSlot.Shape)] {
        zip(compiled.rules, compiled.slotKeys).flatMap { rule, keys in zip(keys, rule.stateSlots.map(\.shape)).map { ($0, $1) } }
    }

    /// Scalar slots each parameter's state has (every rule's, in chain order).
    package var scalarSlotCount: Int { compiled.totalScalars }

    /// Calls `body` with `parameter`'s scalar slots (`scalarSlotCount` values), if it has state.
    package func withScalarSlots(of parameter: Parameter, _ body: (UnsafeMutableBufferPointer<Double>) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard let state = states[ObjectIdentifier(parameter)] else { return }
        body(UnsafeMutableBufferPointer(start: state.scalars, count: compiled.totalScalars))
    }

    /// Sets `skippedSteps`, which a checkpoint restores.
    package func restoreSkippedSteps(_ count: Int) {
        lock.lock()
        defer { lock.unlock() }
        skippedSteps = count
    }
}
