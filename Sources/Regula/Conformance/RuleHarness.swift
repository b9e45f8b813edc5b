import Dispatch
import Foundation
import RegulaABI

/// One parameter's worth of memory for calling a single rule directly, the way the executor would: the
/// parameter, its gradient, the update `d`, and the rule's state.
///
/// Used by the conformance checks, which need to choose the block split, the thread count, the parameter's
/// shape and where each buffer sits in memory.
final class RuleWorkspace: @unchecked Sendable {
    let rule: Rule
    let dtype: DType
    let count: Int
    /// Elements of room on either side of every buffer of elements (the parameter, gradient, update and
    /// element slots), to see whether a kernel writes outside its parameter.
    let margin: Int
    /// Steps taken so far (the `step` field of the next block).
    var step: UInt64 = 0
    let param: UnsafeMutableRawPointer
    let gradient: UnsafeMutableRawPointer
    let update: UnsafeMutableRawPointer
    /// Every element slot the rule declares (elementwise, rows, columns), in declaration order, as the kernel's
    /// `elementwise_slots` lists them: its memory, as long as its shape for the parameter's, or nil where a
    /// parameter of this rank has no such slot.
    let declaredSlots: [SlotBuffer?]
    /// Those of ``declaredSlots`` that exist.
    let slots: [SlotBuffer]
    let scalars: UnsafeMutablePointer<Double>
    /// What the rule's prepare function writes for the current step.
    let scratch: UnsafeMutablePointer<Double>
    /// The parameter's shape as kernels see it (row-major), ``rank`` sizes.
    let shape: UnsafeMutablePointer<Int>
    /// The parameter's rank.
    let rank: Int
    /// The hyperparameter values slots start from (`initial_from`); empty for the declared initial values.
    let startingValues: [Double]
    private var guarded: [GuardedMemory] = []
    private var plain: [UnsafeMutableRawPointer] = []

    /// Memory for a parameter of `shape`; with `edge`, every buffer sits against a guard page on that side, and
    /// with `margin` (no `edge`), every buffer of elements has that many elements of room before and after it.
    /// Slots that start from an option start from its value in `values`.
    init(rule: Rule, dtype: DType, shape: [Int], edge: GuardedMemory.Edge? = nil, margin: Int = 0, values: [Double] = []) {
        precondition(edge == nil || margin == 0, "a buffer against a guard page has no margin")
        self.rule = rule
        self.dtype = dtype
        count = shape.reduce(1, *)
        self.margin = margin
        rank = shape.count
        startingValues = values
        var guarded: [GuardedMemory] = [], plain: [UnsafeMutableRawPointer] = []
        func buffer(_ bytes: Int) -> UnsafeMutableRawPointer {
            if let edge {
                let memory = GuardedMemory(bytes: bytes, edge: edge)
                guarded.append(memory)
                return memory.data
            }
            let memory = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 8), alignment: 64)
            memory.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 8))
            plain.append(memory)
            return memory
        }
        let (bytes, room) = ((count + 2 * margin) * dtype.size, margin * dtype.size)
        param = buffer(bytes) + room
        gradient = buffer(bytes) + room
        update = buffer(bytes) + room
        declaredSlots = rule.stateSlots.filter(\.shape.holdsElements).map { slot in
            guard slot.exists(forRank: shape.count), let length = slot.shape.shape(for: shape)?.reduce(1, *) else { return nil }
            return SlotBuffer(slot: slot, memory: buffer((length + 2 * margin) * dtype.size) + room, length: length)
        }
        slots = declaredSlots.compactMap { $0 }
        let scalarCount = rule.stateSlots.filter { $0.shape == .scalar }.count
        scalars = buffer(max(scalarCount, 1) * 8).assumingMemoryBound(to: Double.self)
        scratch = buffer(max(rule.scratchCount, 1) * 8).assumingMemoryBound(to: Double.self)
        self.shape = buffer(shape.count * 8).assumingMemoryBound(to: Int.self)
        self.shape.initialize(from: shape, count: shape.count)
        self.guarded = guarded
        self.plain = plain
        resetState()
    }

    deinit { plain.forEach { $0.deallocate() } }

    /// The parameter, gradient, update and each element slot, with their names and lengths.
    var buffers: [(name: String, memory: UnsafeMutableRawPointer, length: Int)] {
        [("param", param, count), ("grad", gradient, count), ("update", update, count)]
            + slots.map { ($0.slot.name, $0.memory, $0.length) }
    }

    /// What a step may change, in order: the parameter, the update and the element slots.
    private var outputs: [(memory: UnsafeMutableRawPointer, length: Int)] {
        [(param, count), (update, count)] + slots.map { ($0.memory, $0.length) }
    }

    /// Sets every slot to its starting value and the step count to 0.
    func resetState() {
        step = 0
        for buffer in slots {
            fill(buffer.memory, with: Array(repeating: startingValue(of: buffer.slot), count: buffer.length))
        }
        for (index, slot) in rule.stateSlots.filter({ $0.shape == .scalar }).enumerated() {
            scalars[index] = startingValue(of: slot)
        }
    }

    /// The slot's declared initial value, or the value of the option it starts from.
    private func startingValue(of slot: StateSlot) -> Double {
        guard let source = slot.initialFrom, let index = rule.hyperparameters.firstIndex(where: { $0.name == source }),
              index < startingValues.count else { return slot.initialValue }
        return startingValues[index]
    }

    /// Writes `values` (converted to the dtype) into `memory`, from element `start` (negative: in the margin
    /// before it).
    func fill(_ memory: UnsafeMutableRawPointer, with values: [Double], from start: Int = 0) {
        let base = memory + start * dtype.size
        switch dtype {
        case .float32: for (i, v) in values.enumerated() { base.storeBytes(of: Float(v), toByteOffset: i * 4, as: Float.self) }
        case .float64: for (i, v) in values.enumerated() { base.storeBytes(of: v, toByteOffset: i * 8, as: Double.self) }
        }
    }

    /// Reads `memory` back as `Double`s: the `count` elements of the parameter, or `length` from element
    /// `start` (negative: in the margin before it).
    func read(_ memory: UnsafeMutableRawPointer, from start: Int = 0, length: Int? = nil) -> [Double] {
        let base = memory + start * dtype.size
        switch dtype {
        case .float32: return (0..<(length ?? count)).map { Double(base.load(fromByteOffset: $0 * 4, as: Float.self)) }
        case .float64: return (0..<(length ?? count)).map { base.load(fromByteOffset: $0 * 8, as: Double.self) }
        }
    }

    /// Everything a step may change, as exact bit patterns: parameter, update, slots, scalars, step.
    var bits: [UInt64] {
        let elements = outputs.flatMap { read($0.memory, length: $0.length).map(\.bitPattern) }
        let scalarCount = rule.stateSlots.filter { $0.shape == .scalar }.count
        return elements + (0..<scalarCount).map { scalars[$0].bitPattern } + [step]
    }

    /// The parameter, update and slots as numbers, for finiteness and tolerance checks.
    var numbers: [Double] { outputs.flatMap { read($0.memory, length: $0.length) } }

    /// The first slot declared non-negative that holds a value below 0, with that value, or nil.
    var negativeSlot: (slot: StateSlot, value: Double)? {
        let state = saveState()
        let values = Array(zip(slots.map(\.slot), state.slots))
            + zip(rule.stateSlots.filter { $0.shape == .scalar }, state.scalars.map { [$0] })
        for (slot, numbers) in values where slot.isNonNegative {
            if let negative = numbers.first(where: { $0 < 0 }) { return (slot, negative) }
        }
        return nil
    }

    /// A copy of the state (slots, scalars, step), to restore later.
    func saveState() -> (slots: [[Double]], scalars: [Double], step: UInt64) {
        let scalarCount = rule.stateSlots.filter { $0.shape == .scalar }.count
        return (slots.map { read($0.memory, length: $0.length) }, (0..<scalarCount).map { scalars[$0] }, step)
    }

    /// Puts back what ``saveState()`` returned.
    func restoreState(_ saved: (slots: [[Double]], scalars: [Double], step: UInt64)) {
        for (buffer, values) in zip(slots, saved.slots) { fill(buffer.memory, with: values) }
        for (index, value) in saved.scalars.enumerated() { scalars[index] = value }
        step = saved.step
    }

    /// One step of the rule alone: `d` = the gradient, then the rule's reductions over the host's fixed
    /// blocks, then its kernel over blocks of the given lengths (which must add up to `count`), spread over
    /// `threads` threads.
    /// - Returns: `nil`, or the first failure's words.
    /// With `only`, just that block's kernel runs (and `d` is left as it is, not reset to the gradient, and no
    /// slot is started from the parameter).
    func step(hyperparameters: [Double], blockLengths: [Int], threads: Int = 1, only: Int? = nil) -> String? {
        if only == nil {
            update.copyMemory(from: gradient, byteCount: count * dtype.size)
            // As the host creates them: a copy of the parameter just before its first step.
            for buffer in slots where step == 0 && buffer.slot.startsFromParameter {
                buffer.memory.copyMemory(from: param, byteCount: count * dtype.size)
            }
        }
        if let failure = prepare(hyperparameters: hyperparameters) { return "prepare: \(failure)" }
        var reductions = [Double](repeating: 0, count: rule.reductions.count)
        if !rule.reductions.isEmpty {
            let partials = UnsafeMutablePointer<Double>.allocate(capacity: rule.reductions.count)
            defer { partials.deallocate() }
            for (slot, reduction) in rule.reductions.enumerated() { reductions[slot] = reduction.combine.identity }
            let blockLength = ChainExecutor.blockLength(elementSize: dtype.size)
            for start in stride(from: 0, to: max(count, 1), by: blockLength) {
                for (slot, reduction) in rule.reductions.enumerated() { partials[slot] = reduction.combine.identity }
                let failure = call(start: start, length: min(blockLength, count - start),
                                   hyperparameters: hyperparameters, reductions: nil) { block, messages in
                    rule.kernel.reduce(block, into: partials, messages: messages)
                }
                if let failure { return "reduce: \(failure)" }
                for (slot, reduction) in rule.reductions.enumerated() { reductions[slot] = reduction.combine(reductions[slot], partials[slot]) }
            }
        }
        var starts: [Int] = []
        var position = 0
        for length in blockLengths {
            starts.append(position)
            position += length
        }
        precondition(position == count, "block lengths add up to \(position), not \(count)")
        let failures = FailureList()
        let (blockStarts, combined) = (starts, reductions)
        let run: @Sendable (Int) -> Void = { index in
            let failure = self.call(start: blockStarts[index], length: blockLengths[index], hyperparameters: hyperparameters,
                                    reductions: combined) { block, messages in
                self.rule.kernel.run(block, messages: messages)
            }
            if let failure { failures.append(failure) }
        }
        if let only {
            run(only)
        } else if threads <= 1 {
            for index in blockLengths.indices { run(index) }
        } else {
            let lanes = min(threads, blockLengths.count)
            DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                for index in stride(from: lane, to: blockLengths.count, by: lanes) { run(index) }
            }
        }
        step += 1
        return failures.first
    }

    /// Runs the rule's prepare function once, as the host does before a parameter's blocks.
    private func prepare(hyperparameters: [Double]) -> String? {
        guard rule.kernel.prepare != nil else { return nil }
        let messages = MessageBuffer()
        return hyperparameters.withUnsafeBufferPointer { values in
            var parameter = regula_block()
            parameter.struct_size = UInt32(MemoryLayout<regula_block>.size)
            parameter.dtype = dtype.abiBit
            parameter.parameter_length = count
            parameter.step = step
            parameter.hyperparameters = values.baseAddress
            parameter.scalar_slots = scalars
            parameter.rule_data = rule.kernel.ruleData
            parameter.rank = UInt32(rank)
            parameter.shape = UnsafePointer(shape)
            parameter.services = HostServices.table
            scratch.update(repeating: 0, count: rule.scratchCount)
            return withUnsafePointer(to: parameter) { rule.kernel.prepare($0, scratch: scratch, messages: messages) }
                .map { "status \($0.status): \($0.words)" }
        }
    }

    /// Calls `body` with a block covering `length` elements from `start` (length 0: every pointer is a
    /// guard-page address that must not be touched). A slot that an option turns on is NULL while it is off, and
    /// so is one that the parameter's rank does not have. Rows and columns slots (whole-tensor rules only) are
    /// handed whole.
    private func call(start: Int, length: Int, hyperparameters: [Double], reductions: [Double]?,
                      _ body: (UnsafePointer<regula_block>, MessageBuffer) -> (status: Int32, words: String)?) -> String? {
        let size = dtype.size
        let messages = MessageBuffer()
        let emptyPointer = length == 0 ? guarded.first?.guardPage : nil
        var slotPointers: [UnsafeMutableRawPointer?] = declaredSlots.map { buffer in
            guard let buffer else { return nil }
            let slot = buffer.slot
            if let switchName = slot.enabledBy, let index = rule.hyperparameters.firstIndex(where: { $0.name == switchName }),
               hyperparameters[index] == 0 {
                return nil
            }
            return emptyPointer ?? buffer.memory + (slot.shape == .elementwise ? start * size : 0)
        }
        return hyperparameters.withUnsafeBufferPointer { values in
            (reductions ?? []).withUnsafeBufferPointer { reduced in
                slotPointers.withUnsafeMutableBufferPointer { slotList in
                    var block = regula_block()
                    block.struct_size = UInt32(MemoryLayout<regula_block>.size)
                    block.dtype = dtype.abiBit
                    block.length = length
                    block.offset = start
                    block.parameter_length = count
                    block.step = step
                    block.update = emptyPointer ?? update + start * size
                    block.param = emptyPointer ?? param + start * size
                    block.grad = UnsafeRawPointer(emptyPointer ?? gradient + start * size)
                    block.hyperparameters = values.baseAddress
                    block.elementwise_slots = UnsafePointer(slotList.baseAddress)
                    block.scalar_slots = scalars
                    block.rule_data = rule.kernel.ruleData
                    block.reductions = reductions == nil || rule.reductions.isEmpty ? nil : reduced.baseAddress
                    block.scratch = rule.kernel.prepare == nil ? nil : UnsafePointer(scratch)
                    block.rank = UInt32(rank)
                    block.shape = UnsafePointer(shape)
                    block.services = HostServices.table
                    return withUnsafePointer(to: block) { body($0, messages) }.map { "status \($0.status): \($0.words)" }
                }
            }
        }
    }
}

/// One element slot of a ``RuleWorkspace``: its declaration, its memory and its length in elements (the
/// parameter's count for an elementwise slot, the rows' or columns' count for a factored one).
struct SlotBuffer {
    let slot: StateSlot
    let memory: UnsafeMutableRawPointer
    let length: Int
}

/// Failures collected from several threads.
final class FailureList: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ item: String) { lock.withLock { items.append(item) } }
    var first: String? { lock.withLock { items.first } }
}
