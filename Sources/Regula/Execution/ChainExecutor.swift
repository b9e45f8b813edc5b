import RegulaABI

/// Runs a chain of rules over a parameter block by block: every rule transforms a block while it is still
/// in cache, then the next block follows.
///
/// For each block the update `d` starts as a copy of the gradient in scratch memory (the user's gradient is
/// never written), then each rule's kernel is called with the block's part of the parameter and of the
/// rule's state slots.
final class ChainExecutor {
    /// Elements per block: 2048 float64 elements of `d`, `p`, `g` and one slot take 64 KiB.
    static let blockLength = 2048

    private let chain: Chain
    private let messages = MessageBuffer()
    private let update: UnsafeMutableRawPointer
    /// Per rule, room for the pointers to its elementwise slots' current block.
    private let slotPointers: [UnsafeMutablePointer<UnsafeMutableRawPointer?>]

    init(chain: Chain) {
        self.chain = chain
        update = .allocate(byteCount: Self.blockLength * MemoryLayout<Double>.stride, alignment: 64)
        slotPointers = chain.rules.map { rule in
            let pointers = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: max(rule.stateSlots.count, 1))
            pointers.initialize(repeating: nil, count: max(rule.stateSlots.count, 1))
            return pointers
        }
    }

    deinit {
        update.deallocate()
        slotPointers.forEach { $0.deallocate() }
    }

    /// Applies one step of the chain to `parameter`, which has a gradient, with `options` resolved for its group.
    func step(_ parameter: Parameter, state: SlotStorage, options: ResolvedOptions) throws(OptimizerError) {
        guard let gradient = parameter.gradientStorage else { return }
        let size = parameter.dtype.size
        try options.values.withUnsafeBufferPointer { (values) throws(OptimizerError) in
            var block = regula_block()
            block.struct_size = UInt32(MemoryLayout<regula_block>.size)
            block.dtype = parameter.dtype.abiBit
            block.parameter_length = parameter.count
            block.step = state.step
            block.update = update
            var start = 0
            repeat {
                let length = min(Self.blockLength, parameter.count - start)
                update.copyMemory(from: gradient + start * size, byteCount: length * size)
                block.length = length
                block.offset = start
                block.param = parameter.storage + start * size
                block.grad = gradient + start * size
                for (index, rule) in chain.rules.enumerated() {
                    let slots = slotPointers[index]
                    for (slot, base) in state.elementwise[index].enumerated() { slots[slot] = base + start * size }
                    block.hyperparameters = values.baseAddress.map { $0 + options.offsets[index] }
                    block.elementwise_slots = UnsafePointer(slots)
                    block.scalar_slots = state.scalars[index]
                    block.rule_data = rule.kernel.ruleData
                    messages.clear()
                    if let (status, words) = withUnsafePointer(to: block, { rule.kernel.run($0, messages: messages) }) {
                        throw .kernelFailed(rule: rule.name, parameter: parameter.name, status: status, message: words)
                    }
                }
                start += length
            } while start < parameter.count
        }
    }
}
