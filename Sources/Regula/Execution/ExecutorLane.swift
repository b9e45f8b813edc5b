import CRegulaShims
import Glibc
import RegulaABI

/// What one thread of the executor owns: scratch for the update `d`, a message buffer, and the block it
/// hands to kernels.
final class ExecutorLane: @unchecked Sendable {
    private let chain: CompiledChain
    private let messages = MessageBuffer()
    /// The chain's links and the message buffer as plain addresses, read on every block without reference
    /// counting.
    private let links: UnsafeMutablePointer<CompiledChain.Link>
    private let message: UnsafeMutablePointer<regula_message>
    /// `d` for one block (single-stage chains).
    private let update: UnsafeMutableRawPointer
    /// The allocation `update` lies in.
    private let updateMemory: UnsafeMutableRawPointer
    /// Room for one rule's elementwise slot pointers for the current block.
    private let slotPointers: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// Partials of a reduction for the current block.
    let partials: UnsafeMutablePointer<Double>
    /// Each reduction's combine identity, laid out as ``partials`` are (per link, from its reduction offset).
    private let identities: UnsafeMutablePointer<Double>
    /// The blocks this lane saved to the journal during the current step, to undo them if the step fails.
    private(set) var journaled: [(item: WorkItem, block: Int)] = []
    /// Whether to refuse gradients and results that are not finite.
    var checksFinite = false
    /// Where this lane records the rule whose code it runs, for the step guard (``StepGuard``), and each
    /// link's rule name as a C string that outlives the lane's use of the slot.
    private let running: UnsafeMutablePointer<UnsafePointer<CChar>?>
    private let ruleNames: [UnsafeMutablePointer<CChar>]

    init(chain: CompiledChain) {
        self.chain = chain
        links = .allocate(capacity: max(chain.links.count, 1))
        links.initialize(from: chain.links, count: chain.links.count)
        message = messages.message
        // Large arrays start at the same offset within a 4 KiB page; a scratch at another offset keeps the
        // kernels' loads from `d` clear of false store-forwarding stalls against the parameter's stores
        // (4K aliasing). Measured: about 8 % on one large tensor (Docs/BENCHMARKS.md).
        updateMemory = .allocate(byteCount: ChainExecutor.blockBytes + 4096, alignment: 4096)
        update = updateMemory + 1088
        let most = max(chain.links.map(\.slotCount).max() ?? 0, 1)
        slotPointers = .allocate(capacity: most)
        slotPointers.initialize(repeating: nil, count: most)
        partials = .allocate(capacity: max(chain.totalReductions, 1))
        partials.initialize(repeating: 0, count: max(chain.totalReductions, 1))
        identities = .allocate(capacity: max(chain.totalReductions, 1))
        identities.initialize(repeating: 0, count: max(chain.totalReductions, 1))
        running = regula_guard_claim_slot()
        ruleNames = chain.rules.map { strdup($0.name)! }
        for (link, rule) in zip(chain.links, chain.rules) {
            for (slot, reduction) in rule.reductions.enumerated() { identities[link.reductionOffset + slot] = reduction.combine.identity }
        }
    }

    deinit {
        regula_guard_release_slot(running)
        for name in ruleNames { free(name) }
        links.deinitialize(count: chain.links.count)
        links.deallocate()
        updateMemory.deallocate()
        slotPointers.deallocate()
        partials.deallocate()
        identities.deallocate()
    }

    /// Runs rules `rules` over block `blockIndex` of `item`. `stagedUpdate` is the whole parameter's `d` when
    /// the chain has stages (it then already holds the update); otherwise `d` starts as the gradient here.
    @inline(__always)
    func run(_ item: WorkItem, block blockIndex: Int, rules: Range<Int>, stagedUpdate: UnsafeMutableRawPointer?) -> BlockFailure? {
        let place = extent(item, block: blockIndex)
        let (length, offset) = (place.length, place.offset)
        let d: UnsafeMutableRawPointer
        if let stagedUpdate {
            d = stagedUpdate + offset
        } else {
            d = update
            if item.count > item.blockLength {
                // A long tensor streams: the hardware prefetchers already run ahead of every array.
                regula_copy_block(d, item.gradient + offset, length * item.elementSize)
            } else {
                // A small tensor is a jump to new memory: fetch all of its arrays at once.
                regula_begin_block(d, item.gradient + offset, length * item.elementSize, item.param + offset,
                                   UnsafePointer(item.slots), chain.totalSlots, offset)
            }
        }
        if stagedUpdate == nil {
            save(item, block: blockIndex)
            if checksFinite, regula_all_finite(d, length, item.dtype) == 0 {
                return BlockFailure(item: item.index, block: blockIndex, rule: 0, status: 0,
                                    words: "the gradient has a NaN or an infinity", kind: .nonFiniteGradient)
            }
        }
        var block = self.block(item, at: place, update: d)
        for index in rules {
            let link = links[index]
            prepare(&block, item, link, offset: offset)
            regula_guard_running(running, ruleNames[index])
            let status = withUnsafePointer(to: block) { link.kernel($0, message) }
            regula_guard_running(running, nil)
            if status != RegulaABISymbols.ok {
                return BlockFailure(item: item.index, block: blockIndex, rule: index, status: status,
                                    words: messages.text(or: "the kernel failed with status \(status) and no message"))
            }
        }
        if checksFinite && stagedUpdate == nil, let failure = nonFiniteResult(item, block: blockIndex) { return failure }
        return nil
    }

    /// Runs whole-tensor rule `index` once over all of `item`: one block covering the parameter, its `d` the
    /// staged buffer. The journal already holds every block (the staged pass saves them first).
    func runWhole(_ item: WorkItem, rule index: Int, stagedUpdate: UnsafeMutableRawPointer) -> BlockFailure? {
        let link = links[index]
        guard item.count == item.wholeCount else {
            return BlockFailure(item: item.index, block: 0, rule: index, status: regula_status(REGULA_ERROR_INVALID_ARGUMENT),
                                words: "this rule sees whole tensors, but the parameter is split across processes (a sharded "
                                    + "step); step it replicated instead")
        }
        let place = Extent(start: 0, length: item.count, offset: 0, bytes: item.count * item.elementSize,
                           stride: item.count * item.elementSize)
        var block = self.block(item, at: place, update: stagedUpdate)
        prepare(&block, item, link, offset: 0)
        regula_guard_running(running, ruleNames[index])
        let status = withUnsafePointer(to: block) { link.kernel($0, message) }
        regula_guard_running(running, nil)
        guard status != RegulaABISymbols.ok else { return nil }
        return BlockFailure(item: item.index, block: 0, rule: index, status: status,
                            words: messages.text(or: "the kernel failed with status \(status) and no message"))
    }

    /// Copies block `blockIndex` of the parameter and of every existing slot into the item's journal, if it
    /// has one.
    @inline(__always)
    func save(_ item: WorkItem, block blockIndex: Int) {
        guard let journal = item.journal else { return }
        let (offset, bytes, stride) = extent(item, block: blockIndex).saved
        regula_copy_streaming(journal + offset, item.param + offset, bytes)
        for slot in 0..<chain.totalSlots {
            guard let memory = item.slots[slot] else { continue }
            if let (from, length) = factoredPart(item, slot: slot, block: blockIndex) {
                regula_copy_streaming(journal + stride * (1 + slot) + from, memory + from, length)
            } else {
                regula_copy_streaming(journal + stride * (1 + slot) + offset, memory + offset, bytes)
            }
        }
        journaled.append((item, blockIndex))
    }

    /// Puts back every block this lane saved during the step.
    func undo() {
        for (item, blockIndex) in journaled {
            guard let journal = item.journal else { continue }
            let (offset, bytes, stride) = extent(item, block: blockIndex).saved
            (item.param + offset).copyMemory(from: journal + offset, byteCount: bytes)
            for slot in 0..<chain.totalSlots {
                guard let memory = item.slots[slot] else { continue }
                let (from, length) = factoredPart(item, slot: slot, block: blockIndex) ?? (offset, bytes)
                (memory + from).copyMemory(from: journal + stride * (1 + slot) + from, byteCount: length)
            }
        }
        journaled.removeAll(keepingCapacity: true)
    }

    /// Forgets the saved blocks: the step succeeded.
    func commit() { journaled.removeAll(keepingCapacity: true) }

    /// A failure if block `blockIndex` of the parameter or a slot now holds a NaN or an infinity.
    func nonFiniteResult(_ item: WorkItem, block blockIndex: Int) -> BlockFailure? {
        let place = extent(item, block: blockIndex)
        var finite = regula_all_finite(item.param + place.offset, place.length, item.dtype) != 0
        for slot in 0..<chain.totalSlots where finite {
            guard let memory = item.slots[slot] else { continue }
            if let (from, length) = factoredPart(item, slot: slot, block: blockIndex) {
                finite = regula_all_finite(memory + from, length / item.elementSize, item.dtype) != 0
            } else {
                finite = regula_all_finite(memory + place.offset, place.length, item.dtype) != 0
            }
        }
        return finite ? nil : BlockFailure(item: item.index, block: blockIndex, rule: chain.links.count - 1, status: 0,
                                           words: "the step would leave a NaN or an infinity in the parameter or its state",
                                           kind: .nonFiniteResult)
    }

    /// For a slot shorter than the parameter (rows or columns), the part that goes with block `blockIndex`:
    /// all of it (byte offset 0 and its bytes) with the first block, nothing with the others; nil for a slot
    /// as long as the parameter, whose part is the block's own.
    @inline(__always)
    private func factoredPart(_ item: WorkItem, slot: Int, block blockIndex: Int) -> (offset: Int, bytes: Int)? {
        guard chain.hasFactoredSlots, item.slotLengths[slot] != item.count else { return nil }
        return (0, blockIndex == 0 ? item.slotLengths[slot] * item.elementSize : 0)
    }

    /// Where block `blockIndex` of an item lies: its first element, its length, and its byte offset.
    private struct Extent {
        let start: Int
        let length: Int
        let offset: Int
        /// The block's bytes in one array, and the bytes of one whole array of the item (the journal's stride).
        let bytes: Int
        let stride: Int
        /// What the journal needs: byte offset, bytes, array stride.
        var saved: (offset: Int, bytes: Int, stride: Int) { (offset, bytes, stride) }
    }

    @inline(__always)
    private func extent(_ item: WorkItem, block blockIndex: Int) -> Extent {
        let start = blockIndex * item.blockLength
        let length = max(min(item.blockLength, item.count - start), 0)
        return Extent(start: start, length: length, offset: start * item.elementSize, bytes: length * item.elementSize,
                      stride: item.count * item.elementSize)
    }

    /// The block a kernel or reduce is handed for `place` of `item`, its rule-specific fields still empty.
    @inline(__always)
    private func block(_ item: WorkItem, at place: Extent, update: UnsafeMutableRawPointer) -> regula_block {
        regula_block(
            struct_size: UInt32(MemoryLayout<regula_block>.size), dtype: item.dtype, length: place.length,
            offset: item.shareOffset + place.start, parameter_length: item.wholeCount, step: item.step, update: update,
            param: item.param + place.offset, grad: item.gradient + place.offset, hyperparameters: nil,
            elementwise_slots: nil, scalar_slots: nil, rule_data: nil, reductions: nil, scratch: nil,
            rank: UInt32(item.rank), shape: item.shape, services: HostServices.table)
    }

    /// Folds block `blockIndex` of `item` into ``partials`` for rule `index` (partials set to identity first).
    /// `update` is where the item's whole `d` lies: the staged buffer, or the gradient itself before any rule ran.
    func reduce(_ item: WorkItem, block blockIndex: Int, rule index: Int, update: UnsafeMutableRawPointer) -> BlockFailure? {
        let link = links[index]
        guard let reduce = link.reduce else { return nil }
        // A plain loop: one or two values, where a call to memmove would cost more than the copy.
        for slot in 0..<link.reductionCount { partials[slot] = identities[link.reductionOffset + slot] }
        let place = extent(item, block: blockIndex)
        if item.count <= item.blockLength {
            // A small tensor is a jump to new memory: ask for its lines at once, as a fused block does.
            regula_prefetch_block(update + place.offset, item.param + place.offset, place.bytes)
        }
        var block = self.block(item, at: place, update: update + place.offset)
        prepare(&block, item, link, offset: place.offset)
        block.reductions = nil
        regula_guard_running(running, ruleNames[index])
        let status = withUnsafePointer(to: block) { reduce($0, partials, message) }
        regula_guard_running(running, nil)
        guard status != RegulaABISymbols.ok else { return nil }
        return BlockFailure(item: item.index, block: blockIndex, rule: index, status: status,
                            words: "reduce: " + messages.text(or: "failed with status \(status) and no message"))
    }

    /// Runs rule `index`'s prepare function once for `item`: a block covering no elements, the parameter's
    /// scalar slots writable, and the item's scratch for the rule zeroed and then filled.
    func prepareParameter(_ item: WorkItem, rule index: Int) -> BlockFailure? {
        let link = links[index]
        guard let prepare = link.prepare else { return nil }
        var block = regula_block(
            struct_size: UInt32(MemoryLayout<regula_block>.size), dtype: item.dtype, length: 0, offset: 0,
            parameter_length: item.wholeCount, step: item.step, update: nil, param: nil, grad: nil,
            hyperparameters: UnsafePointer(item.hyperparameters + link.hyperparameterOffset), elementwise_slots: nil,
            scalar_slots: item.scalars + link.scalarOffset, rule_data: link.ruleData, reductions: nil, scratch: nil,
            rank: UInt32(item.rank), shape: item.shape, services: HostServices.table)
        let scratch = item.scratch! + link.scratchOffset
        scratch.update(repeating: 0, count: link.scratchCount)
        message.pointee.text[0] = 0
        regula_guard_running(running, ruleNames[index])
        let status = withUnsafeMutablePointer(to: &block) { prepare($0, scratch, message) }
        regula_guard_running(running, nil)
        guard status != RegulaABISymbols.ok else { return nil }
        return BlockFailure(item: item.index, block: 0, rule: index, status: status,
                            words: "prepare: " + messages.text(or: "failed with status \(status) and no message"))
    }

    @inline(__always)
    private func prepare(_ block: inout regula_block, _ item: WorkItem, _ link: CompiledChain.Link, offset: Int) {
        for slot in 0..<link.slotCount { slotPointers[slot] = item.slots[link.slotOffset + slot].map { $0 + offset } }
        block.hyperparameters = UnsafePointer(item.hyperparameters + link.hyperparameterOffset)
        block.elementwise_slots = UnsafePointer(slotPointers)
        block.scalar_slots = item.scalars + link.scalarOffset
        block.rule_data = link.ruleData
        block.reductions = link.reductionCount > 0 ? item.reductions.map { UnsafePointer($0 + link.reductionOffset) } : nil
        block.scratch = link.scratchCount > 0 ? item.scratch.map { UnsafePointer($0 + link.scratchOffset) } : nil
        message.pointee.text[0] = 0
    }
}
