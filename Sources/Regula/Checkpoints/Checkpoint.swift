import Foundation

/// What a checkpoint's JSON metadata records beside its tensors.
struct CheckpointMetadata: Codable {
    struct RuleEntry: Codable, Equatable {
        var name: String
        var version: Int
    }
    struct GroupEntry: Codable {
        var parameters: [String]
        var options: [String: Double]
    }
    struct ParameterEntry: Codable {
        var name: String
        var dtype: String
        var count: Int
        /// Steps taken, or nil when the parameter has no state yet.
        var step: Int?
    }

    static let currentFormat = "regula-checkpoint/1"
    var format = currentFormat
    var rules: [RuleEntry]
    var groups: [GroupEntry]
    var parameters: [ParameterEntry]
    var schedulers: [LearningRateScheduler.State]
    var skippedSteps: Int
}

extension Optimizer {
    /// Saves the whole optimizer to `url` in safetensors: every parameter's values (`param/NAME`), every state
    /// slot (`state/NAME/SLOT`), and in its metadata the chain, the groups with their options, step counts
    /// and the position of each scheduler in `schedulers`.
    ///
    /// The write is atomic: the file at `url` is either the old one or the complete new one, even if the
    /// process dies while saving.
    /// - Throws: ``CheckpointError`` when two parameters share a name or the file cannot be written.
    public func saveCheckpoint(to url: URL, schedulers: [LearningRateScheduler] = []) throws(CheckpointError) {
        let parameters = groups.flatMap(\.parameters)
        if let repeated = duplicates(in: parameters.map(\.name)).first {
            throw CheckpointError("two parameters are named \(quoted(repeated)); a checkpoint needs unique names")
        }
        var file = SafeTensors()
        var entries: [CheckpointMetadata.ParameterEntry] = []
        for parameter in parameters {
            file.tensors["param/\(parameter.name)"] = SafeTensors.Tensor(
                dtype: parameter.dtype, bytes: Data(bytes: parameter.storage, count: parameter.count * parameter.dtype.size))
            let state = states[ObjectIdentifier(parameter)]
            state?.forEachSlot(chain: compiled) { key, shape, _, memory in
                guard let memory else { return }   // a slot no option has turned on yet
                let (dtype, count) = shape == .scalar ? (DType.float64, 1) : (parameter.dtype, parameter.count)
                file.tensors["state/\(parameter.name)/\(key)"] = SafeTensors.Tensor(
                    dtype: dtype, bytes: Data(bytes: memory, count: count * dtype.size))
            }
            entries.append(.init(name: parameter.name, dtype: parameter.dtype.rawValue, count: parameter.count,
                                 step: state.map { Int($0.step) }))
        }
        let metadata = CheckpointMetadata(
            rules: chain.rules.map { .init(name: $0.name, version: $0.version) },
            groups: groups.map { .init(parameters: $0.parameters.map(\.name), options: $0.options) },
            parameters: entries, schedulers: schedulers.map(\.state), skippedSteps: skippedSteps)
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            file.metadata["regula"] = String(decoding: try encoder.encode(metadata), as: UTF8.self)
            file.metadata["format"] = CheckpointMetadata.currentFormat
            try AtomicFile.write(try file.encoded(), to: url)
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw CheckpointError("cannot encode the checkpoint: \(error)")
        }
    }

    /// Restores the optimizer, its parameters' values and the given schedulers from a checkpoint made by
    /// ``saveCheckpoint(to:schedulers:)`` for the same rules, groups and parameters.
    ///
    /// Everything is checked before anything changes: a file that does not fit (other rules, other parameter
    /// names, sizes or element types, other schedules) or that is truncated or corrupt is refused with the
    /// reason, and the optimizer, its parameters and the schedulers stay exactly as they were.
    /// - Throws: ``CheckpointError``.
    public func loadCheckpoint(from url: URL, schedulers: [LearningRateScheduler] = []) throws(CheckpointError) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw CheckpointError("cannot read \(url.path): no such file or not readable") }
        let file = try SafeTensors(decoding: data)
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let text = file.metadata["regula"],
              let metadata = try? decoder.decode(CheckpointMetadata.self, from: Data(text.utf8))
        else { throw CheckpointError("\(url.path) is a safetensors file but not a Regula checkpoint (no regula metadata)") }
        guard metadata.format == CheckpointMetadata.currentFormat else {
            throw CheckpointError("checkpoint format \(metadata.format); this Regula reads \(CheckpointMetadata.currentFormat)")
        }
        let ours = chain.rules.map(\.name), theirs = metadata.rules.map(\.name)
        guard ours == theirs else {
            throw CheckpointError("the checkpoint was made with rules \(theirs.joined(separator: " > ")); this optimizer runs \(ours.joined(separator: " > "))")
        }
        guard metadata.groups.count == groups.count else {
            throw CheckpointError("the checkpoint has \(metadata.groups.count) groups; this optimizer has \(groups.count)")
        }
        for (index, (saved, group)) in zip(metadata.groups, groups).enumerated() where saved.parameters != group.parameters.map(\.name) {
            throw CheckpointError("group \(index) holds parameters \(saved.parameters) in the checkpoint but \(group.parameters.map(\.name)) here")
        }
        var resolvedOptions: [ResolvedOptions] = []
        for (index, saved) in metadata.groups.enumerated() {
            do { resolvedOptions.append(try chain.resolve(saved.options, group: index)) } catch {
                throw CheckpointError("the checkpoint's options for group \(index) are refused: \(error)")
            }
        }
        let parameters = groups.flatMap(\.parameters)
        let entries = Dictionary(metadata.parameters.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for parameter in parameters {
            guard let entry = entries[parameter.name] else { throw CheckpointError("the checkpoint has no entry for parameter \(quoted(parameter.name))") }
            guard entry.dtype == parameter.dtype.rawValue, entry.count == parameter.count else {
                throw CheckpointError("parameter \(quoted(parameter.name)) is \(entry.count) \(entry.dtype) values in the checkpoint but \(parameter.count) \(parameter.dtype) here")
            }
            try require(file, "param/\(parameter.name)", dtype: parameter.dtype, count: parameter.count)
            if entry.step != nil {
                for (key, shape, optional) in slotLayout() {
                    let name = "state/\(parameter.name)/\(key)"
                    // A slot an option turns on is absent until a step ran with the option on.
                    if optional && file.tensors[name] == nil { continue }
                    try require(file, name, dtype: shape == .scalar ? .float64 : parameter.dtype,
                                count: shape == .scalar ? 1 : parameter.count)
                }
            }
        }
        guard metadata.schedulers.count == schedulers.count else {
            throw CheckpointError("the checkpoint holds \(metadata.schedulers.count) schedulers; \(schedulers.count) were given")
        }
        for (saved, scheduler) in zip(metadata.schedulers, schedulers)
        where saved.schedule != scheduler.schedule.name || saved.baseRates.count != scheduler.groups.count {
            throw CheckpointError("a saved \(saved.schedule) schedule over \(saved.baseRates.count) groups cannot restore a \(scheduler.schedule.name) schedule over \(scheduler.groups.count)")
        }

        // Everything fits: apply.
        for parameter in parameters {
            let entry = entries[parameter.name]!
            file.tensors["param/\(parameter.name)"]!.bytes.copyBytes(
                to: parameter.storage.assumingMemoryBound(to: UInt8.self), count: parameter.count * parameter.dtype.size)
            guard let step = entry.step else {
                states[ObjectIdentifier(parameter)] = nil
                continue
            }
            let state = SlotStorage(count: parameter.count, dtype: parameter.dtype,
                                    elementwiseCount: compiled.totalSlots, scalarCount: compiled.totalScalars)
            state.forEachSlot(chain: compiled) { key, shape, index, memory in
                guard let tensor = file.tensors["state/\(parameter.name)/\(key)"] else { return }
                if shape == .elementwise { state.create(index, value: 0) }
                let target = memory ?? state.elementwise[index]!
                tensor.bytes.copyBytes(to: target.assumingMemoryBound(to: UInt8.self), count: tensor.bytes.count)
            }
            state.step = UInt64(step)
            states[ObjectIdentifier(parameter)] = state
        }
        for (index, saved) in metadata.groups.enumerated() { groups[index].options = saved.options }
        resolved = resolvedOptions
        checkedMembership = []
        skippedSteps = metadata.skippedSteps
        // Checked above, so restoring cannot fail.
        for (saved, scheduler) in zip(metadata.schedulers, schedulers) { try? scheduler.restore(saved) }
    }

    /// Every slot key of the chain with its shape and whether an option turns it on, in chain order.
    private func slotLayout() -> [(key: String, shape: StateSlot.Shape, optional: Bool)] {
        zip(compiled.rules, compiled.slotKeys).flatMap { rule, keys in
            zip(keys, rule.stateSlots).map { ($0, $1.shape, $1.enabledBy != nil) }
        }
    }

    private func require(_ file: SafeTensors, _ name: String, dtype: DType, count: Int) throws(CheckpointError) {
        guard let tensor = file.tensors[name] else { throw CheckpointError("the checkpoint has no tensor \(quoted(name))") }
        guard tensor.dtype == dtype, tensor.count == count else {
            throw CheckpointError("tensor \(quoted(name)) holds \(tensor.count) \(tensor.dtype) values; expected \(count) \(dtype)")
        }
    }
}
