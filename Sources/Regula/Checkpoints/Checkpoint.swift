import Foundation

/// How the numbers of a loaded checkpoint were checked.
public enum CheckpointIntegrity: Sendable, Equatable {
    /// The file's header and every tensor matched the CRC-32C checksums recorded in it.
    case verified
    /// The file was written by a Regula from before checksums (format `regula-checkpoint/1`): its structure
    /// and every value's range were checked, but a changed bit in its numbers cannot be detected. Saving it
    /// again adds the checksums.
    case unchecked
}

extension Optimizer {
    /// Saves the whole optimizer to `url` in safetensors: every parameter's values (`param/NAME`), every state
    /// slot (`state/NAME/SLOT`), and in its metadata the chain, the groups with their options, step counts,
    /// the position of each scheduler in `schedulers`, and a CRC-32C checksum of the header and of each tensor
    /// (Docs/Checkpoints.md describes the format).
    ///
    /// The write is atomic: the file at `url` is either the old one or the complete new one, even if the
    /// process dies while saving.
    /// - Throws: ``CheckpointError`` when two parameters share a name, a step count is above 2^53 (the
    ///   largest a checkpoint holds, which ``loadCheckpoint(from:schedulers:requireChecksums:)`` would
    ///   refuse), or the file cannot be written; the file at `url` is then left as it was.
    public func saveCheckpoint(to url: URL, schedulers: [LearningRateScheduler] = []) throws(CheckpointError) {
        try withStoredStates { (stored) throws(CheckpointError) in
            let parameters = groups.flatMap(\.parameters)
            if let repeated = duplicates(in: parameters.map(\.name)).first {
                throw CheckpointError("two parameters are named \(quoted(repeated)); a checkpoint needs unique names")
            }
            var file = SafeTensors()
            var entries: [CheckpointMetadata.ParameterEntry] = []
            for (group, parameter) in groups.flatMap({ group in group.parameters.map { (group, $0) } }) {
                let state = stored(parameter)
                for tensor in checkpointTensors(of: parameter, state: state) {
                    guard file.tensors[tensor.name] == nil else {
                        throw CheckpointError("two tensors would be named \(quoted(tensor.name)); rename parameter \(quoted(parameter.name))")
                    }
                    let bytes: Data
                    if let memory = tensor.memory {
                        bytes = Data(bytes: memory, count: tensor.byteCount)
                    } else if state != nil, isSwitchedOn(tensor, options: group.options) != nil,
                              let start = startValue(of: tensor, options: group.options) {
                        // Turned on, but no step has made it yet: the next step would start it at this value.
                        bytes = Self.filled(start, count: tensor.count, dtype: tensor.dtype)
                    } else {
                        continue   // a slot no option has turned on
                    }
                    let refusal = bytes.withUnsafeBytes {
                        valueProblem($0, of: tensor, label: label(of: tensor, parameter: parameter))
                    }
                    if let refusal { throw CheckpointError("cannot save: \(refusal) (the run diverged?); nothing was written") }
                    file.tensors[tensor.name] = SafeTensors.Tensor(dtype: tensor.dtype, bytes: bytes, shape: tensor.shape)
                }
                entries.append(.init(name: parameter.name, dtype: parameter.dtype, count: parameter.count, shape: parameter.shape,
                                     step: state.map { Int(clamping: $0.step) }))
            }
            let ruleEntries = { (chain: GroupChain) in chain.chain.rules.map { CheckpointMetadata.RuleEntry(name: $0.name, version: $0.version) } }
            let groupEntries = try groups.indices.map { (index) throws(CheckpointError) -> CheckpointMetadata.GroupEntry in
                let chain = try checkedChain(ofGroup: index)
                return .init(parameters: groups[index].parameters.map(\.name), options: groups[index].options,
                             choices: groups[index].choices, rules: chain === chains[0] ? nil : ruleEntries(chain))
            }
            let metadata = CheckpointMetadata(
                rules: ruleEntries(chains[0]), groups: groupEntries,
                parameters: entries, schedulers: schedulers.map(\.state), skippedSteps: skippedSteps)
            try metadata.checkCounts()
            file.metadata[Self.formatKey] = metadata.format
            file.metadata[Self.metadataKey] = metadata.text
            let bytes: Data
            do { bytes = try file.encoded() } catch { throw error as? CheckpointError ?? CheckpointError("cannot encode the checkpoint: \(error)") }
            try AtomicFile.write(bytes, to: url)
        }
    }

    /// Restores the optimizer, its parameters' values and the given schedulers from a checkpoint made by
    /// ``saveCheckpoint(to:schedulers:)`` for the same rules, groups and parameters.
    ///
    /// `url` must name a regular file no larger than the machine's memory: a named pipe, a device or a socket
    /// is refused without being read (one could block forever, another never end).
    ///
    /// Everything is checked before anything changes: the file's checksums, its structure (as strictly as
    /// Python's safetensors checks it), every recorded number's type and range, and that it fits this
    /// optimizer (the same rules, parameter names, sizes and element types, and schedules). A file that fails
    /// any check is refused with the reason, and the optimizer, its parameters and the schedulers stay exactly
    /// as they were.
    ///
    /// A file written before checksums existed (format `regula-checkpoint/1`) is loaded after the same
    /// structural checks and reported as ``CheckpointIntegrity/unchecked``, unless `requireChecksums` is true.
    /// - Returns: Whether the numbers were verified against checksums.
    /// - Throws: ``CheckpointError``.
    @discardableResult
    public func loadCheckpoint(from url: URL, schedulers: [LearningRateScheduler] = [],
                               requireChecksums: Bool = false) throws(CheckpointError) -> CheckpointIntegrity {
        // Read with POSIX calls (Foundation's Data(contentsOf:) leaks 4 KiB for every empty file it reads), and
        // only from a regular file: a FIFO would block the open and /dev/zero never ends.
        let file: SafeTensors
        do { file = try SafeTensors(contentsOf: url) } catch {
            switch error {
            case .unreadable(let error): throw CheckpointError("\(error.description); nothing was changed")
            case .malformed(let error): throw CheckpointError("cannot load \(url.path): \(error.description); nothing was changed")
            }
        }
        do {
            return try withStoredStates { _ throws(CheckpointError) in
                try load(file, schedulers: schedulers, requireChecksums: requireChecksums)
            }
        } catch {
            throw CheckpointError("cannot load \(url.path): \(error.description); nothing was changed")
        }
    }

    /// The chain group `index` runs, refused for a group given rules through ``groups`` that no step has
    /// checked yet.
    private func checkedChain(ofGroup index: Int) throws(CheckpointError) -> GroupChain {
        guard let chain = groupChain(ofGroup: index) else {
            throw CheckpointError("group \(index) names rules \((groups[index].rules ?? []).joined(separator: " > ")), which no step has "
                                  + "checked yet; take a step or add the group with addGroup(_:) first")
        }
        return chain
    }

    /// The metadata keys of a checkpoint: the format, and the JSON of ``CheckpointMetadata``.
    private static let formatKey = "format", metadataKey = "regula"

    /// Checks `file` against the optimizer and restores it, under the optimizer's lock.
    private func load(_ file: SafeTensors, schedulers: [LearningRateScheduler], requireChecksums: Bool) throws(CheckpointError) -> CheckpointIntegrity {
        guard let text = file.metadata[Self.metadataKey], let format = file.metadata[Self.formatKey] else {
            throw CheckpointError("a safetensors file but not a Regula checkpoint (its metadata has no \(quoted(Self.metadataKey)) and \(quoted(Self.formatKey)) entries)")
        }
        for key in file.metadata.keys.sorted() where key != Self.metadataKey && key != Self.formatKey {
            throw CheckpointError("the metadata has an unknown entry \(quoted(key)); a Regula checkpoint holds \(quoted(Self.formatKey)), \(quoted(Self.metadataKey)) and \(quoted(TensorChecksums.metadataKey))")
        }
        let metadata = try CheckpointMetadata(text: text)
        guard format == metadata.format else {
            throw CheckpointError("the metadata says format \(quoted(format)) in one place and \(quoted(metadata.format)) in another: corrupt file")
        }
        if file.integrity == .unchecked {
            guard format == CheckpointMetadata.checksumlessFormat else {
                throw CheckpointError("a \(format) file must record checksums, and this one has none: its \(quoted(TensorChecksums.metadataKey)) entry is missing or damaged")
            }
            guard !requireChecksums else {
                throw CheckpointError("the file was written before checksums (\(format)), and checksums are required; load it without requiring them and save it again to add them")
            }
        }

        // Does it fit this optimizer?
        let ours = rules.map(\.name), theirs = metadata.rules.map(\.name)
        guard ours == theirs else {
            throw CheckpointError("the checkpoint was made with rules \(theirs.joined(separator: " > ")); this optimizer runs \(ours.joined(separator: " > "))")
        }
        guard metadata.groups.count == groups.count else {
            throw CheckpointError("the checkpoint has \(metadata.groups.count) groups; this optimizer has \(groups.count)")
        }
        for (index, (saved, group)) in zip(metadata.groups, groups).enumerated() where saved.parameters != group.parameters.map(\.name) {
            throw CheckpointError("group \(index) holds parameters \(saved.parameters) in the checkpoint but \(group.parameters.map(\.name)) here")
        }
        let groupChains = try groups.indices.map { (index) throws(CheckpointError) -> GroupChain in
            let chain = try checkedChain(ofGroup: index)
            let saved = (metadata.groups[index].rules ?? metadata.rules).map(\.name), here = chain.chain.rules.map(\.name)
            guard saved == here else {
                throw CheckpointError("group \(index) ran rules \(saved.joined(separator: " > ")) in the checkpoint; here it runs "
                                      + "\(here.joined(separator: " > ")), so its state would not fit")
            }
            return chain
        }
        let parameters = groups.flatMap(\.parameters)
        if let repeated = duplicates(in: parameters.map(\.name)).first {
            throw CheckpointError("two parameters are named \(quoted(repeated)); a checkpoint needs unique names")
        }
        guard metadata.parameters.map(\.name) == parameters.map(\.name) else {
            throw CheckpointError("the checkpoint describes parameters \(metadata.parameters.map(\.name)) but its groups hold \(parameters.map(\.name)): corrupt file")
        }
        var resolvedOptions: [ResolvedOptions] = []
        for (index, (saved, groupChain)) in zip(metadata.groups, groupChains).enumerated() {
            let chain = groupChain.chain
            if let missing = chain.hyperparameterNames.first(where: { saved.options[$0] == nil && saved.choices[$0] == nil }) {
                let readers = chain.rules.filter { $0.hyperparameter(named: missing) != nil }.map { quoted($0.name) }
                throw CheckpointError("the checkpoint's options for group \(index) lack \(quoted(missing)), which rule "
                    + "\(readers.joined(separator: ", ")) reads; a checkpoint records every option of its chain (\(chain.hyperparameterNames.joined(separator: ", ")))")
            }
            do { resolvedOptions.append(try chain.resolve(saved.options, choices: saved.choices, group: index)) } catch {
                throw CheckpointError("the checkpoint's options for group \(index) are refused: \(error)")
            }
        }
        // Every tensor it must hold, and no other; state is read into fresh storage.
        var expected: Set<String> = []
        var values: [(CheckpointTensor, SafeTensors.Tensor)] = []
        var staged: [(Parameter, SlotStorage?)] = []
        let optionsOf = Dictionary(metadata.groups.flatMap { group in group.parameters.map { ($0, group.options) } },
                                   uniquingKeysWith: { first, _ in first })
        let chainOf = zip(groups, groupChains).flatMap { group, chain in group.parameters.map { _ in chain } }
        for ((parameter, entry), groupChain) in zip(zip(parameters, metadata.parameters), chainOf) {
            guard entry.dtype == parameter.dtype, entry.count == parameter.count else {
                throw CheckpointError("parameter \(quoted(parameter.name)) is \(entry.count) \(entry.dtype) values in the checkpoint but \(parameter.count) \(parameter.dtype) here")
            }
            if let shape = entry.shape, shape != parameter.shape {
                throw CheckpointError("parameter \(quoted(parameter.name)) has shape \(shape) in the checkpoint but \(parameter.shape) here")
            }
            let state = entry.step.map { _ in newState(for: parameter, chain: groupChain.compiled) }
            let tensors = checkpointTensors(of: parameter, state: state)
            let options = optionsOf[parameter.name] ?? [:]
            for tensor in tensors {
                guard let saved = file.tensors[tensor.name] else {
                    if let on = isSwitchedOn(tensor, options: options) {
                        throw CheckpointError("the checkpoint has no tensor \(quoted(tensor.name)), which rule \(quoted(on.rule.name)) "
                            + "keeps while \(quoted(on.option)) is on, and it is on in the checkpoint's options")
                    }
                    if tensor.optional { continue }
                    throw CheckpointError("the checkpoint has no tensor \(quoted(tensor.name))")
                }
                guard saved.dtype == tensor.dtype, saved.count == tensor.count else {
                    throw CheckpointError("tensor \(quoted(tensor.name)) holds \(saved.count) \(saved.dtype) values; expected \(tensor.count) \(tensor.dtype)")
                }
                let what = label(of: tensor, parameter: parameter)
                let start = entry.step == 0 ? startValue(of: tensor, options: options) : nil
                let refusal = saved.bytes.withUnsafeBytes { bytes in
                    valueProblem(bytes, of: tensor, label: what)
                        ?? start.flatMap { stepZeroProblem(bytes, of: tensor, start: $0, label: what) }
                }
                if let refusal { throw CheckpointError("the checkpoint is refused: \(refusal)") }
                expected.insert(tensor.name)
            }
            values.append((tensors[0], file.tensors[tensors[0].name]!))
            // State goes into the fresh storage now; the parameter's own values only once everything is checked.
            for tensor in tensors.dropFirst() {
                guard let saved = file.tensors[tensor.name] else { continue }
                saved.bytes.copyBytes(to: tensor.create().assumingMemoryBound(to: UInt8.self), count: tensor.byteCount)
            }
            if let state, let step = entry.step { state.step = UInt64(step) }
            staged.append((parameter, state))
        }
        if let unexpected = file.fileOrder.first(where: { !expected.contains($0) }) {
            throw CheckpointError("the checkpoint holds a tensor \(quoted(unexpected)) that this optimizer has no place for")
        }

        if let mismatch = LearningRateScheduler.mismatch(metadata.schedulers, restoring: schedulers) {
            throw CheckpointError(mismatch)
        }

        // Everything fits: apply.
        for (tensor, saved) in values {
            saved.bytes.copyBytes(to: tensor.create().assumingMemoryBound(to: UInt8.self), count: tensor.byteCount)
        }
        restore(states: staged, resolved: resolvedOptions, skippedSteps: metadata.skippedSteps)
        // Checked above, so restoring cannot fail.
        for (saved, scheduler) in zip(metadata.schedulers, schedulers) { try? scheduler.restore(saved) }
        return file.integrity == .verified ? .verified : .unchecked
    }
}
