import Foundation

/// A recorded optimization run: parameters, groups, a rule chain and the gradients of every step, in the
/// format of `regula replay` (the format of the torch reference fixtures).
///
/// ```json
/// {"dtype": "float32", "rules": ["l1", "sgd"], "defaults": {"lr": 0.1, "weight_decay1": 1e-3},
///  "groups": [{"params": ["w"], "lr": 0.01}], "params": {"w": [0.5, -1.0]},
///  "steps": [{"grads": {"w": [0.1, 0.2]}, "set": [{"group": 0, "lr": 0.005}]}]}
/// ```
/// A parameter absent from a step's `grads` has no gradient in that step; `set` changes group options
/// before the step. A group may carry `"rules"`, its own chain in place of the spec's (``ParamGroup/rules``). A string where an option's number would be is a choice's name (`"adjust_lr_fn": "original"`). `params` and any step's `grads` may instead name a safetensors file (a path relative
/// to the spec's folder), so recorded tensors never pass through JSON:
/// `{"params": "params.safetensors", "steps": [{"grads": "grads/0.safetensors"}], …}`.
///
/// The spec is read strictly: a repeated key, a number beyond the element type's range, a parameter in no
/// group or in two, and anything else the format does not allow are refused, naming the field.
public struct ReplaySpec: Sendable {
    /// Where one step's gradients are.
    public enum Gradients: Sendable {
        /// Written in the spec, by parameter name.
        case inline([String: ReplayTensor])
        /// A safetensors file holding one tensor per parameter that has a gradient this step, read when
        /// the step is replayed (so a run's gradients need not fit in memory at once).
        case file(URL)
    }

    /// One recorded step.
    public struct Step: Sendable {
        /// The gradients; a parameter without one is skipped this step, its state untouched.
        public var gradients: Gradients
        /// Option changes applied before the step: (group index, name, value).
        public var changes: [(group: Int, name: String, value: Double)]
        /// Choice changes applied before the step: (group index, name, the choice's name).
        public var choiceChanges: [(group: Int, name: String, choice: String)] = []
    }

    /// Element type of every parameter.
    public var dtype: DType
    /// Rule names, in chain order.
    public var rules: [String]
    /// The optimizer's default options.
    public var defaults: [String: Double]
    /// The optimizer's default choices: the strings of `defaults` in the spec.
    public var defaultChoices: [String: String]
    /// Groups: parameter names and their own options. Every parameter is in exactly one group.
    public var groups: [(parameters: [String], options: [String: Double])]
    /// Each group's own choices, in the order of ``groups``.
    public var groupChoices: [[String: String]]
    /// Each group's own chain, in the order of ``groups``; nil for a group that runs ``rules``.
    public var groupRules: [[String]?]
    /// Initial values by parameter name.
    public var parameters: [String: ReplayTensor]
    /// Shapes by parameter name (row-major, the values in that order); a parameter without one is flat. From
    /// the spec's `"shapes"`, or from the tensors of a safetensors `params` file.
    public var shapes: [String: [Int]]
    /// The steps, in order.
    public var steps: [Step]

    /// Reads the spec file at `url`; file paths inside it are relative to its folder.
    /// - Throws: ``ReplayError`` naming the file and what is wrong with it: missing, a folder, unreadable,
    ///   not JSON (with line and column), or a field that is not allowed.
    public init(contentsOf url: URL) throws(ReplayError) {
        let data: Data
        do { data = try FileContents.read(url) } catch { throw ReplayError(error.description) }
        do {
            try self.init(json: data, relativeTo: url.deletingLastPathComponent(), source: url.path)
        } catch where url.pathExtension == "safetensors" && data.first != UInt8(ascii: "{") {
            throw ReplayError("\(url.path) is a safetensors file, not a replay spec: a spec is JSON and names its safetensors "
                              + "files in params and each step's grads (Docs/REPLAY.md)")
        }
    }

    /// Parses a spec from JSON, checking its shape and every name it uses. A document with a `spec` member
    /// (a reference fixture file) is read through to that member. File paths in the spec are resolved
    /// against `folder` (the current directory when nil), and the files are checked to be there; the
    /// `params` file is read now, each step's `grads` file when the step runs.
    /// - Throws: ``ReplayError`` naming the offending field, file, or line and column.
    public init(json data: Data, relativeTo folder: URL? = nil) throws(ReplayError) {
        try self.init(json: data, relativeTo: folder, source: "the spec")
    }

    /// `source` names the document in syntax errors: a path, "standard input" or "the spec".
    package init(json data: Data, relativeTo folder: URL?, source: String) throws(ReplayError) {
        // A byte order mark, which some editors write, is no part of the JSON.
        let text = data.starts(with: [0xEF, 0xBB, 0xBF]) ? data.dropFirst(3) : data
        var document: JSONValue
        do { document = try JSONValue(parsing: text, packingNumberArrays: true) } catch { throw ReplayError("\(source), \(error)") }
        guard document.members != nil else {
            throw ReplayError("\(source) holds \(document.kind); a replay spec is a JSON object")
        }
        if let inner = document["spec"], inner.members != nil { document = inner }
        let reader = JSONFieldReader<ReplayError>()
        let files = SpecFiles(folder: folder ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true))
        let root = try reader.object(document, at: "spec", keys: ["dtype", "rules", "defaults", "groups", "params", "shapes", "steps"])

        var named: DType?
        if let value = root["dtype"] {
            let name = try reader.string(value, at: "spec.dtype")
            guard let dtype = DType(rawValue: name) else { throw ReplayError("spec.dtype is \(quoted(name)); allowed: float32, float64") }
            named = dtype
        }
        rules = try reader.strings(root["rules"], at: "spec.rules")
        (defaults, defaultChoices) = try Self.optionValues(reader.object(root["defaults"] ?? .object([]), at: "spec.defaults"),
                                                           at: "spec.defaults", reader)

        var fileShapes: [String: [Int]] = [:]
        if case .string(let path)? = root["params"] {
            (self.parameters, fileShapes, self.dtype) = try files.parameters(path, dtype: named)
        } else {
            let dtype = named ?? .float32
            var parameters: [String: ReplayTensor] = [:]
            for (name, values) in try Self.tensors(root["params"], at: "spec.params", reader) {
                parameters[name] = try Self.tensor(values, as: dtype, at: "spec.params.\(name)", reader)
            }
            (self.parameters, self.dtype) = (parameters, dtype)
        }
        let (parameters, dtype) = (self.parameters, self.dtype)
        if let (first, second) = NameNormalization.firstClash(in: parameters.keys.sorted()) {
            throw ReplayError("spec.params defines two parameters whose names read alike: " + NameNormalization.clash(first, second))
        }
        shapes = try Self.shapes(root["shapes"], of: parameters, fromFile: fileShapes, reader)
        let read = try Self.groups(root["groups"], of: parameters, reader)
        let groups = read.map { ($0.parameters, $0.options) }
        (self.groups, groupChoices, groupRules) = (groups, read.map(\.choices), read.map(\.rules))
        steps = try reader.array(root["steps"], at: "spec.steps").enumerated().map { index, entry throws(ReplayError) in
            try Self.step(entry, at: "spec.steps[\(index)]", parameters: parameters, dtype: dtype, groupCount: groups.count,
                          reader, files)
        }
    }

    private static func groups(_ value: JSONValue?, of parameters: [String: ReplayTensor], _ reader: JSONFieldReader<ReplayError>)
        throws(ReplayError) -> [(parameters: [String], options: [String: Double], choices: [String: String], rules: [String]?)] {
        var owner: [String: String] = [:]
        let groups = try reader.array(value, at: "spec.groups").enumerated().map { index, entry throws(ReplayError) in
            let place = "spec.groups[\(index)]"
            var fields = try reader.object(entry, at: place)
            let names = try reader.strings(fields.removeValue(forKey: "params"), at: "\(place).params")
            for name in names {
                try checkSpelling(of: name, at: "\(place).params", against: parameters)
                guard parameters[name] != nil else {
                    throw ReplayError("\(place).params lists parameter \(quoted(name)), which spec.params does not define"
                                      + didYouMean(name, among: parameters.keys.sorted()))
                }
                if let earlier = owner.updateValue(place, forKey: name) {
                    throw ReplayError(earlier == place ? "\(place).params lists parameter \(quoted(name)) twice"
                                      : "parameter \(quoted(name)) is in \(earlier) and in \(place); a parameter belongs to one group")
                }
            }
            let rules = try fields.removeValue(forKey: "rules").map { (value) throws(ReplayError) in
                try reader.strings(value, at: "\(place).rules")
            }
            let (options, choices) = try optionValues(fields, at: place, reader)
            return (names, options, choices, rules)
        }
        if let stray = parameters.keys.sorted().first(where: { owner[$0] == nil }) {
            throw ReplayError("parameter \(quoted(stray)) is in no group, so its gradients would be ignored; "
                              + "list it in the params of one of spec.groups (or leave it out of spec.params)")
        }
        return groups
    }

    private static func step(_ entry: JSONValue, at place: String, parameters: [String: ReplayTensor], dtype: DType,
                             groupCount: Int, _ reader: JSONFieldReader<ReplayError>, _ files: SpecFiles) throws(ReplayError) -> Step {
        let fields = try reader.object(entry, at: place, keys: ["grads", "set"])
        let gradients: Gradients
        if case .string(let path)? = fields["grads"] {
            gradients = .file(try files.existing(path, at: "\(place).grads"))
        } else {
            var inline: [String: ReplayTensor] = [:]
            for (name, values) in try tensors(fields["grads"] ?? .object([]), at: "\(place).grads", reader) {
                let gradient = try tensor(values, as: dtype, at: "\(place).grads.\(name)", reader)
                try checkGradient(name, count: gradient.count, against: parameters, at: "\(place).grads")
                inline[name] = gradient
            }
            gradients = .inline(inline)
        }
        var changes: [(group: Int, name: String, value: Double)] = []
        var choiceChanges: [(group: Int, name: String, choice: String)] = []
        for (position, change) in try reader.array(fields["set"] ?? .array([]), at: "\(place).set").enumerated() {
            var options = try reader.object(change, at: "\(place).set[\(position)]")
            let group = try reader.number(options.removeValue(forKey: "group"), at: "\(place).set[\(position)].group")
            guard group == group.rounded(), (0..<Double(groupCount)).contains(group) else {
                throw ReplayError("\(place).set[\(position)].group is \(format(group)); allowed: "
                                  + (groupCount == 0 ? "none, the spec has no groups" : "a whole number from 0 to \(groupCount - 1)"))
            }
            let (numbers, choices) = try optionValues(options, at: "\(place).set[\(position)]", reader)
            changes += numbers.sorted { $0.key < $1.key }.map { (Int(group), $0.key, $0.value) }
            choiceChanges += choices.sorted { $0.key < $1.key }.map { (Int(group), $0.key, $0.value) }
        }
        return Step(gradients: gradients, changes: changes, choiceChanges: choiceChanges)
    }

    /// Option values: the strings, which are choices' names, apart from the numbers.
    private static func optionValues(_ members: [String: JSONValue], at place: String, _ reader: JSONFieldReader<ReplayError>)
        throws(ReplayError) -> (options: [String: Double], choices: [String: String]) {
        var numbers = members, choices: [String: String] = [:]
        for case let (name, .string(choice)) in members {
            choices[name] = choice
            numbers[name] = nil
        }
        return (try reader.numbers(numbers, at: place), choices)
    }

    /// The members of a `params` or `grads` object, sorted by name (so the first problem reported is always
    /// the same one); the message for anything else says that a file path is allowed too.
    private static func tensors(_ value: JSONValue?, at place: String, _ reader: JSONFieldReader<ReplayError>)
        throws(ReplayError) -> [(key: String, value: JSONValue)] {
        guard let members = value?.members else {
            throw reader.mismatch(place, "an object of arrays of numbers, by name, or the path of a safetensors file", value)
        }
        return members.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// An array of numbers, rounded to `dtype`; every number must be within its range.
    private static func tensor(_ value: JSONValue, as dtype: DType, at place: String, _ reader: JSONFieldReader<ReplayError>)
        throws(ReplayError) -> ReplayTensor {
        switch value {
        case .numbers(let numbers): return try ReplayTensor(numbers, as: dtype, at: place)
        case .array(let elements):
            // Some element is not a number: name the first.
            let numbers = try elements.enumerated().map { index, element throws(ReplayError) in
                try reader.number(element, at: "\(place)[\(index)]")
            }
            return try ReplayTensor(numbers, as: dtype, at: place)
        default: throw reader.mismatch(place, "an array of numbers", value)
        }
    }

    /// Refuses a gradient for a parameter the spec does not define, or of another length.
    static func checkGradient(_ name: String, count: Int, against parameters: [String: ReplayTensor], at place: String)
        throws(ReplayError) {
        try checkSpelling(of: name, at: place, against: parameters)
        guard let parameter = parameters[name] else {
            throw ReplayError("\(place) has a gradient for parameter \(quoted(name)), which spec.params does not define"
                              + didYouMean(name, among: parameters.keys.sorted()))
        }
        guard count == parameter.count else {
            throw ReplayError("\(place): the gradient for parameter \(quoted(name)) has \(count) elements; the parameter has \(parameter.count)")
        }
    }
}

extension ReplaySpec {
    /// Refuses `name` when spec.params defines a parameter whose name reads the same (equal after NFKC) but
    /// is spelled with other scalars: Swift's `==` would match some such pairs and not others, and either
    /// way the spec would mean something other than what it shows.
    static func checkSpelling(of name: String, at place: String, against parameters: [String: ReplayTensor])
        throws(ReplayError) {
        let defined = parameters.index(forKey: name).map { parameters[$0].key }
            ?? parameters.keys.sorted().first { NameNormalization.key($0) == NameNormalization.key(name) }
        guard let defined, NameNormalization.spelledDifferently(defined, name) else { return }
        throw ReplayError("\(place) names parameter \(NameNormalization.spelled(name)), but spec.params defines "
                          + "\(NameNormalization.spelled(defined)), a different string that reads as the same name (equal "
                          + "after Unicode NFKC normalization); spell both the same way")
    }

    /// `spec.shapes`: for each parameter named, whole numbers that multiply to its number of values. A
    /// safetensors `params` file brings its own shapes, which a `shapes` entry must then repeat.
    private static func shapes(_ value: JSONValue?, of parameters: [String: ReplayTensor], fromFile: [String: [Int]],
                               _ reader: JSONFieldReader<ReplayError>) throws(ReplayError) -> [String: [Int]] {
        var shapes = fromFile
        for (name, sizes) in try reader.object(value ?? .object([]), at: "spec.shapes") {
            let place = "spec.shapes.\(name)"
            guard let values = parameters[name] else {
                throw ReplayError("\(place) names no parameter; spec.params defines \(parameters.keys.sorted().map(quoted).joined(separator: ", "))")
            }
            let shape = try reader.array(sizes, at: place).enumerated().map { axis, size throws(ReplayError) in
                try reader.integer(size, at: "\(place)[\(axis)]", in: 0...Int.max)
            }
            if let recorded = fromFile[name], recorded != shape {
                throw ReplayError("\(place) is \(shape), but the params file records shape \(recorded) for \(quoted(name))")
            }
            do { try Parameter.check(shape, count: values.count, name: name) } catch {
                throw ReplayError("\(place): \(error)", optimizerError: error)
            }
            shapes[name] = shape
        }
        return shapes
    }
}

/// A replay spec that is not well formed, or a file it names that cannot be used; the message names the
/// field or file and what is allowed.
public struct ReplayError: Error, Sendable, CustomStringConvertible {
    /// What is wrong and where.
    public let description: String
    /// The optimizer's refusal, when the spec's rules or options were refused or one of its steps failed.
    public let optimizerError: OptimizerError?
    init(_ description: String) {
        self.description = description
        optimizerError = nil
    }
    init(_ description: String, optimizerError: OptimizerError) {
        self.description = description
        self.optimizerError = optimizerError
    }
}
