/// Combines reduction values with the other processes of a distributed optimizer, in a fixed order, so that
/// a rule such as `max_norm`, `scale_by_trust_ratio` or `clip_global_norm` sees the norm of the whole
/// parameter (or step) even when each process steps only its share of the elements.
///
/// The executor folds each parameter's blocks in block order, then hands the per-parameter values of one
/// rule's reductions to ``combineAcrossProcesses(_:combines:)`` (every process calls it at the same point of
/// every step, with the same parameters in the same order), then combines a step-wide reduction over the
/// parameters in the optimizer's order. The result depends neither on the thread count nor on how the
/// collective operation happens to sum, only on the number of processes.
package protocol ReductionExchange: AnyObject, Sendable {
    /// `values` holds `combines.count` values per parameter stepped in this process, parameter after
    /// parameter in the optimizer's order: each rule reduction's value over this process's share. Replace
    /// each with its combination over every process, taken in rank order with its combine.
    func combineAcrossProcesses(_ values: UnsafeMutableBufferPointer<Double>, combines: [Reduction.Combine])
}
