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
    /// Every rule's element slots (elementwise, rows and columns) in chain order, each ``length(of:)``
    /// elements of the parameter's dtype, nil where the slot does not exist.
    let elementwise: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// Every rule's scalar slots in chain order, one `Double` each.
    let scalars: UnsafeMutablePointer<Double>
    let elementwiseCount: Int
    let scalarCount: Int
    let count: Int
    let dtype: DType
    /// The parameter's shape, and per element slot its length and whether the parameter's rank has it.
    let shape: [Int]
    private let lengths: [Int]
    private let present: [Bool]
    /// ``length(of:)`` of every element slot at a fixed address, for the executor's threads.
    let lengthCells: UnsafeMutablePointer<Int>

    /// Storage for `parameter` under `chain`, with no element slot yet and every scalar slot at 0. A share of
    /// a tensor (a sharded step) has the slots of the whole tensor's rank, each as long as the share.
    init(chain: CompiledChain, for parameter: Parameter) {
        count = parameter.count
        dtype = parameter.dtype
        shape = parameter.shape
        elementwiseCount = chain.totalSlots
        scalarCount = chain.totalScalars
        lengths = chain.elementwiseSlots.map { [shape] in $0.kind.shape(for: shape)?.reduce(1, *) ?? 0 }
        present = chain.elementwiseSlots.map { [rank = parameter.shapeCellRank] in $0.ranks.contains(rank) }
        lengthCells = .allocate(capacity: max(elementwiseCount, 1))
        lengthCells.initialize(from: lengths, count: elementwiseCount)
        elementwise = .allocate(capacity: max(elementwiseCount, 1))
        elementwise.initialize(repeating: nil, count: max(elementwiseCount, 1))
        scalars = .allocate(capacity: max(scalarCount, 1))
        scalars.initialize(repeating: 0, count: max(scalarCount, 1))
    }

    /// The state of a parameter about to take its first step in a group whose resolved options are `values`:
    /// every slot that exists with these options and the parameter's rank, at its starting value (a copy of
    /// the parameter's values for a slot that starts from them).
    convenience init(chain: CompiledChain, for parameter: Parameter, values: UnsafePointer<Double>) {
        self.init(chain: chain, for: parameter)
        _ = createEnabledSlots(chain: chain, values: values, param: parameter.storage, including: chain.elementwiseSlots.indices)
        for (index, origin) in chain.scalarSlots.enumerated() { scalars[index] = origin.initial(values) }
    }

    /// Elements of element slot `index`: the parameter's count, or its rows' or columns' count.
    func length(of index: Int) -> Int { lengths[index] }

    /// Whether element slot `index` can exist for this parameter's rank.
    func hasSlot(_ index: Int) -> Bool { present[index] }

    deinit {
        for index in 0..<elementwiseCount { elementwise[index]?.deallocate() }
        elementwise.deallocate()
        lengthCells.deallocate()
        scalars.deallocate()
        stepCell.deallocate()
    }

    /// Creates element slot `index`, every element `value`, or a copy of the parameter's values at `param`.
    func create(_ index: Int, value: Double, param: UnsafeRawPointer? = nil) {
        precondition(elementwise[index] == nil, "slot \(index) exists already")
        let length = lengths[index]
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(length, 1) * dtype.size, alignment: 64)
        if let param {
            memory.copyMemory(from: param, byteCount: length * dtype.size)
        } else {
            switch dtype {
            case .float32: memory.initializeMemory(as: Float.self, repeating: Float(value), count: length)
            case .float64: memory.initializeMemory(as: Double.self, repeating: value, count: length)
            }
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

    /// Bytes this storage holds: every existing element slot, the scalar slots and the step count.
    var byteCount: Int {
        (0..<elementwiseCount).filter { elementwise[$0] != nil }.reduce(0) { $0 + lengths[$1] } * dtype.size + scalarCount * 8 + 8
    }

    /// Removes elementwise slot `index`.
    func remove(_ index: Int) {
        elementwise[index]?.deallocate()
        elementwise[index] = nil
    }

    /// Creates the slots that options turn on and that do not exist yet, at their starting values.
    /// - Returns: The indices created, to remove them again if the step fails.
    func createEnabledSlots(chain: CompiledChain, values: UnsafePointer<Double>, param: UnsafeRawPointer) -> [Int] {
        createEnabledSlots(chain: chain, values: values, param: param, including: chain.conditionalSlots)
    }

    /// Creates those of `candidates` that are missing, enabled with `values` and present for the rank.
    private func createEnabledSlots(chain: CompiledChain, values: UnsafePointer<Double>, param: UnsafeRawPointer,
                                    including candidates: some Sequence<Int>) -> [Int] {
        var created: [Int] = []
        for index in candidates where elementwise[index] == nil && present[index] && chain.elementwiseSlots[index].isEnabled(values) {
            let origin = chain.elementwiseSlots[index]
            create(index, value: origin.initial(values), param: origin.startsFromParameter ? param : nil)
            created.append(index)
        }
        return created
    }

    /// Calls `body` for every slot of the chain that the parameter's rank has, in chain order, with its key,
    /// its shape, its index among the slots of its kind (element or scalar) and, where the slot exists, its
    /// memory (a scalar slot is one `Double`; an element slot ``length(of:)`` elements of `dtype`).
    func forEachSlot(chain: CompiledChain,
                     _ body: (String, StateSlot.Shape, Int, UnsafeMutableRawPointer?) throws -> Void) rethrows {
        var elementwiseIndex = 0, scalarIndex = 0
        for (ruleIndex, rule) in chain.rules.enumerated() {
            for (slotIndex, slot) in rule.stateSlots.enumerated() {
                let key = chain.slotKeys[ruleIndex][slotIndex]
                if slot.shape.holdsElements {
                    if present[elementwiseIndex] { try body(key, slot.shape, elementwiseIndex, elementwise[elementwiseIndex]) }
                    elementwiseIndex += 1
                } else {
                    try body(key, .scalar, scalarIndex, UnsafeMutableRawPointer(scalars + scalarIndex))
                    scalarIndex += 1
                }
            }
        }
    }

    /// Every existing slot's values as `Double` (exact for float32), and its shape, keyed as the chain reports them.
    func snapshot(chain: CompiledChain) -> ParameterState {
        var slots: [String: [Double]] = [:], shapes: [String: [Int]] = [:]
        forEachSlot(chain: chain) { key, kind, index, memory in
            guard let memory else { return }
            slots[key] = kind == .scalar ? [memory.load(as: Double.self)] : doubles(memory, count: lengths[index])
            shapes[key] = kind.shape(for: shape) ?? []
        }
        return ParameterState(step: Int(step), slots: slots, shapes: shapes)
    }

    private func doubles(_ memory: UnsafeMutableRawPointer, count: Int) -> [Double] {
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
    /// Each slot's shape, by the same keys: the parameter's for an elementwise slot, `[]` for a scalar one,
    /// (…, m, 1) and (…, 1, n) for rows and columns slots (Adafactor's `row_var` and `col_var`). Shapes follow
    /// from the parameter and the chain, so two states compare equal by their steps and values alone.
    public let shapes: [String: [Int]]

    /// A state as ``Optimizer/state(of:)`` returns it, or (without `shapes`) as a distributed optimizer
    /// gathers one to move it between processes, where only the values travel.
    init(step: Int, slots: [String: [Double]], shapes: [String: [Int]] = [:]) {
        self.step = step
        self.slots = slots
        self.shapes = shapes
    }

    /// Whether both took the same number of steps and hold the same values in the same slots.
    public static func == (a: ParameterState, b: ParameterState) -> Bool { a.step == b.step && a.slots == b.slots }
}
