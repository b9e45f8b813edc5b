import Foundation
import Regula

/// Checkpoints of a distributed optimizer are ordinary Regula checkpoints of the whole optimizer: one file,
/// written by rank 0, that a run with any number of ranks, in either mode, or a single process loads.
///
/// Saving gathers the shards' state to rank 0 (in sharded mode), which fills a whole optimizer over the
/// parameters and saves it with ``Optimizer/saveCheckpoint(to:schedulers:)``, atomically. Loading is the
/// reverse: rank 0 loads the file into a whole optimizer, with every check a single process makes, and only
/// if it fits hands each rank its part (its shares, in sharded mode; all the state of a parameter owned whole
/// to its owner, rows and columns slots included, and none to the others). Only rank 0 reads or writes the file, so
/// the ranks need no shared file system; rank 0 holds one whole copy of the state while it does.
extension DistributedOptimizer {
    /// Saves the whole optimizer to `url` on rank 0: every parameter, every state slot, the chain, the groups'
    /// options, the step counts and the schedulers' positions.
    /// - Throws: ``DistributedError`` on every rank when the file cannot be written (an earlier file at `url`
    ///   is then as it was).
    public func saveCheckpoint(to url: URL, schedulers: [LearningRateScheduler] = []) throws(DistributedError) {
        lock.lock()
        defer { lock.unlock() }
        try checkSlotSizes()
        var problem: String?
        let whole: Optimizer?
        if communicator.rank == 0 {
            do { whole = try wholeOptimizer(copyingValues: false) } catch {
                whole = nil
                problem = "\(error)"
            }
        } else {
            whole = nil
        }
        let wholeParameters = whole?.groups.flatMap(\.parameters)
        for index in parameters.indices {
            let (state, disagreement) = gatherState(of: index)
            problem = problem ?? disagreement
            guard let whole, let wholeParameters, problem == nil else { continue }
            do { try whole.seam.setState(of: wholeParameters[index], to: state) } catch { problem = "\(error)" }
        }
        if let whole, problem == nil {
            whole.seam.restoreSkippedSteps(local.skippedSteps)
            do { try whole.saveCheckpoint(to: url, schedulers: schedulers) } catch { problem = "\(error)" }
        }
        let verdict = communicator.broadcast(bytes: Array((problem ?? "").utf8), from: 0)
        if !verdict.isEmpty {
            throw DistributedError("the checkpoint was not saved: \(String(decoding: verdict, as: UTF8.self))", rank: 0)
        }
    }

    /// Restores the optimizer, its parameters and `schedulers` on every rank from a checkpoint made by any
    /// number of ranks in either mode, or by a single process, for the same rules, groups and parameters.
    ///
    /// Everything is checked before anything changes, as ``Optimizer/loadCheckpoint(from:schedulers:)``
    /// checks it: a file for other rules, names or sizes, a truncated or corrupt one, or schedulers that do not
    /// fit on some rank are refused on every rank, and every rank stays as it was.
    /// - Throws: ``DistributedError`` on every rank.
    public func loadCheckpoint(from url: URL, schedulers: [LearningRateScheduler] = []) throws(DistributedError) {
        lock.lock()
        defer { lock.unlock() }
        try checkSlotSizes()
        // Rank 0 reads and checks the file.
        var message: [UInt8] = []
        var whole: Optimizer?
        if communicator.rank == 0 {
            do {
                let loaded = try wholeOptimizer(copyingValues: true)
                let mirrors = try schedulers.map { try LearningRateScheduler(loaded, schedule: $0.schedule, groups: $0.groups) }
                try loaded.loadCheckpoint(from: url, schedulers: mirrors)
                let plan = LoadPlan(options: loaded.groups.map(\.options), choices: loaded.groups.map(\.choices),
                                    skippedSteps: loaded.skippedSteps,
                                    schedulers: mirrors.map(\.state),
                                    steps: loaded.groups.flatMap(\.parameters).map { loaded.state(of: $0)?.step })
                message = [1] + Array(try LoadPlan.encoder.encode(plan))
                whole = loaded
            } catch {
                message = [0] + Array("\(error)".utf8)
            }
        }
        message = communicator.broadcast(bytes: message, from: 0)
        guard message.first == 1, let plan = try? LoadPlan.decoder.decode(LoadPlan.self, from: Data(message.dropFirst())) else {
            throw DistributedError("the checkpoint \(url.path) was not loaded: \(String(decoding: message.dropFirst(), as: UTF8.self))")
        }
        // Every rank's schedulers must fit it too.
        try communicator.agreeing {
            if let mismatch = LearningRateScheduler.mismatch(plan.schedulers, restoring: schedulers) { throw DistributedError(mismatch) }
        }
        // It fits everywhere: hand out the values and each rank's part of the state.
        let wholeParameters = whole?.groups.flatMap(\.parameters)
        let members = parameters.enumerated().map { (parameter: $0.offset, count: $0.element.count, dtype: $0.element.dtype) }
        for bucket in Bucket.plan(members, bytes: bucketBytes) {
            exchange.broadcast(bucket, whole: { DistributionSeam.values(of: wholeParameters?[$0] ?? self.parameters[$0]) }, from: 0)
        }
        for (index, parameter) in parameters.enumerated() {
            if let source = wholeParameters?[index] {
                DistributionSeam.values(of: parameter).copyMemory(from: DistributionSeam.values(of: source), byteCount: parameter.count * parameter.dtype.size)
            }
            let wholeState = plan.steps[index] == nil ? nil : wholeParameters.flatMap { whole?.state(of: $0[index]) }
            let state = scatterState(wholeState, of: index, step: plan.steps[index])
            // The chains are the same on every rank (checked when the optimizer was built), so this fits.
            try? local.seam.setState(of: inner[index], to: state)
        }
        for (index, options) in plan.options.enumerated() { local.groups[index].options = options }
        for (index, choices) in plan.choices.enumerated() { local.groups[index].choices = choices }
        local.seam.restoreSkippedSteps(plan.skippedSteps)
        for (saved, scheduler) in zip(plan.schedulers, schedulers) { try? scheduler.restore(saved) }
    }

    /// A parameter's state slot moves between rank 0 and the others in one MPI message, whose count is 32-bit.
    /// Every rank has the same parameters, so every rank refuses alike, before any message.
    private func checkSlotSizes() throws(DistributedError) {
        if let large = parameters.first(where: { $0.count > Int(Int32.max) }) {
            throw DistributedError("parameter \"\(large.name)\" has \(large.count) elements; a distributed optimizer's checkpoints move "
                                   + "each state slot of a parameter in one MPI message, of at most \(Int32.max) elements")
        }
    }

    /// An optimizer over the whole parameters, with this optimizer's rules, options and choices, for a
    /// checkpoint: over the parameters' own values, or over copies of them (so that loading into it changes
    /// nothing else), each in its shape.
    private func wholeOptimizer(copyingValues: Bool) throws -> Optimizer {
        let wholes = parameters.map { parameter -> Parameter in
            func make<T: ParameterElement>(_: T.Type) -> Parameter {
                let values = UnsafeMutableBufferPointer(start: DistributionSeam.values(of: parameter).assumingMemoryBound(to: T.self), count: parameter.count)
                // The shape is the parameter's own, so it fits.
                return copyingValues ? try! Parameter(parameter.name, values: Array(values), shape: parameter.shape)
                    : try! Parameter(parameter.name, wrapping: values, shape: parameter.shape)
            }
            return parameter.dtype == .float32 ? make(Float.self) : make(Double.self)
        }
        return try Optimizer(Self.groups(like: local.groups, over: wholes), rules: ruleNames, defaults: defaults, choices: choices,
                             registry: registry)
    }

    /// The ranks that hold parameter `index`'s state: in sharded mode every rank, each its share, or the owner
    /// alone of a parameter owned whole (the others' empty part has no state of its own worth keeping).
    private func holders(of index: Int) -> [Int] {
        mode == .sharded ? layout.owners[index].map { [$0] } ?? Array(0..<communicator.size) : [0]
    }

    /// The whole state of parameter `index` on rank 0 (nil elsewhere, and before its first step): rank 0's own
    /// in replicated mode; in sharded mode the holders' element slots laid out in rank order (every rank's
    /// share, or the owner's whole slots, rows and columns included, for a parameter owned whole), and the
    /// scalar slots of the rank that steps the parameter's first element (after a step every rank has those).
    /// - Returns: The state, or why the ranks' states cannot be put together (on every rank alike).
    private func gatherState(of index: Int) -> (ParameterState?, problem: String?) {
        let mine = local.state(of: inner[index])
        guard mode == .sharded else { return (communicator.rank == 0 ? mine : nil, nil) }
        let holders = holders(of: index), holds = holders.contains(communicator.rank)
        // Every holder steps the parameter alike, so their states have the same step and slots.
        let keys = mine.map { $0.slots.keys.sorted() } ?? []
        let summary = StateSummary(step: mine?.step, keys: keys, lengths: holds ? keys.map { mine!.slots[$0]!.count } : keys.map { _ in 0 },
                                   scalars: mine.map { state in slotShapes(of: index).filter { $0.shape == .scalar && state.slots[$0.key] != nil }
                                       .map { ScalarValue(key: $0.key, bits: state.slots[$0.key]![0].bitPattern) } } ?? [])
        let summaries = communicator.allgather(bytes: Array((try? JSONEncoder().encode(summary)) ?? Data()))
            .map { try? JSONDecoder().decode(StateSummary.self, from: Data($0)) }
        let reference = summaries[holders[0]]
        guard let first = reference, holders.allSatisfy({ summaries[$0]?.step == first.step && summaries[$0]?.keys == first.keys }) else {
            let rank = holders.first { summaries[$0]?.step != reference?.step || summaries[$0]?.keys != reference?.keys } ?? holders[0]
            return (nil, "the ranks' states of parameter \"\(parameters[index].name)\" differ (rank \(holders[0]) and rank \(rank) hold "
                        + "other step counts or slots)")
        }
        guard let step = first.step else { return (nil, nil) }
        var slots: [String: [Double]] = [:]
        for (position, key) in first.keys.enumerated() where !first.scalars.contains(where: { $0.key == key }) {
            let values = holds ? mine?.slots[key] ?? [] : []
            let counts = summaries.map { $0.map { $0.lengths.indices.contains(position) ? $0.lengths[position] : 0 } ?? 0 }
            var gathered = [Double](repeating: 0, count: communicator.rank == 0 ? counts.reduce(0, +) : 0)
            values.withUnsafeBytes { send in
                gathered.withUnsafeMutableBytes { receive in
                    communicator.gatherv(send.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!, count: values.count,
                                         into: receive.baseAddress, counts: counts, displacements: Communicator.offsets(counts),
                                         root: 0, .float64)
                }
            }
            slots[key] = gathered
        }
        for scalar in summaries[layout.leadingRank(ofParameter: index)]?.scalars ?? [] { slots[scalar.key] = [Double(bitPattern: scalar.bits)] }
        return (communicator.rank == 0 ? DistributionSeam.state(step: step, slots: slots) : nil, nil)
    }

    /// This rank's part of parameter `index`'s state, from the whole state that only rank 0 has: all of it in
    /// replicated mode; in sharded mode its share of each element slot, or for a parameter owned whole every
    /// element slot whole on the owner and empty on the others (every rank takes the step count and the
    /// scalar slots). Nil when the checkpoint has none.
    private func scatterState(_ wholeState: ParameterState?, of index: Int, step: Int?) -> ParameterState? {
        guard let step else { return nil }
        let shapes = Dictionary(slotShapes(of: index).map { ($0.key, $0.shape) }, uniquingKeysWith: { first, _ in first })
        // Which slots there are, with their lengths (a rows or columns slot is not as long as the parameter), from rank 0.
        let described = (wholeState?.slots.keys.sorted() ?? []).map { "\($0)\t\(wholeState!.slots[$0]!.count)" }
        let keys = communicator.broadcast(bytes: Array(described.joined(separator: "\n").utf8), from: 0)
        var slots: [String: [Double]] = [:]
        for line in String(decoding: keys, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: "\t").map(String.init)
            let (key, length) = (fields[0], Int(fields[1]) ?? 0)
            if shapes[key] == .scalar || mode == .replicated {
                var values = wholeState?.slots[key] ?? [Double](repeating: 0, count: length)
                values.withUnsafeMutableBytes { communicator.broadcast($0.baseAddress!, count: length, from: 0, .float64) }
                slots[key] = values
            } else {
                let shares = (0..<communicator.size).map { layout.slotElements(ofParameter: index, length: length, rank: $0) }
                var mine = [Double](repeating: 0, count: shares[communicator.rank])
                let source = wholeState?.slots[key] ?? []
                source.withUnsafeBytes { send in
                    mine.withUnsafeMutableBytes { receive in
                        communicator.scatterv(send.baseAddress, counts: shares, displacements: Communicator.offsets(shares),
                                              into: receive.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 8)!,
                                              count: shares[communicator.rank], root: 0, .float64)
                    }
                }
                slots[key] = mine
            }
        }
        return DistributionSeam.state(step: step, slots: slots)
    }

    /// The state slots of the chain parameter `index` runs, with their shapes.
    private func slotShapes(of index: Int) -> [(key: String, shape: StateSlot.Shape)] { local.seam.stateSlotShapes(of: inner[index]) }
}

/// What rank 0 found in a checkpoint that every rank needs besides the tensors.
private struct LoadPlan: Codable {
    var options: [[String: Double]]
    var choices: [[String: String]]
    var skippedSteps: Int
    var schedulers: [LearningRateScheduler.State]
    /// Each parameter's step count, nil for one without state.
    var steps: [Int?]

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }
    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

/// One rank's state of one parameter, without its elements: what the ranks compare before gathering it.
private struct StateSummary: Codable {
    var step: Int?
    var keys: [String]
    /// The elements of each slot of `keys` this rank sends to the whole state (none from a rank that is not a
    /// holder of the parameter).
    var lengths: [Int]
    var scalars: [ScalarValue]
}

private struct ScalarValue: Codable {
    var key: String
    var bits: UInt64
}
