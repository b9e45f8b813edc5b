/// The host-owned state of one parameter: its step count and every state slot of every rule in the chain.
///
/// Created when the parameter takes its first step, with each slot at its declared initial value.
final class SlotStorage: @unchecked Sendable {
    /// Steps this parameter has taken.
    var step: UInt64 = 0
    /// For each rule, its elementwise slots (each `count` elements of the parameter's dtype).
    let elementwise: [[UnsafeMutableRawPointer]]
    /// For each rule, its scalar slots, one `Double` each (at least one allocated so the pointer is valid).
    let scalars: [UnsafeMutablePointer<Double>]
    private let count: Int
    private let dtype: DType

    init(chain: Chain, count: Int, dtype: DType) {
        self.count = count
        self.dtype = dtype
        elementwise = chain.rules.map { rule in
            rule.stateSlots.filter { $0.shape == .elementwise }.map { slot in
                let memory = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * dtype.size, alignment: 64)
                switch dtype {
                case .float32: memory.initializeMemory(as: Float.self, repeating: Float(slot.initialValue), count: count)
                case .float64: memory.initializeMemory(as: Double.self, repeating: slot.initialValue, count: count)
                }
                return memory
            }
        }
        scalars = chain.rules.map { rule in
            let initial = rule.stateSlots.filter { $0.shape == .scalar }.map(\.initialValue)
            let memory = UnsafeMutablePointer<Double>.allocate(capacity: max(initial.count, 1))
            memory.initialize(repeating: 0, count: max(initial.count, 1))
            memory.update(from: initial, count: initial.count)
            return memory
        }
    }

    deinit {
        elementwise.joined().forEach { $0.deallocate() }
        scalars.forEach { $0.deallocate() }
    }

    /// Every slot's values as `Double` (exact for float32), keyed as the chain reports them.
    func snapshot(chain: Chain) -> ParameterState {
        var slots: [String: [Double]] = [:]
        for (ruleIndex, rule) in chain.rules.enumerated() {
            var elementwiseIndex = 0, scalarIndex = 0
            for (slotIndex, slot) in rule.stateSlots.enumerated() {
                let key = chain.slotKeys[ruleIndex][slotIndex]
                switch slot.shape {
                case .elementwise:
                    slots[key] = doubles(elementwise[ruleIndex][elementwiseIndex])
                    elementwiseIndex += 1
                case .scalar:
                    slots[key] = [scalars[ruleIndex][scalarIndex]]
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
