import CRegulaShims

/// The parameters an optimizer steps, flattened into plain addresses so that a step of many small tensors
/// costs little more than their arithmetic: no dictionary look-ups and no reference counting per tensor.
///
/// Rebuilt whenever the groups' parameter lists change; a parameter's state is attached at its first step.
struct StepPlan {
    /// One parameter of the plan.
    struct Entry {
        let gradient: UnsafeMutablePointer<UnsafeRawPointer?>
        let param: UnsafeMutableRawPointer
        let count: Int
        let dtype: DType
        let group: Int
        /// Where the parameter lies in the tensor it is a share of (offset 0 and its own count when whole).
        let shareOffset: Int
        let wholeCount: Int
        /// The shape kernels see (the whole tensor's for a share) and its number of sizes.
        let shape: UnsafePointer<Int>
        let rank: Int
        /// The parameter's state once it has taken a step, as the raw addresses a step reads (no reference
        /// counting per tensor), and the storage itself, unretained (the optimizer's `states` keeps it alive).
        var state: State?
    }

    /// What a step needs of a parameter's state.
    struct State {
        let step: UnsafeMutablePointer<UInt64>
        let slots: UnsafeMutablePointer<UnsafeMutableRawPointer?>
        let slotLengths: UnsafePointer<Int>
        let scalars: UnsafeMutablePointer<Double>
        let storage: Unmanaged<SlotStorage>

        init(_ storage: SlotStorage) {
            step = storage.stepCell
            slots = storage.elementwise
            slotLengths = UnsafePointer(storage.lengthCells)
            scalars = storage.scalars
            self.storage = .passUnretained(storage)
        }
    }

    private(set) var entries: [Entry] = []

    /// Asks the processor for the two words of entry `index` that live with the parameter and its state
    /// (the gradient's address and the step count), so that a loop over many tensors that calls this a few
    /// entries ahead does not wait on a cache miss for each: they lie in memory of their own per tensor, and
    /// without it the two misses were nearly all of the time spent building a step of 10,000 small tensors.
    func prefetch(_ index: Int) {
        guard index < entries.count else { return }
        regula_prefetch_block(entries[index].gradient, entries[index].state?.step, 1)
    }

    /// How far ahead of the entry in hand ``prefetch(_:)`` is called: enough misses in flight to hide a
    /// memory access behind the work of the entries between.
    static let prefetchDistance = 16
    /// The parameters, in plan order (for names, and to keep them alive).
    private(set) var parameters: [Parameter] = []

    init() {}

    init(groups: [ParamGroup], states: [ObjectIdentifier: SlotStorage]) {
        for (index, group) in groups.enumerated() {
            for parameter in group.parameters {
                parameters.append(parameter)
                entries.append(Entry(gradient: parameter.gradientCell, param: parameter.storage, count: parameter.count,
                                     dtype: parameter.dtype, group: index, shareOffset: parameter.share?.offset ?? 0,
                                     wholeCount: parameter.share?.wholeCount ?? parameter.count,
                                     shape: UnsafePointer(parameter.shapeCell), rank: parameter.shapeCellRank,
                                     state: states[ObjectIdentifier(parameter)].map(State.init)))
            }
        }
    }

    /// Attaches `state` to entry `index`, or detaches it with nil.
    mutating func attach(_ state: SlotStorage?, at index: Int) {
        entries[index].state = state.map(State.init)
    }
}
