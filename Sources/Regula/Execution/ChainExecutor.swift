import RegulaABI

/// Runs a chain of rules over a parameter block by block: every rule transforms a block while it is still
/// in cache, then the next block follows.
///
/// For each block the update `d` starts as a copy of the gradient in scratch memory (the user's gradient is
/// never written), then each rule's kernel is called with the block's part of the parameter and of the
/// rule's state slots. A rule with reductions splits the chain into stages (see ``Chain/stages``): `d` then
/// lives in a scratch buffer as long as the parameter, each stage runs over every block, and the rule's
/// reductions are folded over all blocks, in block order, before its stage starts.
final class ChainExecutor {
    /// Elements per block: 2048 float64 elements of `d`, `p`, `g` and one slot take 64 KiB.
    static let blockLength = 2048

    private let chain: Chain
    private let messages = MessageBuffer()
    /// `d` for one block, or for a whole parameter when the chain has stages.
    private var update: UnsafeMutableRawPointer
    private var updateCapacity: Int
    /// Per rule, room for the pointers to its elementwise slots' current block.
    private let slotPointers: [UnsafeMutablePointer<UnsafeMutableRawPointer?>]
    /// Per rule, its combined reductions for the parameter being stepped.
    private let reductionValues: [UnsafeMutablePointer<Double>]

    init(chain: Chain) {
        self.chain = chain
        updateCapacity = Self.blockLength * MemoryLayout<Double>.stride
        update = .allocate(byteCount: updateCapacity, alignment: 64)
        slotPointers = chain.rules.map { rule in
            let pointers = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: max(rule.stateSlots.count, 1))
            pointers.initialize(repeating: nil, count: max(rule.stateSlots.count, 1))
            return pointers
        }
        reductionValues = chain.rules.map { rule in
            let values = UnsafeMutablePointer<Double>.allocate(capacity: max(rule.reductions.count, 1))
            values.initialize(repeating: 0, count: max(rule.reductions.count, 1))
            return values
        }
    }

    deinit {
        update.deallocate()
        slotPointers.forEach { $0.deallocate() }
        reductionValues.forEach { $0.deallocate() }
    }

    /// Applies one step of the chain to `parameter`, which has a gradient, with `options` resolved for its group.
    func step(_ parameter: Parameter, state: SlotStorage, options: ResolvedOptions) throws(OptimizerError) {
        guard let gradient = parameter.gradientStorage else { return }
        let size = parameter.dtype.size
        let staged = chain.stages.count > 1 || chain.rules[0].reductions.count > 0
        if staged { reserveUpdate(bytes: parameter.count * size) }
        try options.values.withUnsafeBufferPointer { (values) throws(OptimizerError) in
            var block = regula_block()
            block.struct_size = UInt32(MemoryLayout<regula_block>.size)
            block.dtype = parameter.dtype.abiBit
            block.parameter_length = parameter.count
            block.step = state.step
            let blocks = stride(from: 0, to: max(parameter.count, 1), by: Self.blockLength)
            /// Points `block` at elements `start...` of everything, for rule `index`.
            func position(_ start: Int, rule index: Int) {
                block.length = min(Self.blockLength, parameter.count - start)
                block.offset = start
                block.update = update + (staged ? start * size : 0)
                block.param = parameter.storage + start * size
                block.grad = gradient + start * size
                let slots = slotPointers[index]
                for (slot, base) in state.elementwise[index].enumerated() { slots[slot] = base + start * size }
                block.hyperparameters = values.baseAddress.map { $0 + options.offsets[index] }
                block.elementwise_slots = UnsafePointer(slots)
                block.scalar_slots = state.scalars[index]
                block.rule_data = chain.rules[index].kernel.ruleData
                block.reductions = chain.rules[index].reductions.isEmpty ? nil : UnsafePointer(reductionValues[index])
            }
            if staged {
                update.copyMemory(from: gradient, byteCount: parameter.count * size)
            }
            for stage in chain.stages {
                if let first = stage.first, !chain.rules[first].reductions.isEmpty {
                    // Fold every block into fresh partials, combined in block order.
                    let rule = chain.rules[first], combined = reductionValues[first]
                    let partials = UnsafeMutablePointer<Double>.allocate(capacity: rule.reductions.count)
                    defer { partials.deallocate() }
                    for (slot, reduction) in rule.reductions.enumerated() { combined[slot] = reduction.combine.identity }
                    for start in blocks {
                        position(start, rule: first)
                        block.reductions = nil
                        for (slot, reduction) in rule.reductions.enumerated() { partials[slot] = reduction.combine.identity }
                        messages.clear()
                        if let (status, words) = withUnsafePointer(to: block, { rule.kernel.reduce($0, into: partials, messages: messages) }) {
                            throw .kernelFailed(rule: rule.name, parameter: parameter.name, status: status, message: words)
                        }
                        for (slot, reduction) in rule.reductions.enumerated() {
                            combined[slot] = reduction.combine(combined[slot], partials[slot])
                        }
                    }
                }
                for start in blocks {
                    if !staged {
                        update.copyMemory(from: gradient + start * size, byteCount: min(Self.blockLength, parameter.count - start) * size)
                    }
                    for index in stage {
                        position(start, rule: index)
                        messages.clear()
                        let rule = chain.rules[index]
                        if let (status, words) = withUnsafePointer(to: block, { rule.kernel.run($0, messages: messages) }) {
                            throw .kernelFailed(rule: rule.name, parameter: parameter.name, status: status, message: words)
                        }
                    }
                }
            }
        }
    }

    private func reserveUpdate(bytes: Int) {
        guard bytes > updateCapacity else { return }
        update.deallocate()
        updateCapacity = bytes
        update = .allocate(byteCount: bytes, alignment: 64)
    }
}
