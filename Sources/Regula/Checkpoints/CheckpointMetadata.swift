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
        /// Choices by name; written only when there are some, so files without them read as before.
        var choices: [String: String] = [:]
        /// The group's own chain, when it runs one other than the optimizer's (``ParamGroup/rules``); nil
        /// for the optimizer's, and in every file written before groups had chains.
        var rules: [RuleEntry]? = nil
    }
    struct ParameterEntry {
        var name: String
        var dtype: DType
        var count: Int
        /// The parameter's shape; nil in a file written before parameters had shapes, which then loads into
        /// a parameter of any shape with as many values.
        var shape: [Int]?
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

    /// The fields of the metadata object, every one required.
    private static let fields = ["format", "rules", "groups", "parameters", "schedulers", "skippedSteps"]

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
        func options(_ options: [String: Double]) -> JSONValue {
            .object(options.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: .double($0.value)) })
        }
        let json = JSONValue.object([
            "format": .string(format),
            "groups": .array(groups.map { group in
                let choices = JSONValue.object(group.choices.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: .string($0.value)) })
            return .object((group.choices.isEmpty ? [] : [.init(key: "choices", value: choices)])
                           + [.init(key: "options", value: options(group.options)),
                              .init(key: "parameters", value: .array(group.parameters.map(JSONValue.string)))]
                           + (group.rules.map { [.init(key: "rules", value: ruleList($0))] } ?? []))
            }),
            "parameters": .array(parameters.map { entry in
                var members: [JSONValue.Member] = [.init(key: "count", value: .integer(entry.count)),
                                                     .init(key: "dtype", value: .string(entry.dtype.rawValue)),
                                                     .init(key: "name", value: .string(entry.name))]
                if let shape = entry.shape { members.append(.init(key: "shape", value: .array(shape.map(JSONValue.integer)))) }
                if let step = entry.step { members.append(.init(key: "step", value: .integer(step))) }
                return .object(members)
            }),
            "rules": ruleList(rules),
            "schedulers": .array(schedulers.map { state in
                .object([
                    "badSteps": .integer(state.badSteps),
                    "baseRates": .array(state.baseRates.map(JSONValue.double)),
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

    /// A chain as the metadata writes it: each rule's name and version.
    private func ruleList(_ rules: [RuleEntry]) -> JSONValue {
        .array(rules.map { .object(["name": .string($0.name), "version": .integer($0.version)]) })
    }

    /// Reads ``text`` back, as written by this Regula or by one that wrote format 1.
    /// - Throws: ``CheckpointError`` naming a field that is missing, unknown, of the wrong type or out of
    ///   range: the first one met, reading the fields in a fixed order, so a file always gets the same answer.
    init(text: String) throws(CheckpointError) {
        let json: JSONValue
        do { json = try JSONValue(parsing: Array(text.utf8)) } catch {
            throw CheckpointError("the regula metadata is not valid JSON (\(error)): corrupt file")
        }
        let read = JSONFieldReader<CheckpointError>()
        let counts = 0...Self.maximumCount
        let root = try read.object(json, at: "the regula metadata", keys: Self.fields, required: Self.fields)
        format = try read.string(root["format"], at: "format")
        guard Self.readableFormats.contains(format) else {
            throw CheckpointError("the checkpoint's format is \(quoted(format)); this Regula reads \(Self.readableFormats.map(quoted).joined(separator: " and "))")
        }
        rules = try Self.ruleList(root["rules"], at: "rules", read)
        groups = try read.array(root["groups"], at: "groups").enumerated().map { index, group throws(CheckpointError) in
            let place = "groups[\(index)]"
            let fields = try read.object(group, at: place, keys: ["parameters", "options", "choices", "rules"], required: ["parameters", "options"])
            let names = try read.strings(fields["parameters"], at: "\(place).parameters")
            guard let members = fields["options"]!.members else {
                throw read.mismatch("\(place).options", "an object of numbers", fields["options"])
            }
            var options: [String: Double] = [:]
            for member in members { options[member.key] = try read.real(member.value, at: "\(place).options.\(member.key)") }
            var choices: [String: String] = [:]
            for (key, value) in try read.object(fields["choices"] ?? .object([]), at: "\(place).choices") {
                choices[key] = try read.string(value, at: "\(place).choices.\(key)")
            }
            let rules = try fields["rules"].map { (list) throws(CheckpointError) in try Self.ruleList(list, at: "\(place).rules", read) }
            return GroupEntry(parameters: names, options: options, choices: choices, rules: rules)
        }
        parameters = try read.array(root["parameters"], at: "parameters").enumerated().map { index, entry throws(CheckpointError) in
            let place = "parameters[\(index)]"
            let fields = try read.object(entry, at: place, keys: ["name", "dtype", "count", "shape", "step"], required: ["name", "dtype", "count"])
            let dtypeName = try read.string(fields["dtype"], at: "\(place).dtype")
            guard let dtype = DType(rawValue: dtypeName) else {
                throw CheckpointError("\(place).dtype is \(quoted(dtypeName)); allowed: \(DType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var step: Int?
            if let value = fields["step"], value != .null { step = try read.integer(value, at: "\(place).step", in: counts) }
            let count = try read.integer(fields["count"], at: "\(place).count", in: 0...Int.max)
            var shape: [Int]?
            if let value = fields["shape"] {
                let sizes = try read.array(value, at: "\(place).shape").enumerated().map { axis, size throws(CheckpointError) in
                    try read.integer(size, at: "\(place).shape[\(axis)]", in: 0...count)
                }
                guard (1...Parameter.maximumRank).contains(sizes.count), sizes.reduce(1, *) == count else {
                    throw CheckpointError("\(place).shape \(sizes) is not the shape of \(count) values: corrupt file")
                }
                shape = sizes
            }
            return ParameterEntry(name: try read.string(fields["name"], at: "\(place).name"), dtype: dtype,
                                  count: count, shape: shape, step: step)
        }
        schedulers = try read.array(root["schedulers"], at: "schedulers").enumerated().map { index, entry throws(CheckpointError) in
            let place = "schedulers[\(index)]"
            let keys = ["schedule", "steps", "baseRates", "best", "badSteps", "cooldownLeft"]
            let fields = try read.object(entry, at: place, keys: keys, required: keys)
            let rates = try read.array(fields["baseRates"], at: "\(place).baseRates").enumerated().map { position, rate throws(CheckpointError) in
                let value = try read.real(rate, at: "\(place).baseRates[\(position)]")
                guard value.isFinite, value >= 0 else {
                    throw CheckpointError("\(place).baseRates[\(position)] is \(value); allowed: a finite rate, 0 or more")
                }
                return value
            }
            let best = try read.real(fields["best"], at: "\(place).best")
            guard !best.isNaN, best != -.infinity else {
                throw CheckpointError("\(place).best is \(best); allowed: a finite loss or inf (no loss seen yet)")
            }
            return LearningRateScheduler.State(
                schedule: try read.string(fields["schedule"], at: "\(place).schedule"),
                steps: try read.integer(fields["steps"], at: "\(place).steps", in: counts),
                baseRates: rates, best: best,
                badSteps: try read.integer(fields["badSteps"], at: "\(place).badSteps", in: counts),
                cooldownLeft: try read.integer(fields["cooldownLeft"], at: "\(place).cooldownLeft", in: counts))
        }
        skippedSteps = try read.integer(root["skippedSteps"], at: "skippedSteps", in: counts)
    }

    /// A chain written by ``ruleList(_:)``, read at `place`.
    private static func ruleList(_ value: JSONValue?, at place: String, _ read: JSONFieldReader<CheckpointError>)
        throws(CheckpointError) -> [RuleEntry] {
        try read.array(value, at: place).enumerated().map { index, rule throws(CheckpointError) in
            let place = "\(place)[\(index)]"
            let fields = try read.object(rule, at: place, keys: ["name", "version"], required: ["name", "version"])
            return RuleEntry(name: try read.string(fields["name"], at: "\(place).name"),
                             version: try read.integer(fields["version"], at: "\(place).version", in: 0...Int(UInt32.max)))
        }
    }
}
