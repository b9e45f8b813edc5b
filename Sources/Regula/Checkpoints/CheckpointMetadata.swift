/// What a checkpoint's safetensors metadata records beside its tensors, under the key `regula`, as JSON: the
/// chain, the groups with their options, each parameter's element type, size and step count, the schedulers'
/// positions and the count of skipped steps.
///
/// Reading it checks every field's type and range and names the first one that does not fit; nothing is
/// narrowed or wrapped.
struct CheckpointMetadata {
    struct RuleEntry: Equatable {
        var name: String
        var version: Int
    }
    struct GroupEntry {
        var parameters: [String]
        var options: [String: Double]
    }
    struct ParameterEntry {
        var name: String
        var dtype: DType
        var count: Int
        /// Steps taken, or nil when the parameter has no state yet.
        var step: Int?
    }

    /// Files written before checksums: read, with their structure checked, but their numbers cannot be.
    static let checksumlessFormat = "regula-checkpoint/1"
    /// Files with checksums of the header and of every tensor (``TensorChecksums``).
    static let currentFormat = "regula-checkpoint/2"
    /// The formats this Regula reads.
    static let readableFormats = [checksumlessFormat, currentFormat]

    /// The largest step count, skipped-step count or scheduler position a checkpoint may hold: 2^53, the
    /// last integer up to which a `Double` counts exactly (rules may compute with the step as a double). At a
    /// step per microsecond it is 285 years of training, so a larger count is a damaged file, not a long run.
    static let maximumCount = 1 << 53

    var format = currentFormat
    var rules: [RuleEntry]
    var groups: [GroupEntry]
    var parameters: [ParameterEntry]
    var schedulers: [LearningRateScheduler.State]
    var skippedSteps: Int

    init(rules: [RuleEntry], groups: [GroupEntry], parameters: [ParameterEntry], schedulers: [LearningRateScheduler.State],
         skippedSteps: Int) {
        self.rules = rules
        self.groups = groups
        self.parameters = parameters
        self.schedulers = schedulers
        self.skippedSteps = skippedSteps
    }

    /// Refuses, before anything is written, a count that ``init(text:)`` would refuse to read back: a step
    /// count, skipped-step count or scheduler position above ``maximumCount``. A checkpoint is never written
    /// that its own reader refuses.
    func checkCounts() throws(CheckpointError) {
        var counts = parameters.map { ("parameter \(quoted($0.name))'s step count", $0.step ?? 0) }
        counts.append(("the skipped-step count", skippedSteps))
        for (index, scheduler) in schedulers.enumerated() {
            counts += [("scheduler \(index)'s step count", scheduler.steps), ("scheduler \(index)'s bad steps", scheduler.badSteps),
                       ("scheduler \(index)'s cooldown", scheduler.cooldownLeft)]
        }
        if let (what, count) = counts.first(where: { $0.1 > Self.maximumCount }) {
            throw CheckpointError("cannot save a checkpoint: \(what) is \(count), more than a checkpoint holds (2^53 = "
                                  + "\(Self.maximumCount), the last whole number a double counts exactly); the file was not written")
        }
    }

    /// The metadata as JSON text (keys sorted, as format 1 wrote them).
    var text: String {
        func options(_ options: [String: Double]) -> OrderedJSON {
            .object(options.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: .double($0.value)) })
        }
        let json = OrderedJSON.object([
            "format": .string(format),
            "groups": .array(groups.map { group in
                .object(["options": options(group.options), "parameters": .array(group.parameters.map(OrderedJSON.string))])
            }),
            "parameters": .array(parameters.map { entry in
                var members: [OrderedJSON.Member] = [.init(key: "count", value: .integer(entry.count)),
                                                     .init(key: "dtype", value: .string(entry.dtype.rawValue)),
                                                     .init(key: "name", value: .string(entry.name))]
                if let step = entry.step { members.append(.init(key: "step", value: .integer(step))) }
                return .object(members)
            }),
            "rules": .array(rules.map { .object(["name": .string($0.name), "version": .integer($0.version)]) }),
            "schedulers": .array(schedulers.map { state in
                .object([
                    "badSteps": .integer(state.badSteps),
                    "baseRates": .array(state.baseRates.map(OrderedJSON.double)),
                    "best": .double(state.best),
                    "cooldownLeft": .integer(state.cooldownLeft),
                    "schedule": .string(state.schedule),
                    "steps": .integer(state.steps),
                ])
            }),
            "skippedSteps": .integer(skippedSteps),
        ])
        return String(decoding: json.serialized, as: UTF8.self)
    }

    /// Reads ``text`` back, as written by this Regula or by one that wrote format 1.
    /// - Throws: ``CheckpointError`` naming a field that is missing, unknown, of the wrong type or out of
    ///   range: the first one met, reading the fields in a fixed order, so a file always gets the same answer.
    init(text: String) throws(CheckpointError) {
        let json: OrderedJSON
        do { json = try OrderedJSON(parsing: Array(text.utf8)) } catch {
            throw CheckpointError("the regula metadata is not valid JSON (\(error)): corrupt file")
        }
        let counts = 0...Self.maximumCount
        let root = try json.fields(of: "the regula metadata",
                                   required: ["format", "rules", "groups", "parameters", "schedulers", "skippedSteps"])
        format = try root["format"]!.text(of: "format")
        guard Self.readableFormats.contains(format) else {
            throw CheckpointError("the checkpoint's format is \(quoted(format)); this Regula reads \(Self.readableFormats.map(quoted).joined(separator: " and "))")
        }
        rules = try root["rules"]!.elements(of: "rules").enumerated().map { index, rule throws(CheckpointError) in
            let place = "rules[\(index)]"
            let fields = try rule.fields(of: place, required: ["name", "version"])
            return RuleEntry(name: try fields["name"]!.text(of: "\(place).name"),
                             version: try fields["version"]!.integer(of: "\(place).version", in: 0...Int(UInt32.max)))
        }
        groups = try root["groups"]!.elements(of: "groups").enumerated().map { index, group throws(CheckpointError) in
            let place = "groups[\(index)]"
            let fields = try group.fields(of: place, required: ["parameters", "options"])
            let names = try fields["parameters"]!.elements(of: "\(place).parameters").enumerated()
                .map { position, name throws(CheckpointError) in try name.text(of: "\(place).parameters[\(position)]") }
            guard let members = fields["options"]!.members else {
                throw CheckpointError("\(place).options is \(fields["options"]!.kind); allowed: an object of numbers")
            }
            var options: [String: Double] = [:]
            for member in members { options[member.key] = try member.value.real(of: "\(place).options.\(member.key)") }
            return GroupEntry(parameters: names, options: options)
        }
        parameters = try root["parameters"]!.elements(of: "parameters").enumerated().map { index, entry throws(CheckpointError) in
            let place = "parameters[\(index)]"
            let fields = try entry.fields(of: place, required: ["name", "dtype", "count"], optional: ["step"])
            let dtypeName = try fields["dtype"]!.text(of: "\(place).dtype")
            guard let dtype = DType(rawValue: dtypeName) else {
                throw CheckpointError("\(place).dtype is \(quoted(dtypeName)); allowed: \(DType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var step: Int?
            if let value = fields["step"], value != .null { step = try value.integer(of: "\(place).step", in: counts) }
            return ParameterEntry(name: try fields["name"]!.text(of: "\(place).name"), dtype: dtype,
                                  count: try fields["count"]!.integer(of: "\(place).count", in: 0...Int.max), step: step)
        }
        schedulers = try root["schedulers"]!.elements(of: "schedulers").enumerated().map { index, entry throws(CheckpointError) in
            let place = "schedulers[\(index)]"
            let fields = try entry.fields(of: place, required: ["schedule", "steps", "baseRates", "best", "badSteps", "cooldownLeft"])
            let rates = try fields["baseRates"]!.elements(of: "\(place).baseRates").enumerated().map { position, rate throws(CheckpointError) in
                let value = try rate.real(of: "\(place).baseRates[\(position)]")
                guard value.isFinite, value >= 0 else {
                    throw CheckpointError("\(place).baseRates[\(position)] is \(value); allowed: a finite rate, 0 or more")
                }
                return value
            }
            let best = try fields["best"]!.real(of: "\(place).best")
            guard !best.isNaN, best != -.infinity else {
                throw CheckpointError("\(place).best is \(best); allowed: a finite loss or inf (no loss seen yet)")
            }
            return LearningRateScheduler.State(
                schedule: try fields["schedule"]!.text(of: "\(place).schedule"),
                steps: try fields["steps"]!.integer(of: "\(place).steps", in: counts),
                baseRates: rates, best: best,
                badSteps: try fields["badSteps"]!.integer(of: "\(place).badSteps", in: counts),
                cooldownLeft: try fields["cooldownLeft"]!.integer(of: "\(place).cooldownLeft", in: counts))
        }
        skippedSteps = try root["skippedSteps"]!.integer(of: "skippedSteps", in: counts)
    }
}
