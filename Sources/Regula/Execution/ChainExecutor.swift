import CRegulaShims
import Dispatch

/// Runs a chain of rules over the parameters of a step, block by block, on several threads.
///
/// Each block (4 KiB of each array) is carried through every rule of the chain while it is in cache: `d` starts
/// as a copy of the gradient in the thread's scratch (the user's gradient is never written) and each rule's
/// kernel transforms it, the last one writing the parameter. The blocks of all parameters are shared out
/// among threads by element count, so many small tensors cost little more than one large one. Each element
/// goes through the same arithmetic whatever the thread count, so results are bit-for-bit the same.
///
/// A chain with reductions (``CompiledChain/isStaged``) runs parameter by parameter: `d` lives in a buffer as
/// long as the parameter, each stage runs over every block, and a reduction's per-block partials are combined
/// in block order, so those results do not depend on the thread count either.
final class ChainExecutor {
    /// Bytes of each array per block: 4 KiB, 1024 float32 or 512 float64 elements. The update, the
    /// parameter, the gradient and a slot or two then stay in the L1 cache while every rule of the chain
    /// passes over them (measured against 2048 float32 elements: about 20 % faster on a large tensor).
    static let blockBytes = 4096

    /// Elements per block for elements of `size` bytes.
    @inline(__always)
    static func blockLength(elementSize size: Int) -> Int { blockBytes / size }
    /// Below this many elements a step runs on the calling thread: waking others costs more.
    static let parallelThreshold = 1 << 15

    private let chain: CompiledChain
    private var lanes: [ExecutorLane] = []
    /// Threads a step may use (at least 1).
    var threads: Int {
        didSet { threads = max(1, threads) }
    }
    /// The whole parameter's `d`, for staged chains.
    private var stagedUpdate: UnsafeMutableRawPointer?
    private var stagedCapacity = 0
    /// Where the values from before the step are kept until it succeeds.
    private var journalMemory: UnsafeMutableRawPointer?
    private var journalCapacity = 0

    init(chain: CompiledChain, threads: Int) {
        self.chain = chain
        self.threads = max(1, threads)
    }

    deinit {
        stagedUpdate?.deallocate()
        journalMemory?.deallocate()
    }

    /// Steps every item. Items with a journal are stepped all or nothing: every block is saved to its item's
    /// journal before the chain touches it, and if any block fails, every saved block is put back before
    /// this returns.
    /// - Parameter checksFinite: Also fail on a gradient, parameter or state value that is not finite.
    /// - Returns: The failure that comes first in item, block and rule order, if any.
    func step(_ items: [WorkItem], checksFinite: Bool) -> BlockFailure? {
        guard !items.isEmpty else { return nil }
        while lanes.count < threads { lanes.append(ExecutorLane(chain: chain)) }
        for lane in lanes { lane.checksFinite = checksFinite }
        let failure = chain.isStaged ? stepStaged(items, checksFinite: checksFinite) : stepFused(items)
        for lane in lanes { if failure == nil { lane.commit() } else { lane.undo() } }
        return failure
    }

    /// Memory for the journals of a step needing `bytes` in all, kept between steps.
    func journal(bytes: Int) -> UnsafeMutableRawPointer {
        if journalMemory == nil || bytes > journalCapacity {
            journalMemory?.deallocate()
            journalCapacity = max(bytes, 64)
            journalMemory = .allocate(byteCount: journalCapacity, alignment: 64)
        }
        return journalMemory!
    }

    // MARK: - One pass, all rules per block

    private func stepFused(_ items: [WorkItem]) -> BlockFailure? {
        let allRules = chain.links.indices
        var ends: [Int] = []
        ends.reserveCapacity(items.count)
        var total = 0
        for item in items {
            total += item.count
            ends.append(total)
        }
        let laneCount = total < Self.parallelThreshold ? 1 : threads
        if laneCount == 1 {
            let lane = lanes[0]
            for item in items {
                for block in 0..<item.blockCount {
                    if let failure = lane.run(item, block: block, rules: allRules, stagedUpdate: nil, reductions: nil) {
                        return failure
                    }
                }
            }
            return nil
        }
        // Lane k takes the blocks whose first element, counted across all items, is in [k·N/K, (k+1)·N/K).
        let failures = FailureSlots(count: laneCount)
        let lanes = self.lanes
        let (itemList, endList, elements) = (items, ends, total)
        DispatchQueue.concurrentPerform(iterations: laneCount) { k in
            let low = (k * elements + laneCount - 1) / laneCount, high = ((k + 1) * elements + laneCount - 1) / laneCount
            var index = firstIndex(in: endList, above: low)
            while index < itemList.count {
                let item = itemList[index]
                let begin = endList[index] - item.count
                if begin >= high { break }
                let blockLength = item.blockLength
                let first = max(0, (low - begin + blockLength - 1) / blockLength)
                for block in first..<item.blockCount {
                    let start = begin + block * blockLength
                    if start >= high { break }
                    if let failure = lanes[k].run(item, block: block, rules: allRules, stagedUpdate: nil, reductions: nil) {
                        failures.set(k, failure)
                        return
                    }
                }
                index += 1
            }
        }
        return failures.first
    }

    // MARK: - Stages, for chains with reductions

    private func stepStaged(_ items: [WorkItem], checksFinite: Bool) -> BlockFailure? {
        let reductions = UnsafeMutablePointer<Double>.allocate(capacity: max(chain.totalReductions, 1))
        defer { reductions.deallocate() }
        for item in items {
            let bytes = item.count * item.elementSize
            if stagedUpdate == nil || bytes > stagedCapacity {
                stagedUpdate?.deallocate()
                stagedCapacity = max(bytes, 64)
                stagedUpdate = .allocate(byteCount: stagedCapacity, alignment: 64)
            }
            let d = stagedUpdate!
            d.copyMemory(from: item.gradient, byteCount: bytes)
            for block in 0..<item.blockCount { lanes[0].save(item, block: block) }
            if checksFinite, regula_all_finite(d, item.count, item.dtype) == 0 {
                return BlockFailure(item: item.index, block: 0, rule: 0, status: 0,
                                    words: "the gradient has a NaN or an infinity", kind: .nonFiniteGradient)
            }
            for stage in chain.stages {
                let first = stage.lowerBound
                if chain.links[first].reductionCount > 0,
                   let failure = fold(item, rule: first, stagedUpdate: d, into: reductions) {
                    return failure
                }
                let (update, reduced) = (Unchecked(d), Unchecked(UnsafePointer(reductions)))
                if let failure = forEachBlock(of: item, { lane, block in
                    lane.run(item, block: block, rules: stage, stagedUpdate: update.value, reductions: reduced.value)
                }) {
                    return failure
                }
            }
            if checksFinite {
                for block in 0..<item.blockCount {
                    if let failure = lanes[0].nonFiniteResult(item, block: block) { return failure }
                }
            }
        }
        return nil
    }

    /// Rule `index`'s reductions over all of `item`'s blocks: partials per block (on any thread), combined
    /// in block order.
    private func fold(_ item: WorkItem, rule index: Int, stagedUpdate: UnsafeMutableRawPointer,
                      into reductions: UnsafeMutablePointer<Double>) -> BlockFailure? {
        let link = chain.links[index], declared = chain.rules[index].reductions
        let perBlock = UnsafeMutablePointer<Double>.allocate(capacity: item.blockCount * link.reductionCount)
        defer { perBlock.deallocate() }
        let (table, update, width) = (Unchecked(perBlock), Unchecked(stagedUpdate), link.reductionCount)
        if let failure = forEachBlock(of: item, { lane, block in
            if let failure = lane.reduce(item, block: block, rule: index, stagedUpdate: update.value) { return failure }
            (table.value + block * width).update(from: lane.partials, count: width)
            return nil
        }) {
            return failure
        }
        for (slot, reduction) in declared.enumerated() {
            var value = reduction.combine.identity
            for block in 0..<item.blockCount { value = reduction.combine(value, perBlock[block * link.reductionCount + slot]) }
            reductions[link.reductionOffset + slot] = value
        }
        return nil
    }

    /// Runs `body` on every block of `item`, spread over the lanes; the first failure in block order.
    private func forEachBlock(of item: WorkItem, _ body: @escaping @Sendable (ExecutorLane, Int) -> BlockFailure?) -> BlockFailure? {
        let blocks = item.blockCount
        let laneCount = item.count < Self.parallelThreshold ? 1 : min(threads, blocks)
        let failures = FailureSlots(count: laneCount)
        let lanes = self.lanes
        if laneCount == 1 {
            for block in 0..<blocks { if let failure = body(lanes[0], block) { return failure } }
            return nil
        }
        DispatchQueue.concurrentPerform(iterations: laneCount) { k in
            for block in (k * blocks / laneCount)..<((k + 1) * blocks / laneCount) {
                if let failure = body(lanes[k], block) {
                    failures.set(k, failure)
                    return
                }
            }
        }
        return failures.first
    }
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

/// A pointer handed to threads that read it, or write disjoint parts of it.
private struct Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
