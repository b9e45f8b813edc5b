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
    let slots: UnsafeMutablePointer<UnsafeMutableRawPointer>
    let scalars: UnsafeMutablePointer<Double>
    let hyperparameters: UnsafeMutablePointer<Double>
    /// The parameter's position in the step's list, to name it in an error.
    let index: Int

    /// Blocks of ``ChainExecutor/blockLength`` elements the parameter spans (at least one).
    var blockCount: Int { max(1, (count + ChainExecutor.blockLength - 1) / ChainExecutor.blockLength) }
}

/// Where a step failed: the work item, the block and the rule, with the rule's words.
struct BlockFailure: Sendable, Comparable {
    let item: Int
    let block: Int
    let rule: Int
    let status: Int32
    let words: String

    static func < (a: BlockFailure, b: BlockFailure) -> Bool { (a.item, a.block, a.rule) < (b.item, b.block, b.rule) }
}
