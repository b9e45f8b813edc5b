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
        /// The parameter's state once it has taken a step. Unmanaged, so reading the plan costs no reference
        /// counting per tensor; the optimizer's `states` keeps each storage alive.
        var state: Unmanaged<SlotStorage>?
    }

    private(set) var entries: [Entry] = []
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
                                     state: states[ObjectIdentifier(parameter)].map(Unmanaged.passUnretained)))
            }
        }
    }

    /// Attaches `state` to entry `index`, or detaches it with nil.
    mutating func attach(_ state: SlotStorage?, at index: Int) {
        entries[index].state = state.map(Unmanaged.passUnretained)
    }
}
