import Dispatch
import Foundation
import Regula

/// An optimizer over several processes started by `mpirun`, each holding the whole model and computing
/// gradients on its own share of the batch: the gradients are averaged across ranks, then the chain runs.
///
/// - ``Mode/replicated``: every rank steps every parameter with the averaged gradient and keeps the whole
///   state, as Horovod's `DistributedOptimizer` and torch's DDP do. Parameters stay bit-identical on every
///   rank.
/// - ``Mode/sharded``: each rank owns a contiguous share of every parameter's elements (rank r the elements
///   `[count·r/N, count·(r+1)/N)`), receives only its share of the averaged gradient (a reduce-scatter),
///   steps that share and keeps state for it alone, then the ranks all-gather the parameters (ZeRO stage 1,
///   torch's `ZeroRedundancyOptimizer`). Each rank holds about 1/N of the state. A parameter whose group's
///   chain has a whole-tensor rule (`muon`, `adafactor`) is not split: one rank owns it whole, receives its
///   whole averaged gradient, steps it whole and keeps all its state, the owners spread over the ranks by
///   element count (see ``share(of:)``); the other ranks hold none of its state.
///
/// ```swift
/// let communicator = try Communicator.world()
/// let w = Parameter("w", values: [Float](repeating: 0, count: 1000))
/// let optimizer = try DistributedOptimizer([w], rules: ["adamw"], defaults: ["lr": 1e-3], mode: .sharded)
/// for batch in batches {
///     try w.setGradient(gradient(of: batch.share(communicator.rank)))   // this rank's gradient
///     try optimizer.step()                                             // averaged, stepped, gathered
/// }
/// ```
///
/// Every rule works in both modes unchanged, plugins included: in sharded mode a rule sees its blocks with
/// the offsets and `parameter_length` of the whole tensor (``Parameter`` shares), a whole-tensor rule sees
/// the whole tensor on its owner, and a reduction (the norm
/// of `max_norm`, of `lamb`'s trust ratio, `clip_global_norm`'s total) is folded over each rank's share and
/// then combined across ranks in rank order, so it is the whole parameter's (or step's).
///
/// Every method here is collective: call it on every rank, in the same order. Whatever can go wrong on one
/// rank is exchanged before any rank acts on it, so every rank throws the same ``DistributedError`` (or skips
/// the same step), none is left waiting, and nothing is half changed. Building the optimizer refuses ranks
/// that disagree on the chain, the groups or the parameters; then rank 0's parameter values are copied to
/// every rank, as torch's DDP does, so the ranks start alike.
public final class DistributedOptimizer: @unchecked Sendable {
    /// How the ranks share the work.
    public enum Mode: String, Sendable, CaseIterable {
        /// Every rank steps every element and keeps the whole state.
        case replicated
        /// Each rank steps, and keeps state for, its contiguous share of every parameter; a parameter whose
        /// chain has a whole-tensor rule is stepped whole by the one rank that owns it.
        case sharded
    }

    /// How the ranks share the work.
    public let mode: Mode
    /// The ranks.
    public let communicator: Communicator
    /// The whole parameters, in the order of the groups, as every rank holds them.
    public let parameters: [Parameter]
    /// The optimizer this rank runs, over its parameters (the whole ones, or in sharded mode this rank's
    /// shares of them, named alike). Change options through its ``Optimizer/groups`` (on every rank alike)
    /// and drive it with a ``LearningRateScheduler``; step it only through ``step()``, and do not change its
    /// groups' parameters. Its parameters read gradients this distributed optimizer keeps: use it only while
    /// the distributed optimizer exists.
    public let local: Optimizer
    /// Gradient bytes per collective (each bucket holds at least this many, but for the last of each
    /// element type, and at most twice as many).
    public let bucketBytes: Int
    /// What the last ``step()`` cost on this rank.
    public private(set) var lastStep = StepTimes()

    /// What a step does when a gradient or result is not finite; set it on every rank alike.
    public var nonFiniteSteps: NonFiniteSteps {
        get { local.nonFiniteSteps }
        set { local.nonFiniteSteps = newValue }
    }
    /// Steps skipped on every rank because of non-finite values.
    public var skippedSteps: Int { local.skippedSteps }
    /// Bytes of optimizer state this rank holds (its shares' state, in sharded mode).
    public var stateByteCount: Int { local.stateByteCount }

    /// Built from these, kept to build the whole optimizer a checkpoint is made of.
    let ruleNames: [String]
    let defaults: [String: Double]
    let choices: [String: String]
    let registry: RuleRegistry?
    /// This rank's parameters in `local`, by position (whole ones, or shares).
    let inner: [Parameter]
    /// Where each parameter's averaged gradient is kept: whole (replicated) or this rank's share (sharded).
    private let gradients: [UnsafeMutableRawPointer]
    let layout: ShareLayout
    let exchange: TensorExchange
    /// Held by every collective method: one at a time.
    let lock = NSLock()

    /// Builds the optimizer on every rank: each rank passes its own copies of the same parameters, and the
    /// same rules, defaults and groups.
    ///
    /// - Parameters:
    ///   - groups: Parameter groups, as for ``Optimizer``; each rank's own ``Parameter`` objects.
    ///   - rules: Rule and chain names in the order they run.
    ///   - defaults: Options for every group that does not set its own.
    ///   - choices: Choices (such as `["adjust_lr_fn": "match_rms_adamw"]`) for every group that does not set
    ///     its own.
    ///   - mode: Replicated or sharded.
    ///   - communicator: The ranks; ``Communicator/world()`` when nil.
    ///   - bucketBytes: Bytes per collective, from 1 KiB to 128 MiB; 4 MiB by default.
    ///   - registry: Where rule names are looked up; `nil` for ``RuleRegistry/shared()``.
    /// - Throws: ``DistributedError`` on every rank when any rank could not build its optimizer (an
    ///   ``OptimizerError`` there, in its words), or the ranks disagree on the mode, the rules, the defaults,
    ///   the choices, the groups or a parameter's name, element type or size.
    public init(_ groups: [ParamGroup], rules: [String], defaults: [String: Double] = [:], choices: [String: String] = [:],
                mode: Mode, communicator: Communicator? = nil, bucketBytes: Int = 4 << 20,
                registry: RuleRegistry? = nil) throws(DistributedError) {
        let communicator = if let communicator { communicator } else { try Communicator.world() }
        self.mode = mode
        self.communicator = communicator
        self.bucketBytes = bucketBytes
        ruleNames = rules
        self.defaults = defaults
        self.choices = choices
        self.registry = registry
        parameters = groups.flatMap(\.parameters)

        // This rank's optimizer over its parts; a failure here is shared with every rank below, not thrown,
        // so that no rank waits for one that stopped.
        var failure: String?
        var gradients: [UnsafeMutableRawPointer] = []
        var inner: [Parameter] = []
        var local: Optimizer?
        if !(1 << 10...Bucket.largest / 2).contains(bucketBytes) {
            failure = "bucketBytes is \(bucketBytes); allowed: 1024 to \(Bucket.largest / 2)"
        }
        // Which parameters a whole-tensor rule steps, from an optimizer over the whole parameters (which
        // refuses what a single process would, in the same words): sharded mode owns those whole.
        var ownedWhole: [Bool] = []
        if failure == nil, mode == .sharded {
            do {
                let whole = try Optimizer(Self.groups(like: groups, over: parameters), rules: rules, defaults: defaults,
                                          choices: choices, registry: registry)
                ownedWhole = parameters.map(whole.seam.seesWholeTensors)
            } catch {
                failure = "\(error)"
            }
        }
        let layout = ShareLayout(ranks: communicator.size, counts: parameters.map(\.count), ownedWhole: ownedWhole)
        self.layout = layout
        exchange = TensorExchange(communicator: communicator, layout: layout)
        if failure == nil {
            for (index, parameter) in parameters.enumerated() {
                let elements = mode == .sharded ? layout.share(ofParameter: index, rank: communicator.rank) : 0..<parameter.count
                let memory = UnsafeMutableRawPointer.allocate(byteCount: max(elements.count, 1) * parameter.dtype.size, alignment: 64)
                memory.initializeMemory(as: UInt8.self, repeating: 0, count: max(elements.count, 1) * parameter.dtype.size)
                gradients.append(memory)
                let owner = layout.owners[index]
                let placement: Part = mode == .replicated || owner == communicator.rank ? .whole : owner == nil ? .share : .none
                inner.append(Self.part(of: parameter, elements: elements, gradient: memory, as: placement))
            }
            do {
                local = try Optimizer(Self.groups(like: groups, over: inner), rules: rules, defaults: defaults, choices: choices,
                                      registry: registry)
            } catch {
                failure = "\(error)"
            }
        }
        self.gradients = gradients
        self.inner = inner
        // Every rank learns whether every rank could build its optimizer, and whether they all built the same.
        let mine = failure.map { [ConfigurationLine(label: "error", value: $0)] }
            ?? Self.describe(mode: mode, optimizer: local!, parameters: parameters, bucketBytes: bucketBytes)
        if let refusal = ConfigurationLine.refusal(communicator.allgather(bytes: ConfigurationLine.encode(mine)), size: communicator.size) {
            gradients.forEach { $0.deallocate() }
            throw refusal
        }
        self.local = local!
        self.local.threads = max(1, ProcessInfo.processInfo.activeProcessorCount / communicator.ranksOnThisMachine)
        // The ranks start from rank 0's values.
        let members = parameters.enumerated().map { (parameter: $0.offset, count: $0.element.count, dtype: $0.element.dtype) }
        for bucket in Bucket.plan(members, bytes: bucketBytes) {
            exchange.broadcast(bucket, whole: { DistributionSeam.values(of: self.parameters[$0]) }, from: 0)
        }
    }

    /// Builds the optimizer with a single group of `parameters`.
    public convenience init(_ parameters: [Parameter], rules: [String], defaults: [String: Double] = [:],
                            choices: [String: String] = [:], mode: Mode, communicator: Communicator? = nil,
                            bucketBytes: Int = 4 << 20, registry: RuleRegistry? = nil) throws(DistributedError) {
        try self.init([ParamGroup(parameters)], rules: rules, defaults: defaults, choices: choices, mode: mode,
                      communicator: communicator, bucketBytes: bucketBytes, registry: registry)
    }

    deinit { gradients.forEach { $0.deallocate() } }

    /// What a rank's part of a parameter is.
    private enum Part {
        /// The whole parameter, with its shape: every parameter in replicated mode, one owned whole in sharded mode.
        case whole
        /// A contiguous share of a split parameter, which rules see as a share of the whole tensor.
        case share
        /// Nothing of a parameter another rank owns whole: no elements, in a shape of the parameter's rank whose
        /// sizes are all 0 (so that a rule's rank bounds accept it and every state slot of it, rows and columns
        /// too, has no elements). Its chain steps it as an empty tensor, so the ranks step the same parameters
        /// and combine the same reductions; its state (a step count and scalar slots) is never a checkpoint's.
        case none
    }

    /// A parameter over `elements` of `whole`'s values, reading its gradient from `gradient`.
    private static func part(of whole: Parameter, elements: Range<Int>, gradient: UnsafeMutableRawPointer, as kind: Part) -> Parameter {
        let shape = switch kind {
        case .whole: whole.shape
        case .share: [elements.count]
        case .none: [Int](repeating: 0, count: whole.shape.count)
        }
        func make<T: ParameterElement>(_: T.Type) -> Parameter {
            let values = UnsafeMutableBufferPointer(start: DistributionSeam.values(of: whole).assumingMemoryBound(to: T.self) + elements.lowerBound,
                                                    count: elements.count)
            // The element type matches, the shape fits and the memory is the optimizer's own: this cannot throw.
            return try! Parameter(whole.name, wrapping: values, shape: shape,
                                  gradient: UnsafeBufferPointer(start: gradient.assumingMemoryBound(to: T.self), count: elements.count))
        }
        let part = whole.dtype == .float32 ? make(Float.self) : make(Double.self)
        if kind == .share { DistributionSeam.makeShare(part, offset: elements.lowerBound, of: whole) }
        return part
    }

    /// `groups` with their parameters replaced, in order, by `parameters` (as many), and their rules, options
    /// and choices kept.
    static func groups(like groups: [ParamGroup], over parameters: [Parameter]) -> [ParamGroup] {
        var position = 0
        return groups.map { group in
            defer { position += group.parameters.count }
            return ParamGroup(Array(parameters[position..<(position + group.parameters.count)]), rules: group.rules,
                              options: group.options, choices: group.choices)
        }
    }

    /// Averages every rank's gradients, and takes one step on every rank.
    ///
    /// The parameters with a gradient must be the same on every rank (a parameter without one on every rank
    /// is skipped, its state left alone). Their gradients are averaged across ranks in buckets; the chain
    /// runs on each rank (on its shares, in sharded mode, which then gathers the parameters); the ranks agree
    /// on the outcome before any keeps it.
    /// - Returns: `.applied`, or `.skipped` on every rank when a gradient or result was not finite on some rank
    ///   (with ``nonFiniteSteps`` set to `.skip`), the reason naming the rank.
    /// - Throws: ``DistributedError`` on every rank when a rule failed or the options were refused on any
    ///   rank, or the ranks disagree on which parameters have gradients or on the options; no parameter or
    ///   state has changed on any rank then.
    @discardableResult
    public func step() throws(DistributedError) -> StepOutcome {
        lock.lock()
        defer { lock.unlock() }
        let start = DispatchTime.now().uptimeNanoseconds
        let (startCommunication, startBytes) = (communicator.communicationNanoseconds, communicator.bytesSent)
        defer {
            lastStep = StepTimes(seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9,
                                 communicationSeconds: Double(communicator.communicationNanoseconds - startCommunication) / 1e9,
                                 bytesSent: communicator.bytesSent - startBytes)
        }
        let present = try agreeOnStep()
        averageGradients(present)
        let outcome = try runLocalStep()
        if case .applied = outcome, mode == .sharded {
            gatherParameters(present)
            synchronizeScalarSlots(present)
        }
        return outcome
    }

    /// Averages the gradients of the parameters at `present` into each rank's gradient memory (whole, or
    /// this rank's share), and points this rank's parameters at it.
    private func averageGradients(_ present: [Int]) {
        let members = present.map { (parameter: $0, count: parameters[$0].count, dtype: parameters[$0].dtype) }
        let buckets = Bucket.plan(members, bytes: bucketBytes)
        let rank = communicator.rank
        for bucket in buckets {
            exchange.reduceScatter(bucket, whole: { DistributionSeam.gradient(of: self.parameters[$0])! }, target: { index in
                let first = self.mode == .sharded ? self.layout.share(ofParameter: index, rank: rank).lowerBound : 0
                return TensorExchange.Place(base: self.gradients[index], first: first)
            })
        }
        if mode == .replicated {
            for bucket in buckets { exchange.allGather(bucket, whole: { self.gradients[$0] }) }
        }
        let isPresent = Set(present)
        for (index, part) in inner.enumerated() {
            if isPresent.contains(index) { Self.pointGradient(of: part, at: gradients[index]) } else { part.clearGradient() }
        }
    }

    private static func pointGradient(of part: Parameter, at memory: UnsafeMutableRawPointer) {
        switch part.dtype {
        case .float32: try! part.setGradient(wrapping: UnsafeBufferPointer(start: memory.assumingMemoryBound(to: Float.self), count: part.count))
        case .float64: try! part.setGradient(wrapping: UnsafeBufferPointer(start: memory.assumingMemoryBound(to: Double.self), count: part.count))
        }
    }

    /// Runs this rank's step and agrees with the others on what becomes of it.
    private func runLocalStep() throws(DistributedError) -> StepOutcome {
        let agreement = StepAgreement(communicator: communicator)
        local.seam.reductionExchange = mode == .sharded ? agreement : nil
        defer { local.seam.reductionExchange = nil }
        // Rules that never fail and no check for non-finite values: once the options pass (and they are the
        // same on every rank, checked before), no rank can fail, so nothing needs agreeing or journaling.
        let certain = local.groups.flatMap(\.parameters).allSatisfy { local.seam.neverFails($0) } && local.nonFiniteSteps == .proceed
        do {
            if certain { return try local.step() }
            return try local.seam.step(agreeing: agreement.agree)
        } catch {
            if case .failed(let rank, let words) = agreement.verdict {
                throw DistributedError(communicator.size > 1 ? "the step failed on rank \(rank), so no rank took it: \(words)" : words,
                                       rank: rank)
            }
            throw DistributedError(communicator.size > 1 ? "the step was refused on every rank: \(error)" : "\(error)")
        }
    }

    /// Puts each rank's updated share of the parameters at `present` on every rank.
    private func gatherParameters(_ present: [Int]) {
        let members = present.map { (parameter: $0, count: parameters[$0].count, dtype: parameters[$0].dtype) }
        for bucket in Bucket.plan(members, bytes: bucketBytes) {
            exchange.allGather(bucket, whole: { DistributionSeam.values(of: self.parameters[$0]) })
        }
    }

    /// Sharded mode: a 1.0 rule may advance a scalar slot from one block only, the one at offset 0 (Docs/ABI.md
    /// section 11), which only the rank owning a parameter's first element steps (its owner, for a parameter
    /// owned whole, whose scalar slots only the owner's step advances). After each step every rank
    /// takes that rank's scalar slots, so all ranks (and a checkpoint) hold what one process would. Rules that
    /// advance them in `prepare` leave them equal everywhere already; chains without scalar slots skip this.
    private func synchronizeScalarSlots(_ present: [Int]) {
        // Each parameter's chain (its group's) has its own scalar slots; the chains are alike on every rank.
        let widths = present.map { index in local.seam.stateSlotShapes(of: inner[index]).count { $0.shape == .scalar } }
        let starts = widths.reduce(into: [0]) { $0.append($0.last! + $1) }
        guard starts.last! > 0 else { return }
        var mine = [Double](repeating: 0, count: starts.last!)
        for (position, index) in present.enumerated() where widths[position] > 0 {
            local.seam.withScalarSlots(of: inner[index]) { slots in
                for slot in 0..<widths[position] { mine[starts[position] + slot] = slots[slot] }
            }
        }
        let all = communicator.allgather(sameCount: mine, .float64)
        for (position, index) in present.enumerated() where widths[position] > 0 {
            let owner = layout.leadingRank(ofParameter: index)
            local.seam.withScalarSlots(of: inner[index]) { slots in
                for slot in 0..<widths[position] { slots[slot] = all[owner * mine.count + starts[position] + slot] }
            }
        }
    }

    /// This rank's elements of `parameter`: all of them in replicated mode, its share in sharded mode; nil
    /// for a parameter that is not one of this optimizer's.
    ///
    /// In sharded mode a parameter whose group's chain has a whole-tensor rule is owned whole by one rank: its
    /// share there is all of its elements, and empty on every other rank. The owners are chosen in parameter
    /// order, each the rank owning the fewest such elements so far (the lowest on a tie), alike on every rank.
    public func share(of parameter: Parameter) -> Range<Int>? {
        guard let index = parameters.firstIndex(where: { $0 === parameter }) else { return nil }
        return mode == .sharded ? layout.share(ofParameter: index, rank: communicator.rank) : 0..<parameter.count
    }

    /// This rank's state of `parameter` (of its ``share(of:)`` in sharded mode), or nil before its first step
    /// or for a parameter that is not one of this optimizer's. On a rank that holds none of a parameter another
    /// rank owns whole, its element slots are empty; its step count and scalar slots are the owner's.
    public func state(of parameter: Parameter) -> ParameterState? {
        guard let index = parameters.firstIndex(where: { $0 === parameter }) else { return nil }
        return local.state(of: inner[index])
    }
}

/// What one distributed step cost on one rank.
public struct StepTimes: Sendable, Equatable {
    /// The whole step, in seconds.
    public var seconds: Double = 0
    /// Seconds inside MPI calls: moving gradients, parameters and reductions, and waiting for slower ranks.
    public var communicationSeconds: Double = 0
    /// Bytes this rank handed to MPI for other ranks.
    public var bytesSent = 0
    /// Seconds outside MPI: packing buckets, averaging, and running the chain.
    public var computeSeconds: Double { seconds - communicationSeconds }
}

extension Optimizer {
    /// The way into this optimizer beyond its public API, which only a distributed optimizer needs.
    var seam: DistributionSeam { DistributionSeam(self) }
}
