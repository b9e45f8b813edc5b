import Foundation

/// Drives the learning rate of an optimizer's groups by a ``LearningRateSchedule``, one ``step(loss:)``
/// after each optimizer step, as torch's schedulers do.
///
/// ```swift
/// let scheduler = try LearningRateScheduler(optimizer, schedule: .exponential(gamma: 0.9))
/// for epoch in 0..<epochs {
///     try train(epoch)                 // optimizer.step() inside
///     try scheduler.step()
/// }
/// ```
///
/// Creating a scheduler records each driven group's current `lr` as its base rate and sets the rate for
/// step 0 (which differs from the base only for warm-up). Its position is ``state`` and can be restored
/// with ``restore(_:)``, so a resumed run continues the schedule exactly.
public final class LearningRateScheduler {
    /// Where a scheduler stands: everything needed to continue it.
    public struct State: Sendable, Equatable, Codable {
        /// The schedule's name (``LearningRateSchedule/name``).
        public var schedule: String
        /// Steps taken (torch's `last_epoch`).
        public var steps: Int
        /// Each driven group's base rate.
        public var baseRates: [Double]
        /// For reduce-on-plateau: the best loss so far, steps without improvement, cooldown steps left.
        public var best: Double
        /// Steps without improvement (reduce-on-plateau).
        public var badSteps: Int
        /// Cooldown steps left (reduce-on-plateau).
        public var cooldownLeft: Int
    }

    /// The schedule.
    public let schedule: LearningRateSchedule
    /// The indices of the groups whose `lr` it sets.
    public let groups: [Int]
    /// Where it stands.
    public private(set) var state: State
    private unowned let optimizer: Optimizer

    /// Starts driving `groups` (all, by default) of `optimizer`.
    /// - Throws: ``ScheduleError`` for unusable settings, a group index out of range, or a group with no `lr`.
    public init(_ optimizer: Optimizer, schedule: LearningRateSchedule, groups: [Int]? = nil) throws(ScheduleError) {
        if let problem = schedule.problem { throw ScheduleError("\(schedule.name) schedule: \(problem)") }
        let groups = groups ?? Array(optimizer.groups.indices)
        var bases: [Double] = []
        for group in groups {
            guard optimizer.groups.indices.contains(group) else {
                throw ScheduleError("group \(group) does not exist; the optimizer has groups 0 to \(optimizer.groups.count - 1)")
            }
            guard let rate = optimizer.groups[group].learningRate else {
                throw ScheduleError("group \(group) has no option \"lr\" to schedule")
            }
            bases.append(rate)
        }
        self.optimizer = optimizer
        self.schedule = schedule
        self.groups = groups
        state = State(schedule: schedule.name, steps: 0, baseRates: bases, best: .infinity, badSteps: 0, cooldownLeft: 0)
        if case .warmupCosine(_, let start, _, _) = schedule { setRates { _, base in base * start } }
        if case .custom(let multiplier) = schedule { setRates { _, base in base * multiplier(0) } }
    }

    /// The rates the driven groups have now, in the order of ``groups``.
    public var rates: [Double] { groups.map { optimizer.groups[$0].learningRate ?? .nan } }

    /// Advances one step and sets the rates for the next optimizer step.
    /// - Parameter loss: The loss of the step just taken; required by reduce-on-plateau, ignored otherwise.
    /// - Throws: ``ScheduleError`` when reduce-on-plateau gets no loss or a loss that is not finite.
    public func step(loss: Double? = nil) throws(ScheduleError) {
        let epoch = state.steps + 1
        switch schedule {
        case .step(let size, let gamma):
            if epoch % size == 0 { setRates { rate, _ in rate * gamma } }
        case .multiStep(let milestones, let gamma):
            let hits = milestones.filter { $0 == epoch }.count
            if hits > 0 { setRates { rate, _ in rate * pow(gamma, Double(hits)) } }
        case .exponential(let gamma):
            setRates { rate, _ in rate * gamma }
        case .cosine(let period, let minimum):
            setRates { rate, base in cosineStep(rate: rate, base: base, epoch: epoch, period: period, minimum: minimum) }
        case .warmupCosine(let warmup, let start, let period, let minimum):
            if epoch < warmup {
                // torch's LinearLR, chainable form, towards an end factor of 1.
                setRates { rate, _ in rate * (1 + (1 - start) / (Double(warmup) * start + Double(epoch - 1) * (1 - start))) }
            } else if epoch == warmup {
                setRates { _, base in base }
            } else {
                setRates { rate, base in cosineStep(rate: rate, base: base, epoch: epoch - warmup, period: period, minimum: minimum) }
            }
        case .reduceOnPlateau(let factor, let patience, let threshold, let cooldown, let minimum):
            guard let loss else { throw ScheduleError("reduce_on_plateau needs the loss: call step(loss:)") }
            guard loss.isFinite else { throw ScheduleError("reduce_on_plateau got a loss of \(loss); it needs a finite number") }
            if loss < state.best * (1 - threshold) {
                state.best = loss
                state.badSteps = 0
            } else {
                state.badSteps += 1
            }
            if state.cooldownLeft > 0 {
                state.cooldownLeft -= 1
                state.badSteps = 0
            }
            if state.badSteps > patience {
                setRates { rate, _ in
                    let reduced = max(rate * factor, minimum)
                    return rate - reduced > 1e-8 ? reduced : rate
                }
                state.cooldownLeft = cooldown
                state.badSteps = 0
            }
        case .custom(let multiplier):
            setRates { _, base in base * multiplier(epoch) }
        }
        state.steps = epoch
    }

    /// Continues from a saved position. The rates themselves are the groups' options, restored with the
    /// optimizer.
    /// - Throws: ``ScheduleError`` when `saved` belongs to another schedule or another number of groups.
    public func restore(_ saved: State) throws(ScheduleError) {
        guard saved.schedule == schedule.name else {
            throw ScheduleError("the saved schedule is \(saved.schedule), this scheduler's is \(schedule.name)")
        }
        guard saved.baseRates.count == groups.count else {
            throw ScheduleError("the saved schedule drives \(saved.baseRates.count) groups, this one \(groups.count)")
        }
        state = saved
    }

    /// Why `saved` positions cannot be restored into `schedulers`, one for one, or nil when each fits its own:
    /// as many of them, each for the same schedule over as many groups. Checkpoints check this before they
    /// change anything.
    package static func mismatch(_ saved: [State], restoring schedulers: [LearningRateScheduler]) -> String? {
        guard saved.count == schedulers.count else {
            return "the checkpoint holds \(saved.count) schedulers; \(schedulers.count) were given"
        }
        for (saved, scheduler) in zip(saved, schedulers)
        where saved.schedule != scheduler.schedule.name || saved.baseRates.count != scheduler.groups.count {
            return "a saved \(saved.schedule) schedule over \(saved.baseRates.count) groups cannot restore a "
                + "\(scheduler.schedule.name) schedule over \(scheduler.groups.count)"
        }
        return nil
    }

    private func setRates(_ rate: (_ current: Double, _ base: Double) -> Double) {
        for (index, group) in groups.enumerated() {
            let current = optimizer.groups[group].learningRate ?? state.baseRates[index]
            optimizer.groups[group].learningRate = rate(current, state.baseRates[index])
        }
    }
}

/// A schedule that cannot be set up or stepped; the message says why.
public struct ScheduleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public let description: String
    init(_ description: String) { self.description = description }
}
