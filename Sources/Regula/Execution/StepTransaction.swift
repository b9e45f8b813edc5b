/// What one step changes, kept so that the step can be taken back: a journaled step that fails, or is
/// skipped as non-finite, changes nothing.
///
/// After ``rollBack(_:plan:states:)`` of a journaled step, every parameter's values, every state slot
/// (elementwise and scalar) and every step count are exactly as they were at ``begin(journaled:)``, and no
/// state the step created is left: neither the whole state of a parameter taking its first step nor a slot
/// an option turned on since the last one. The work is split with ``ChainExecutor``: the transaction lays
/// out the journal and attaches it to the work items, the executor saves each block there before touching
/// it and puts the saved blocks back when the step is not kept; the transaction saves and restores the
/// scalar slots and removes created state. An unjournaled step (``begin(journaled:)`` with false) keeps
/// nothing and cannot be rolled back: a failure leaves it half done.
///
/// One per optimizer, used under its lock; its memory is reused from step to step.
final class StepTransaction {
    private let chain: CompiledChain
    /// Whether this step is journaled.
    private(set) var isJournaled = false
    /// Per journaled item, in item order: its scalar slots from before the step and its journal's offset.
    private var savedScalars: [Double] = []
    private var journalOffsets: [Int] = []
    private var journalBytes = 0
    /// Plan entries whose whole state this step created, and slots it created in existing state.
    private var createdStates: [Int] = []
    private var createdSlots: [(entry: Int, slots: [Int])] = []

    init(chain: CompiledChain) { self.chain = chain }

    /// Starts a step's transaction, forgetting the last one.
    func begin(journaled: Bool) {
        isJournaled = journaled
        savedScalars.removeAll(keepingCapacity: true)
        journalOffsets.removeAll(keepingCapacity: true)
        journalBytes = 0
        createdStates.removeAll(keepingCapacity: true)
        createdSlots.removeAll(keepingCapacity: true)
    }

    /// Gives plan entry `index` fresh state at the start values for options `values`, to be taken away again
    /// on roll back.
    func createState(at index: Int, plan: inout StepPlan, states: inout [ObjectIdentifier: SlotStorage],
                     values: UnsafePointer<Double>) {
        let parameter = plan.parameters[index]
        let created = SlotStorage(chain: chain, count: parameter.count, dtype: parameter.dtype, values: values)
        states[ObjectIdentifier(parameter)] = created
        plan.attach(created, at: index)
        createdStates.append(index)
    }

    /// Creates in entry `index`'s state the slots options `values` turn on, to be removed again on roll back.
    func createEnabledSlots(at index: Int, plan: StepPlan, values: UnsafePointer<Double>) {
        let slots = plan.entries[index].state!.storage.takeUnretainedValue().createEnabledSlots(chain: chain, values: values)
        if !slots.isEmpty { createdSlots.append((index, slots)) }
    }

    /// Saves what the step will change of `entry` beyond its blocks (its scalar slots) and reserves its part
    /// of the journal; does nothing when the step is not journaled. Call once per work item, in item order.
    func save(_ entry: StepPlan.Entry) {
        guard isJournaled, let state = entry.state else { return }
        savedScalars.append(contentsOf: UnsafeBufferPointer(start: state.scalars, count: chain.totalScalars))
        journalOffsets.append(journalBytes)
        journalBytes += WorkItem.journalBytes(count: entry.count, elementSize: entry.dtype.size, slots: chain.totalSlots)
    }

    /// Points each of `items` at its part of the journal, in `executor`'s memory.
    func attachJournal(to items: inout [WorkItem], in executor: ChainExecutor) {
        guard isJournaled else { return }
        let journal = executor.journal(bytes: journalBytes)
        for (position, offset) in journalOffsets.enumerated() { items[position].journal = journal + offset }
    }

    /// Keeps the step: each of `items` has taken one more step.
    func commit(_ items: [WorkItem], plan: StepPlan) {
        for item in items { plan.entries[item.index].state!.step.pointee += 1 }
    }

    /// Takes the step back, once the executor has put back the blocks it journaled: restores the scalar
    /// slots of `items` and removes the state this step created. Does nothing to an unjournaled step.
    func rollBack(_ items: [WorkItem], plan: inout StepPlan, states: inout [ObjectIdentifier: SlotStorage]) {
        guard isJournaled else { return }
        let count = chain.totalScalars
        for (position, item) in items.enumerated() where count > 0 {
            savedScalars.withUnsafeBufferPointer { item.scalars.update(from: $0.baseAddress! + position * count, count: count) }
        }
        for (index, slots) in createdSlots { slots.forEach(plan.entries[index].state!.storage.takeUnretainedValue().remove) }
        for index in createdStates {
            plan.attach(nil, at: index)
            states[ObjectIdentifier(plan.parameters[index])] = nil
        }
    }
}
