import Foundation

/// A recorded optimization run: parameters, groups, a rule chain and the gradients of every step, in the
/// JSON format of `regula replay` (the format of the torch reference fixtures).
///
/// ```json
/// {"dtype": "float32", "rules": ["l1", "sgd"], "defaults": {"lr": 0.1, "weight_decay1": 1e-3},
///  "groups": [{"params": ["w"], "lr": 0.01}], "params": {"w": [0.5, -1.0]},
///  "steps": [{"grads": {"w": [0.1, 0.2]}, "set": [{"group": 0, "lr": 0.005}]}]}
/// ```
/// A parameter absent from a step's `grads` has no gradient in that step; `set` changes group options
/// before the step.
public struct ReplaySpec: Sendable {
    /// One recorded step.
    public struct Step: Sendable {
        /// Gradients by parameter name; a parameter not listed has none this step.
        public var gradients: [String: [Double]]
        /// Option changes applied before the step: (group index, name, value).
        public var changes: [(group: Int, name: String, value: Double)]
    }

    /// Element type of every parameter.
    public var dtype: DType
    /// Rule names, in chain order.
    public var rules: [String]
    /// The optimizer's default options.
    public var defaults: [String: Double]
    /// Groups: parameter names and their own options.
    public var groups: [(parameters: [String], options: [String: Double])]
    /// Initial values by parameter name.
    public var parameters: [String: [Double]]
    /// The steps, in order.
    public var steps: [Step]

    /// Parses a spec from JSON, checking its shape and every name it uses. A document with a `spec` member
    /// (a reference fixture file) is read through to that member.
    /// - Throws: ``ReplayError`` naming the offending field.
    public init(json data: Data) throws(ReplayError) {
        guard case .object(var root)? = JSONValue.parse(data) else { throw ReplayError("the spec is not a JSON object") }
        if case .object(let inner)? = root["spec"] { root = inner }
        let reader = JSONFieldReader(path: "spec")
        try reader.allowOnly(["dtype", "rules", "defaults", "groups", "params", "steps"], in: root)
        let dtypeName = try reader.string(root["dtype"] ?? .string("float32"), at: "dtype")
        guard let dtype = DType(rawValue: dtypeName) else {
            throw ReplayError("spec.dtype is \(quoted(dtypeName)); allowed: float32, float64")
        }
        self.dtype = dtype
        rules = try reader.array(root["rules"], at: "rules").enumerated().map { index, name throws(ReplayError) in
            try reader.string(name, at: "rules[\(index)]")
        }
        defaults = try reader.numbers(root["defaults"] ?? .object([:]), at: "defaults")
        parameters = try reader.object(root["params"], at: "params").mapValues { _ in [] }
        for (name, values) in try reader.object(root["params"], at: "params") {
            parameters[name] = try reader.numberList(values, at: "params.\(name)")
        }
        let known = parameters
        groups = try reader.array(root["groups"], at: "groups").enumerated().map { index, entry throws(ReplayError) in
            let place = "groups[\(index)]"
            var fields = try reader.object(entry, at: place)
            let names = try reader.array(fields.removeValue(forKey: "params"), at: "\(place).params")
                .enumerated().map { position, name throws(ReplayError) in
                    try reader.string(name, at: "\(place).params[\(position)]")
                }
            for name in names where known[name] == nil {
                throw ReplayError("\(place) lists parameter \(quoted(name)), which spec.params does not define"
                                  + didYouMean(name, among: known.keys.sorted()))
            }
            return (names, try reader.numbers(.object(fields), at: place))
        }
        let groupCount = groups.count
        steps = try reader.array(root["steps"], at: "steps").enumerated().map { index, entry throws(ReplayError) in
            let place = "steps[\(index)]"
            let fields = try reader.object(entry, at: place)
            try reader.allowOnly(["grads", "set"], in: fields, at: place)
            var gradients: [String: [Double]] = [:]
            for (name, values) in try reader.object(fields["grads"] ?? .object([:]), at: "\(place).grads") {
                guard let parameter = known[name] else {
                    throw ReplayError("\(place).grads has parameter \(quoted(name)), which spec.params does not define"
                                      + didYouMean(name, among: known.keys.sorted()))
                }
                let gradient = try reader.numberList(values, at: "\(place).grads.\(name)")
                guard gradient.count == parameter.count else {
                    throw ReplayError("\(place): gradient for parameter \(quoted(name)) has \(gradient.count) elements; "
                                      + "the parameter has \(parameter.count)")
                }
                gradients[name] = gradient
            }
            var changes: [(group: Int, name: String, value: Double)] = []
            for (position, change) in try reader.array(fields["set"] ?? .array([]), at: "\(place).set").enumerated() {
                var options = try reader.object(change, at: "\(place).set[\(position)]")
                let group = try reader.number(options.removeValue(forKey: "group"), at: "\(place).set[\(position)].group")
                guard group == group.rounded(), (0..<Double(groupCount)).contains(group) else {
                    throw ReplayError("\(place).set[\(position)].group is \(format(group)); allowed: 0 to \(groupCount - 1)")
                }
                for (name, value) in try reader.numbers(.object(options), at: "\(place).set[\(position)]").sorted(by: { $0.key < $1.key }) {
                    changes.append((Int(group), name, value))
                }
            }
            return Step(gradients: gradients, changes: changes)
        }
    }
}

/// A replay spec that is not well formed; the message names the field.
public struct ReplayError: Error, Sendable, CustomStringConvertible {
    /// What is wrong and where.
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Reads typed values out of a ``JSONValue``, naming the field on any mismatch.
private struct JSONFieldReader {
    let path: String

    func allowOnly(_ keys: Set<String>, in object: [String: JSONValue], at place: String? = nil) throws(ReplayError) {
        for key in object.keys.sorted() where !keys.contains(key) {
            throw ReplayError("\(place ?? path) has unknown field \(quoted(key))\(didYouMean(key, among: keys.sorted())); "
                              + "allowed: " + keys.sorted().joined(separator: ", "))
        }
    }

    func object(_ value: JSONValue?, at place: String) throws(ReplayError) -> [String: JSONValue] {
        guard case .object(let object)? = value else { throw missing(place, "a JSON object", value) }
        return object
    }

    func array(_ value: JSONValue?, at place: String) throws(ReplayError) -> [JSONValue] {
        guard case .array(let array)? = value else { throw missing(place, "a JSON array", value) }
        return array
    }

    func string(_ value: JSONValue?, at place: String) throws(ReplayError) -> String {
        guard case .string(let string)? = value else { throw missing(place, "a string", value) }
        return string
    }

    func number(_ value: JSONValue?, at place: String) throws(ReplayError) -> Double {
        guard case .number(let number)? = value else { throw missing(place, "a number", value) }
        return number
    }

    func numbers(_ value: JSONValue?, at place: String) throws(ReplayError) -> [String: Double] {
        var numbers: [String: Double] = [:]
        for (key, entry) in try object(value, at: place) { numbers[key] = try number(entry, at: "\(place).\(key)") }
        return numbers
    }

    func numberList(_ value: JSONValue?, at place: String) throws(ReplayError) -> [Double] {
        try array(value, at: place).enumerated().map { index, entry throws(ReplayError) in
            try number(entry, at: "\(place)[\(index)]")
        }
    }

    private func missing(_ place: String, _ expected: String, _ value: JSONValue?) -> ReplayError {
        ReplayError(value == nil ? "spec.\(place) is missing; it must be \(expected)"
                                 : "spec.\(place) must be \(expected)")
    }
}
