import CRegulaShims
import Dispatch
import Synchronization

/// Runs a chain of rules over the parameters of a step, block by block, on several threads.
///
/// A step goes in up to four phases:
/// 1. **Prepare**: each rule with a prepare function runs it once per parameter, on the calling thread, in
///    parameter order; it may advance the parameter's scalar slots and fill the scratch its blocks read.
/// 2. **Leading reductions**: if the chain's first rule has reductions, they are folded from the gradients
///    themselves (one extra read of them), per parameter or over the whole step.
/// 3. **One pass, all rules per block** (chains without a reduction past the first rule): each block (4 KiB
///    of each array) is carried through every rule of the chain while it is in cache: `d` starts as a copy
///    of the gradient in the thread's scratch (the user's gradient is never written) and each rule's kernel
///    transforms it, the last one writing the parameter. The blocks of all parameters are shared out among
///    threads by element count, so many small tensors cost little more than one large one.
/// 4. **Stages** (chains with a reduction past the first rule or a whole-tensor rule,
///    ``CompiledChain/isStaged``): `d` lives in a buffer as long as the parameter (as all parameters, when a
///    later reduction spans the step or a rule sees whole tensors), each stage runs over every block, and a
///    reduction's per-block partials are combined in block order. A whole-tensor rule is a stage of its own,
///    run once per parameter with the parameters shared out among the threads; the block rules on either
///    side of it still run fused, one pass each.
///
/// Each element goes through the same arithmetic whatever the thread count, and partials are combined in a
/// fixed order (parameter, then block), so results are bit-for-bit the same for any thread count.
final class ChainExecutor {
    /// Bytes of each array per block: 4 KiB, 1024 float32 or 512 float64 elements. The update, the
    /// parameter, the gradient and a slot or two then stay in the L1 cache while every rule of the chain
    /// passes over them (measured against 2048 float32 elements: about 20 % faster on a large tensor).
    static let blockBytes = 4096

    /// Elements per block for elements of `size` bytes.
    @inline(__always)
    static func blockLength(elementSize size: Int) -> Int { blockBytes / size }
    /// Below this many elements a pass runs on the calling thread: waking others costs more.
    static let parallelThreshold = 1 << 15

    private let chain: CompiledChain
    private var lanes: [ExecutorLane] = []
    /// Threads a step may use (at least 1).
    var threads: Int {
        didSet { threads = max(1, threads) }
    }
    /// Where reductions are combined with other processes' (a distributed optimizer); nil in one process.
    var exchange: (any ReductionExchange)?
    /// The `d` of the parameters a staged pass holds at once.
    private let stagedUpdate = ScratchMemory()
    /// Where the values from before the step are kept until it succeeds.
    private let journalMemory = ScratchMemory()
    /// Per item: the scratch prepare functions fill, and the combined reductions.
    private let itemScratch = ScratchMemory()
    private let itemReductions = ScratchMemory()
    /// Per block: reduction partials, before they are combined.
    private let blockPartials = ScratchMemory()
    /// Per item bookkeeping of a pass, kept between steps so that a step of many tensors allocates nothing.
    private let itemEnds = ReusedArray<Int>(), itemIndices = ReusedArray<Int>(), itemValues = ReusedArray<Double>()

    init(chain: CompiledChain, threads: Int) {
        self.chain = chain
        self.threads = max(1, threads)
    }

    /// Steps every item. Items with a journal are stepped all or nothing: every block is saved to its item's
    /// journal before the chain touches it, and if any block fails, or `keep` says no, every saved block is
    /// put back before this returns (scalar slots are the caller's to put back).
    /// - Parameters:
    ///   - checksFinite: Also fail on a gradient, parameter or state value that is not finite.
    ///   - keep: Called once with the first failure (nil when every block succeeded); the step is kept only
    ///     when there was no failure and it returns true.
    /// - Returns: The failure that comes first in item, block and rule order, if any.
    @discardableResult
    func step(_ items: inout [WorkItem], checksFinite: Bool, keep: (BlockFailure?) -> Bool = { $0 == nil }) -> BlockFailure? {
        guard !items.isEmpty else {
            _ = keep(nil)
            return nil
        }
        attachScratch(&items, checksFinite: checksFinite)
        let list = items
        regula_guard_step_begin()
        defer { regula_guard_step_end() }
        let failure = prepare(list)
            ?? (chain.hasLeadingReductions ? fold(list, rule: 0, updates: nil) : nil)
            ?? (chain.isStaged ? stepStaged(list, checksFinite: checksFinite) : stepFused(list))
        let kept = keep(failure) && failure == nil
        for lane in lanes { if kept { lane.commit() } else { lane.undo() } }
        return failure
    }

    /// Folds the chain's leading reductions over `items` from their gradients into each item's reductions, as
    /// a step does before any rule runs, and runs nothing else: how an optimizer whose groups run several
    /// chains folds a step-wide reduction over all of their parameters (``SpanningReduction``).
    /// - Returns: The failure that comes first in item and block order, if any.
    func foldLeadingReductions(_ items: inout [WorkItem]) -> BlockFailure? {
        guard !items.isEmpty, chain.hasLeadingReductions else { return nil }
        attachScratch(&items, checksFinite: false)
        regula_guard_step_begin()
        defer { regula_guard_step_end() }
        return fold(items, rule: 0, updates: nil)
    }

    /// Gives the executor a lane per thread, and each of `items` its part of the step's scratch and reductions.
    private func attachScratch(_ items: inout [WorkItem], checksFinite: Bool) {
        while lanes.count < threads { lanes.append(ExecutorLane(chain: chain)) }
        for lane in lanes { lane.checksFinite = checksFinite }
        let scratch = itemScratch.doubles(items.count * chain.totalScratch)
        let reductions = itemReductions.doubles(items.count * chain.totalReductions)
        for position in items.indices {
            items[position].scratch = scratch + position * chain.totalScratch
            items[position].reductions = reductions + position * chain.totalReductions
        }
    }

    /// Memory for the journals of a step needing `bytes` in all, kept between steps.
    func journal(bytes: Int) -> UnsafeMutableRawPointer { journalMemory.bytes(bytes) }

    // MARK: - Phases

    /// Every prepare function, once per item. Items are shared out among the lanes in contiguous runs when
    /// there are many (each writes only its own item's scalar slots and scratch), so the per-parameter cost of
    /// a step of many small tensors is spread over the threads too.
    private func prepare(_ items: [WorkItem]) -> BlockFailure? {
        guard !chain.preparing.isEmpty else { return nil }
        let preparing = chain.preparing, lanes = self.lanes
        let laneCount = items.count < Self.parallelPrepareThreshold ? 1 : min(threads, items.count)
        let failures = FailureSlots(count: laneCount)
        let run: @Sendable (Int) -> Void = { k in
            for position in (k * items.count / laneCount)..<((k + 1) * items.count / laneCount) {
                for rule in preparing {
                    if let failure = lanes[k].prepareParameter(items[position], rule: rule) {
                        failures.set(k, failure)
                        return
                    }
                }
            }
        }
        if laneCount == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: laneCount, execute: run) }
        return failures.first
    }

    /// Below this many parameters, prepare functions run on the calling thread.
    static let parallelPrepareThreshold = 512

    private func stepFused(_ items: [WorkItem]) -> BlockFailure? {
        let allRules = chain.links.indices
        return forEachBlock(of: items) { lane, position, block in
            lane.run(items[position], block: block, rules: allRules, stagedUpdate: nil)
        }
    }

    /// Chains with a reduction past the first rule: `d` of a batch of items (one item, or every item when a
    /// later reduction spans the step) is kept whole while each stage runs over all of the batch's blocks.
    private func stepStaged(_ items: [WorkItem], checksFinite: Bool) -> BlockFailure? {
        let batches: [[WorkItem]] = chain.stagesSpanStep ? [items] : items.map { [$0] }
        for batch in batches {
            var offsets: [Int] = []
            var total = 0
            for item in batch {
                offsets.append(total)
                total += (item.count * item.elementSize + 63) / 64 * 64
            }
            let base = stagedUpdate.bytes(total)
            let updates = offsets.map { Unchecked(base + $0) }
            for (item, update) in zip(batch, updates) {
                update.value.copyMemory(from: item.gradient, byteCount: item.count * item.elementSize)
                for block in 0..<item.blockCount { lanes[0].save(item, block: block) }
                if checksFinite, regula_all_finite(update.value, item.count, item.dtype) == 0 {
                    return BlockFailure(item: item.index, block: 0, rule: 0, status: 0,
                                        words: "the gradient has a NaN or an infinity", kind: .nonFiniteGradient)
                }
            }
            for (stage, isWhole) in zip(chain.stages, chain.stageIsWhole) {
                let first = stage.lowerBound
                if isWhole {
                    if let failure = forEachItem(of: batch, { lane, position in
                        lane.runWhole(batch[position], rule: first, stagedUpdate: updates[position].value)
                    }) {
                        return failure
                    }
                    continue
                }
                if first > 0, chain.links[first].reductionCount > 0,
                   let failure = fold(batch, rule: first, updates: updates.map(\.value)) {
                    return failure
                }
                if let failure = forEachBlock(of: batch, { lane, position, block in
                    lane.run(batch[position], block: block, rules: stage, stagedUpdate: updates[position].value)
                }) {
                    return failure
                }
            }
            if checksFinite {
                for item in batch {
                    for block in 0..<item.blockCount {
                        if let failure = lanes[0].nonFiniteResult(item, block: block) { return failure }
                    }
                }
            }
        }
        return nil
    }

    /// Rule `index`'s reductions over `items`: partials per block (on any thread), then combined in item and
    /// block order, per item for a parameter reduction and over all of `items` for a step reduction, into each
    /// item's reductions. `updates` holds each item's whole `d`; nil reads the gradients (nothing ran yet).
    private func fold(_ items: [WorkItem], rule index: Int, updates: [UnsafeMutableRawPointer]?) -> BlockFailure? {
        let link = chain.links[index], declared = chain.rules[index].reductions, width = link.reductionCount
        var firstBlock = itemIndices.take(), values = itemValues.take()
        defer {
            itemIndices.give(firstBlock)
            itemValues.give(values)
        }
        var blocks = 0
        for item in items {
            firstBlock.append(blocks)
            blocks += item.blockCount
        }
        let table = Unchecked(blockPartials.doubles(blocks * width))
        let (starts, sources) = (firstBlock, updates.map { $0.map(Unchecked.init) })
        if let failure = forEachBlock(of: items, { lane, position, block in
            let item = items[position]
            let update = sources?[position].value ?? UnsafeMutableRawPointer(mutating: item.gradient)
            if let failure = lane.reduce(item, block: block, rule: index, update: update) { return failure }
            let row = table.value + (starts[position] + block) * width
            for slot in 0..<width { row[slot] = lane.partials[slot] }
            return nil
        }) {
            return failure
        }
        // Per item, in block order; then across processes, in rank order; then over the step, in item order.
        values.append(contentsOf: repeatElement(0, count: items.count * width))
        for (slot, reduction) in declared.enumerated() {
            for (position, item) in items.enumerated() {
                var value = reduction.combine.identity
                for block in 0..<item.blockCount {
                    value = reduction.combine(value, table.value[(firstBlock[position] + block) * width + slot])
                }
                values[position * width + slot] = value
            }
        }
        if let exchange {
            values.withUnsafeMutableBufferPointer { exchange.combineAcrossProcesses($0, combines: declared.map(\.combine)) }
        }
        for (slot, reduction) in declared.enumerated() {
            var stepValue = reduction.combine.identity
            for position in items.indices { stepValue = reduction.combine(stepValue, values[position * width + slot]) }
            for (position, item) in items.enumerated() {
                item.reductions![link.reductionOffset + slot] = reduction.scope == .step ? stepValue : values[position * width + slot]
            }
        }
        return nil
    }

    // MARK: - Sharing blocks among threads

    /// Runs `body` on every block of every item exactly once. The blocks are cut by element count into pieces
    /// of about ``pieceElements``: piece p holds the blocks whose first element, counted across all items, is in
    /// [p·N/P, (p+1)·N/P) (the last piece also takes an empty item at the very end, so an empty parameter is
    /// never left out). Each lane takes the next piece not yet taken until none is left, so a thread that
    /// starts late (waking a sleeping worker took up to 13 ms on a busy machine, measured) or is preempted
    /// takes fewer pieces instead of holding up the step. The body gets the item's position in `items` and the
    /// block's index.
    /// - Returns: The failure that comes first in item, block and rule order, if any: pieces are taken in
    ///   order, and a lane stops at its first failure, so every block before it has been run.
    private func forEachBlock(of items: [WorkItem],
                              _ body: @escaping @Sendable (ExecutorLane, Int, Int) -> BlockFailure?) -> BlockFailure? {
        var ends = itemEnds.take()
        defer { itemEnds.give(ends) }
        var total = 0
        for item in items {
            total += item.count
            ends.append(total)
        }
        let laneCount = total < Self.parallelThreshold ? 1 : threads
        let pieceCount = laneCount == 1 ? 1 : max(laneCount, (total + Self.pieceElements - 1) / Self.pieceElements)
        let failures = FailureSlots(count: laneCount), pieces = PieceCounter()
        let (lanes, itemList, endList, elements) = (self.lanes, items, ends, total)
        let run: @Sendable (Int) -> Void = { k in
            while let piece = pieces.take(below: pieceCount) {
                let low = (piece * elements + pieceCount - 1) / pieceCount
                let high = piece == pieceCount - 1 ? elements + 1 : ((piece + 1) * elements + pieceCount - 1) / pieceCount
                // The items with a block starting in [low, high): from the first that ends at or after low to the
                // last that begins before high.
                let first = firstIndex(in: endList, above: low - 1)
                let last = min(firstIndex(in: endList, above: high - 1) + 1, itemList.count)
                for position in first..<max(first, last) {
                    let item = itemList[position]
                    let begin = endList[position] - item.count, blockLength = item.blockLength
                    guard begin < high else { continue }
                    let lowest = max(0, (low - begin + blockLength - 1) / blockLength)
                    let end = min(item.blockCount, (high - begin + blockLength - 1) / blockLength)
                    for block in lowest..<max(lowest, end) {
                        if let failure = body(lanes[k], position, block) {
                            failures.set(k, failure)
                            return
                        }
                    }
                }
            }
        }
        if laneCount == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: laneCount, execute: run) }
        return failures.first
    }

    /// Runs `body` once on every item, for a whole-tensor rule: the items are handed out one at a time, in
    /// order, to whichever lane asks first, so a large matrix on one thread does not hold back the others.
    /// While several lanes run, each BLAS call gets one thread (the lanes are the parallelism); a lone
    /// parameter gets all of them. The body gets the item's position in `items`.
    /// - Returns: The failure that comes first in item order, if any.
    private func forEachItem(of items: [WorkItem], _ body: @escaping @Sendable (ExecutorLane, Int) -> BlockFailure?) -> BlockFailure? {
        let total = items.reduce(0) { $0 + $1.count }
        let laneCount = total < Self.parallelThreshold ? 1 : min(threads, items.count)
        HostServices.preferBLASThreads(laneCount > 1 ? 1 : threads)
        let failures = FailureSlots(count: laneCount), next = PieceCounter(), lanes = self.lanes
        let run: @Sendable (Int) -> Void = { k in
            while let position = next.take(below: items.count) {
                if let failure = body(lanes[k], position) {
                    failures.set(k, failure)
                    return
                }
            }
        }
        if laneCount == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: laneCount, execute: run) }
        return failures.first
    }

    /// Elements per piece of a pass shared among threads: 64 float32 blocks, as the C loop's chunks
    /// (Benchmarks/), few enough that taking one costs nothing beside its work.
    static let pieceElements = 1 << 16
}

/// The index of the first entry of the ascending `ends` greater than `value`.
private func firstIndex(in ends: [Int], above value: Int) -> Int {
    var low = 0, high = ends.count
    while low < high {
        let middle = (low + high) / 2
        if ends[middle] > value { high = middle } else { low = middle + 1 }
    }
    return low
}

/// One failure slot per lane, each written only by its own lane (raw memory: no shared array buffer).
private final class FailureSlots: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<BlockFailure?>
    private let count: Int
    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil, count: count)
    }
    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }
    func set(_ lane: Int, _ failure: BlockFailure) { slots[lane] = failure }
    /// The earliest failure in item, block and rule order.
    var first: BlockFailure? { (0..<count).compactMap { slots[$0] }.min() }
}

/// The pieces of a pass, handed out in order to whichever lane asks first.
private final class PieceCounter: Sendable {
    private let next = Atomic<Int>(0)

    /// The next piece not yet taken, if it is below `count`.
    func take(below count: Int) -> Int? {
        let piece = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return piece < count ? piece : nil
    }
}

/// A pointer handed to threads that read it, or write disjoint parts of it.
private struct Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
