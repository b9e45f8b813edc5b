/// What one step changes, kept so that the step can be taken back: a journaled step that fails, or is
/// skipped as non-finite, changes nothing.
///
/// After ``rollBack(_:plan:states:)`` every parameter's values, state slots and step count are as they were
/// at ``begin(journaled:)``, and no state the step created is left (a first step's whole state, or a slot an
/// option turned on). The executor saves each block to the journal laid out here before touching it and puts
/// it back when the step is not kept; the transaction restores the scalar slots and removes created state.
/// An unjournaled step keeps nothing, and a failure leaves it half done. Used under the optimizer's lock.
final class StepTransaction {
    private let chain: CompiledChain
    private(set) var isJournaled = false
    /// Per journaled item, in item order: its scalar slots from before the step and its journal's offset.
    private var savedScalars: [Double] = [], journalOffsets: [Int] = [], journalBytes = 0
    /// Plan entries whose whole state this step created, and slots it created in existing state.
    private var createdStates: [Int] = [], createdSlots: [(entry: Int, slots: [Int])] = []

    init(chain: CompiledChain) { self.chain = chain }

    /// Starts a step's transaction, forgetting the last one (but keeping its memory).
    func begin(journaled: Bool) {
        isJournaled = journaled
        savedScalars.removeAll(keepingCapacity: true)
        journalOffsets.removeAll(keepingCapacity: true)
        journalBytes = 0
        createdStates.removeAll(keepingCapacity: true)
        createdSlots.removeAll(keepingCapacity: true)
    }

    /// Gives plan entry `index` the state the step needs with options `values`: fresh state before its first
    /// step, or else (when `switching`) the slots an option has turned on since. Then saves what the step will
    /// change beyond its blocks and reserves its part of the journal. Called once per work item, in order.
    func prepare(_ index: Int, plan: inout StepPlan, states: inout [ObjectIdentifier: SlotStorage],
                 values: UnsafePointer<Double>, switching: Bool) {
        if plan.entries[index].state == nil {
            let parameter = plan.parameters[index]
            let created = SlotStorage(chain: chain, for: parameter, values: values)
            states[ObjectIdentifier(parameter)] = created
            plan.attach(created, at: index)
            createdStates.append(index)
        } else if switching {
            let slots = plan.entries[index].state!.storage.takeUnretainedValue().createEnabledSlots(chain: chain, values: values, param: plan.parameters[index].storage)
            if !slots.isEmpty { createdSlots.append((index, slots)) }
        }
        guard isJournaled else { return }
        let entry = plan.entries[index]
        savedScalars.append(contentsOf: UnsafeBufferPointer(start: entry.state!.scalars, count: chain.totalScalars))
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
        for (position, item) in items.enumerated() {
            if position + StepPlan.prefetchDistance < items.count { plan.prefetch(items[position + StepPlan.prefetchDistance].index) }
            plan.entries[item.index].state!.step.pointee += 1
        }
    }

    /// Takes the step back once the executor has put back its journaled blocks: restores the scalar slots of
    /// `items` and removes the state this step created. Does nothing to an unjournaled step.
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
