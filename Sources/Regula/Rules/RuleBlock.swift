import RegulaABI

/// One contiguous block of one parameter, as a kernel written in Swift sees it.
///
/// Valid only during the kernel, reduce or prepare call that received it. Element buffers have the block's
/// ``dtype``; asking for another element type is a programming error and traps. In prepare the block covers
/// the whole parameter but no elements: its buffers are empty.
public struct RuleBlock {
    private let raw: UnsafePointer<regula_block>
    private let hyperparameterCount: Int
    private let slots: [StateSlot]
    private let reductionCount: Int
    private let scratchCount: Int

    init(_ raw: UnsafePointer<regula_block>, hyperparameterCount: Int, slots: [StateSlot], reductionCount: Int,
         scratchCount: Int) {
        self.raw = raw
        self.hyperparameterCount = hyperparameterCount
        self.slots = slots
        self.reductionCount = reductionCount
        self.scratchCount = scratchCount
    }

    /// The element type of every buffer in the block.
    public var dtype: DType { raw.pointee.dtype == DType.float64.abiBit ? .float64 : .float32 }
    /// Elements in the block (possibly 0).
    public var count: Int { raw.pointee.length }
    /// Index of the block's first element within its parameter.
    public var offset: Int { raw.pointee.offset }
    /// Elements in the whole parameter.
    public var parameterCount: Int { raw.pointee.parameter_length }
    /// Steps the parameter took before this one: 0 on its first.
    public var step: Int { Int(raw.pointee.step) }
    /// The parameter's shape, row-major (`[parameterCount]` for a flat parameter); its sizes multiply to
    /// ``parameterCount``.
    public var shape: UnsafeBufferPointer<Int> {
        UnsafeBufferPointer(start: raw.pointee.shape, count: Int(raw.pointee.rank))
    }

    /// The update `d` flowing through the chain, read and write.
    public func update<T: ParameterElement>(as type: T.Type) -> UnsafeMutableBufferPointer<T> {
        buffer(raw.pointee.update, as: type)
    }

    /// The parameter's values; write them only in a rule that applies the step.
    public func parameter<T: ParameterElement>(as type: T.Type) -> UnsafeMutableBufferPointer<T> {
        buffer(raw.pointee.param, as: type)
    }

    /// The raw gradient, read only.
    public func gradient<T: ParameterElement>(as type: T.Type) -> UnsafeBufferPointer<T> {
        UnsafeBufferPointer(buffer(UnsafeMutableRawPointer(mutating: raw.pointee.grad), as: type))
    }

    /// The value of the rule's hyperparameter at `index` (declaration order).
    public func hyperparameter(_ index: Int) -> Double {
        precondition(index >= 0 && index < hyperparameterCount, "hyperparameter index \(index) out of range")
        return raw.pointee.hyperparameters[index]
    }

    /// This block's part of the elementwise state slot at `index` among the rule's elementwise slots.
    public func slot<T: ParameterElement>(_ index: Int, as type: T.Type) -> UnsafeMutableBufferPointer<T> {
        let count = slots.filter { $0.shape == .elementwise }.count
        precondition(index >= 0 && index < count, "elementwise slot index \(index) out of range")
        return buffer(raw.pointee.elementwise_slots[index], as: type)
    }

    /// The parameter's scalar state slots, in declaration order among the rule's scalar slots.
    public var scalarSlots: UnsafeMutableBufferPointer<Double> {
        UnsafeMutableBufferPointer(start: raw.pointee.scalar_slots,
                                   count: slots.filter { $0.shape == .scalar }.count)
    }

    /// The rule's reductions over the whole parameter, combined, in declaration order (empty inside `reduce`).
    public var reductions: UnsafeBufferPointer<Double> {
        UnsafeBufferPointer(start: raw.pointee.reductions, count: raw.pointee.reductions == nil ? 0 : reductionCount)
    }

    /// What the rule's prepare function wrote for this parameter in this step, `scratchCount` values; empty
    /// for a rule without one, and inside prepare itself (which writes the scratch it is handed instead).
    public var scratch: UnsafeBufferPointer<Double> {
        UnsafeBufferPointer(start: raw.pointee.scratch, count: raw.pointee.scratch == nil ? 0 : scratchCount)
    }

    private func buffer<T: ParameterElement>(_ pointer: UnsafeMutableRawPointer?, as type: T.Type)
        -> UnsafeMutableBufferPointer<T> {
        precondition(T.dtype == dtype, "the block holds \(dtype), not \(T.dtype)")
        return UnsafeMutableBufferPointer(start: pointer?.assumingMemoryBound(to: T.self), count: count)
    }
}
