/// One tensor of a checkpoint: its name in the file, what it holds, and the memory it is saved from and
/// loaded into.
struct CheckpointTensor {
    /// `param/NAME` for a parameter's values, `state/NAME/SLOT` for a state slot (SLOT as the chain reports
    /// it in ``ParameterState/slots``).
    let name: String
    let dtype: DType
    let count: Int
    /// Its shape in the file: the parameter's for its values and elementwise slots, `[1]` for a scalar slot.
    let shape: [Int]
    /// Whether a checkpoint may lack it: a state slot that exists only once an option has turned it on.
    let optional: Bool
    /// For a state slot, the key it is reported under and the rule and declaration behind it; nil for a
    /// parameter's values.
    let slot: (key: String, rule: Rule, declared: StateSlot)?
    /// Its memory, or nil for a state slot that does not exist (yet).
    let memory: UnsafeMutableRawPointer?
    /// Creates the memory of a slot that does not exist, to load it; returns ``memory`` when it exists.
    let create: () -> UnsafeMutableRawPointer

    var byteCount: Int { count * dtype.size }
}

/// The one place that decides which tensors a checkpoint holds and what they are called: saving writes
/// these (those whose memory exists), loading requires these (all but the optional ones) and refuses any
/// other.
extension Optimizer {
    /// `parameter`'s values, then, when it has `state`, each of its state slots: every tensor it contributes.
    func checkpointTensors(of parameter: Parameter, state: SlotStorage?) -> [CheckpointTensor] {
        [valuesTensor(of: parameter)] + (state.map { stateTensors(of: parameter, state: $0) } ?? [])
    }

    /// The tensor of `parameter`'s values.
    func valuesTensor(of parameter: Parameter) -> CheckpointTensor {
        CheckpointTensor(name: "param/\(parameter.name)", dtype: parameter.dtype, count: parameter.count, shape: parameter.shape,
                         optional: false, slot: nil, memory: parameter.storage, create: { parameter.storage })
    }

    /// The tensors of each state slot of each rule in `state`, in the order of the chain `parameter` runs.
    func stateTensors(of parameter: Parameter, state: SlotStorage) -> [CheckpointTensor] {
        var tensors: [CheckpointTensor] = []
        guard let owner = groupChain(of: parameter) else { return [] }
        let (chain, compiled) = (owner.chain, owner.compiled)
        state.forEachSlot(chain: compiled) { key, shape, index, memory in
            let name = "state/\(parameter.name)/\(key)"
            let slot = chain.slotOwners[key].map { (key, $0.rule, $0.slot) }
            switch shape {
            case .elementwise, .rows, .columns:
                // A slot an option turns on is absent until a step ran with the option on.
                let optional = compiled.elementwiseSlots[index].enabledBy != nil
                tensors.append(.init(name: name, dtype: parameter.dtype, count: state.length(of: index),
                                     shape: shape.shape(for: parameter.shape) ?? [], optional: optional,
                                     slot: slot, memory: memory, create: {
                                         if state.elementwise[index] == nil { state.create(index, value: 0) }
                                         return state.elementwise[index]!
                                     }))
            case .scalar:
                tensors.append(.init(name: name, dtype: .float64, count: 1, shape: [1], optional: false, slot: slot, memory: memory,
                                     create: { memory! }))
            }
        }
        return tensors
    }

    /// State for `parameter` to load a checkpoint into, laid out for the chain `chain` it runs: no element
    /// slot yet (each is created as its tensor is read), scalar slots at 0.
    func newState(for parameter: Parameter, chain: CompiledChain) -> SlotStorage {
        SlotStorage(chain: chain, for: parameter)
    }
}
