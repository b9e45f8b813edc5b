/// The host-owned state of one parameter: its step count and every state slot of every rule in the chain.
///
/// Created when the parameter takes its first step, with each slot at its declared initial value (or the
/// option it starts from). A slot that an option turns on exists only once a step has run with that option
/// on; until then its pointer is nil. The pointers are laid out flat, rule after rule, as ``CompiledChain``
/// indexes them.
final class SlotStorage: @unchecked Sendable {
    /// Steps this parameter has taken, at a fixed address the step plan reads and advances.
    let stepCell: UnsafeMutablePointer<UInt64> = {
        let cell = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        cell.initialize(to: 0)
        return cell
    }()
    /// Steps this parameter has taken.
    var step: UInt64 {
        get { stepCell.pointee }
        set { stepCell.pointee = newValue }
    }
    /// Every rule's elementwise slots in chain order (each `count` elements of the parameter's dtype), nil
    /// where the slot does not exist.
    let elementwise: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// Every rule's scalar slots in chain order, one `Double` each.
    let scalars: UnsafeMutablePointer<Double>
    let elementwiseCount: Int
    let scalarCount: Int
    let count: Int
    let dtype: DType

    /// Storage with no elementwise slot yet and every scalar slot at 0.
    init(count: Int, dtype: DType, elementwiseCount: Int, scalarCount: Int) {
        self.count = count
        self.dtype = dtype
        self.elementwiseCount = elementwiseCount
        self.scalarCount = scalarCount
        elementwise = .allocate(capacity: max(elementwiseCount, 1))
        elementwise.initialize(repeating: nil, count: max(elementwiseCount, 1))
        scalars = .allocate(capacity: max(scalarCount, 1))
        scalars.initialize(repeating: 0, count: max(scalarCount, 1))
    }

    /// The state of a parameter about to take its first step in a group whose resolved options are `values`:
    /// every slot that exists with these options, at its starting value.
    convenience init(chain: CompiledChain, count: Int, dtype: DType, values: UnsafePointer<Double>) {
        self.init(count: count, dtype: dtype, elementwiseCount: chain.totalSlots, scalarCount: chain.totalScalars)
        for (index, origin) in chain.elementwiseSlots.enumerated() where origin.isEnabled(values) {
            create(index, value: origin.initial(values))
        }
        for (index, origin) in chain.scalarSlots.enumerated() { scalars[index] = origin.initial(values) }
    }

    deinit {
        for index in 0..<elementwiseCount { elementwise[index]?.deallocate() }
        elementwise.deallocate()
        scalars.deallocate()
        stepCell.deallocate()
    }

    /// Creates elementwise slot `index`, every element `value`.
    func create(_ index: Int, value: Double) {
        precondition(elementwise[index] == nil, "slot \(index) exists already")
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * dtype.size, alignment: 64)
        switch dtype {
        case .float32: memory.initializeMemory(as: Float.self, repeating: Float(value), count: count)
        case .float64: memory.initializeMemory(as: Double.self, repeating: value, count: count)
        }
        elementwise[index] = memory
    }

    /// Writes `values` (converted exactly to the element type when they came from it) into elementwise slot
    /// `index`, which must exist.
    func store(_ values: [Double], in index: Int) {
        let memory = elementwise[index]!
        switch dtype {
        case .float32: for (i, value) in values.enumerated() { memory.storeBytes(of: Float(value), toByteOffset: i * 4, as: Float.self) }
        case .float64: memory.copyMemory(from: values, byteCount: values.count * 8)
        }
    }

    /// Bytes this storage holds: every existing elementwise slot, the scalar slots and the step count.
    var byteCount: Int {
        (0..<elementwiseCount).filter { elementwise[$0] != nil }.count * count * dtype.size + scalarCount * 8 + 8
    }

    /// Removes elementwise slot `index`.
    func remove(_ index: Int) {
        elementwise[index]?.deallocate()
        elementwise[index] = nil
    }

    /// Creates the slots that options turn on and that do not exist yet, at their starting values.
    /// - Returns: The indices created, to remove them again if the step fails.
    func createEnabledSlots(chain: CompiledChain, values: UnsafePointer<Double>) -> [Int] {
        var created: [Int] = []
        for index in chain.conditionalSlots where elementwise[index] == nil && chain.elementwiseSlots[index].isEnabled(values) {
            create(index, value: chain.elementwiseSlots[index].initial(values))
            created.append(index)
        }
        return created
    }

    /// Calls `body` for every slot of the chain in chain order with its key, its shape, its index among the
    /// slots of that shape and, where the slot exists, its memory (a scalar slot is one `Double`; an
    /// elementwise one `count` elements of `dtype`).
    func forEachSlot(chain: CompiledChain,
                     _ body: (String, StateSlot.Shape, Int, UnsafeMutableRawPointer?) throws -> Void) rethrows {
        var elementwiseIndex = 0, scalarIndex = 0
        for (ruleIndex, rule) in chain.rules.enumerated() {
            for (slotIndex, slot) in rule.stateSlots.enumerated() {
                let key = chain.slotKeys[ruleIndex][slotIndex]
                switch slot.shape {
                case .elementwise:
                    try body(key, .elementwise, elementwiseIndex, elementwise[elementwiseIndex])
                    elementwiseIndex += 1
                case .scalar:
                    try body(key, .scalar, scalarIndex, UnsafeMutableRawPointer(scalars + scalarIndex))
                    scalarIndex += 1
                }
            }
        }
    }

    /// Every existing slot's values as `Double` (exact for float32), keyed as the chain reports them.
    func snapshot(chain: CompiledChain) -> ParameterState {
        var slots: [String: [Double]] = [:]
        forEachSlot(chain: chain) { key, shape, _, memory in
            guard let memory else { return }
            switch shape {
            case .elementwise: slots[key] = doubles(memory)
            case .scalar: slots[key] = [memory.load(as: Double.self)]
            }
        }
        return ParameterState(step: Int(step), slots: slots)
    }

    private func doubles(_ memory: UnsafeMutableRawPointer) -> [Double] {
        switch dtype {
        case .float32: UnsafeBufferPointer(start: memory.assumingMemoryBound(to: Float.self), count: count).map(Double.init)
        case .float64: Array(UnsafeBufferPointer(start: memory.assumingMemoryBound(to: Double.self), count: count))
        }
    }
}

/// A copy of one parameter's optimizer state.
public struct ParameterState: Sendable, Equatable {
    /// Steps the parameter has taken (steps in which it had a gradient).
    public let step: Int
    /// Every existing state slot's values, converted exactly to `Double`, by key: the slot's name
    /// (`momentum_buffer`); `rule.slot` when two rules of the chain declare the same slot name; `rule#k.slot`
    /// for the k-th appearance of a rule that the chain runs more than once. A scalar slot has one value. A
    /// slot that an option turns on appears once a step has run with that option on.
    public let slots: [String: [Double]]

    /// A state as ``Optimizer/state(of:)`` returns it, for a distributed optimizer that moves state between
    /// processes.
    init(step: Int, slots: [String: [Double]]) {
        self.step = step
        self.slots = slots
    }
}
