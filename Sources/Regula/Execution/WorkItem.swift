import RegulaABI

/// One parameter to step, reduced to the raw addresses the executor's threads need (no reference counting
/// on the hot path).
struct WorkItem: @unchecked Sendable {
    let param: UnsafeMutableRawPointer
    let gradient: UnsafeRawPointer
    let count: Int
    let dtype: regula_dtype
    let elementSize: Int
    let step: UInt64
    /// Every elementwise slot of the chain, nil where the slot does not exist (an option has not turned it on).
    let slots: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// Elements of each of ``slots``: `count`, or fewer for a rows or columns slot.
    let slotLengths: UnsafePointer<Int>
    let scalars: UnsafeMutablePointer<Double>
    let hyperparameters: UnsafeMutablePointer<Double>
    /// Where this step keeps the parameter's and its slots' values from before the step, one array after
    /// the other, so a failed step can be undone; nil when the step keeps no journal.
    var journal: UnsafeMutableRawPointer?
    /// The parameter's position in the optimizer's list, to name it in an error.
    let index: Int
    /// Where the item lies in the tensor it is a share of: what blocks report as their offset base and
    /// `parameter_length` (0 and `count` for a whole parameter).
    var shareOffset = 0
    var wholeCount: Int
    /// The shape kernels see (``StepPlan/Entry/shape``) and its number of sizes.
    var shape: UnsafePointer<Int>
    var rank: Int
    /// This step's scratch (what prepare functions wrote) and combined reductions for the item, laid out per
    /// ``CompiledChain/Link``; set by the executor.
    var scratch: UnsafeMutablePointer<Double>?
    var reductions: UnsafeMutablePointer<Double>?

    /// Bytes of journal the item needs: its values and every elementwise slot.
    static func journalBytes(count: Int, elementSize: Int, slots: Int) -> Int { count * elementSize * (1 + slots) }

    /// Elements per block for this item's element type.
    var blockLength: Int { ChainExecutor.blockLength(elementSize: elementSize) }
    /// Blocks the parameter spans (at least one).
    var blockCount: Int { max(1, (count + blockLength - 1) / blockLength) }
}

/// Where a step failed: the work item, the block and the rule, with what went wrong.
struct BlockFailure: Sendable, Comparable {
    /// What went wrong.
    enum Kind: Sendable {
        /// The rule's kernel, reduce or prepare returned an error.
        case kernel
        /// The gradient has a NaN or an infinity (checked only when asked).
        case nonFiniteGradient
        /// The step would leave a NaN or an infinity in the parameter or its state (checked only when asked).
        case nonFiniteResult
    }

    let item: Int
    let block: Int
    let rule: Int
    let status: Int32
    let words: String
    var kind: Kind = .kernel

    static func < (a: BlockFailure, b: BlockFailure) -> Bool { (a.item, a.block, a.rule) < (b.item, b.block, b.rule) }
}
