/// The host-owned state of one parameter: its step count and every state slot of every rule in the chain.
///
/// Created when the parameter takes its first step, with each slot at its declared initial value. The
/// pointers are laid out flat, rule after rule, as ``CompiledChain`` indexes them.
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
    /// Every rule's elementwise slots in chain order (each `count` elements of the parameter's dtype).
    let elementwise: UnsafeMutablePointer<UnsafeMutableRawPointer>
    /// Every rule's scalar slots in chain order, one `Double` each.
    let scalars: UnsafeMutablePointer<Double>
    private let elementwiseCount: Int
    private let count: Int
    private let dtype: DType

    init(chain: CompiledChain, count: Int, dtype: DType) {
        self.count = count
        self.dtype = dtype
        let initial = chain.rules.flatMap { $0.stateSlots.filter { $0.shape == .elementwise }.map(\.initialValue) }
        elementwiseCount = initial.count
        elementwise = .allocate(capacity: max(initial.count, 1))
        for (index, value) in initial.enumerated() {
            let memory = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * dtype.size, alignment: 64)
            switch dtype {
            case .float32: memory.initializeMemory(as: Float.self, repeating: Float(value), count: count)
            case .float64: memory.initializeMemory(as: Double.self, repeating: value, count: count)
            }
            (elementwise + index).initialize(to: memory)
        }
        let scalarInitial = chain.rules.flatMap { $0.stateSlots.filter { $0.shape == .scalar }.map(\.initialValue) }
        scalars = .allocate(capacity: max(scalarInitial.count, 1))
        scalars.initialize(repeating: 0, count: max(scalarInitial.count, 1))
        scalars.update(from: scalarInitial, count: scalarInitial.count)
    }

    deinit {
        for index in 0..<elementwiseCount { elementwise[index].deallocate() }
        elementwise.deallocate()
        scalars.deallocate()
        stepCell.deallocate()
    }

    /// Every slot's values as `Double` (exact for float32), keyed as the chain reports them.
    func snapshot(chain: CompiledChain) -> ParameterState {
        var slots: [String: [Double]] = [:]
        var elementwiseIndex = 0, scalarIndex = 0
        for (ruleIndex, rule) in chain.rules.enumerated() {
            for (slotIndex, slot) in rule.stateSlots.enumerated() {
                let key = chain.slotKeys[ruleIndex][slotIndex]
                switch slot.shape {
                case .elementwise:
                    slots[key] = doubles(elementwise[elementwiseIndex])
                    elementwiseIndex += 1
                case .scalar:
                    slots[key] = [scalars[scalarIndex]]
                    scalarIndex += 1
                }
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
    /// Every state slot's values, converted exactly to `Double`, by slot name (`momentum_buffer`), or by
    /// `rule.slot` when two rules of the chain declare the same slot name. A scalar slot has one value.
    public let slots: [String: [Double]]
}
