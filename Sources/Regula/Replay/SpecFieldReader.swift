/// Reads typed fields out of a spec's ``JSONValue``s; every refusal names the field (`spec.groups[0].lr`),
/// what it must be and what it is.
struct SpecFieldReader {
    /// Refuses any key of `object` not in `keys`.
    func allowOnly(_ keys: Set<String>, in object: [String: JSONValue], at place: String) throws(ReplayError) {
        for key in object.keys.sorted() where !keys.contains(key) {
            throw ReplayError("\(place) has unknown field \(quoted(key))\(didYouMean(key, among: keys.sorted())); "
                              + "allowed: " + keys.sorted().joined(separator: ", "))
        }
    }

    func object(_ value: JSONValue?, at place: String) throws(ReplayError) -> [String: JSONValue] {
        guard case .object(let object)? = value else { throw mismatch(place, "an object", value) }
        return object
    }

    func array(_ value: JSONValue?, at place: String) throws(ReplayError) -> [JSONValue] {
        guard let elements = value?.elements else { throw mismatch(place, "an array", value) }
        return elements
    }

    func string(_ value: JSONValue?, at place: String) throws(ReplayError) -> String {
        guard case .string(let string)? = value else { throw mismatch(place, "a string", value) }
        return string
    }

    func strings(_ value: JSONValue?, at place: String) throws(ReplayError) -> [String] {
        try array(value, at: place).enumerated().map { index, element throws(ReplayError) in
            try string(element, at: "\(place)[\(index)]")
        }
    }

    /// A finite number.
    func number(_ value: JSONValue?, at place: String) throws(ReplayError) -> Double {
        guard case .number(let number)? = value else { throw mismatch(place, "a number", value) }
        guard number.isFinite else {
            throw ReplayError("\(place) is beyond float64's range (largest magnitude \(Double.greatestFiniteMagnitude))")
        }
        return number
    }

    /// An object of finite numbers, such as a group's options.
    func numbers(_ value: JSONValue?, at place: String) throws(ReplayError) -> [String: Double] {
        var numbers: [String: Double] = [:]
        for (key, entry) in try object(value, at: place).sorted(by: { $0.key < $1.key }) { numbers[key] = try number(entry, at: "\(place).\(key)") }
        return numbers
    }

    /// The members of a `params` or `grads` object, sorted by name (so the first problem reported is always
    /// the same one); the message for anything else says that a file path is allowed too.
    func tensors(_ value: JSONValue?, at place: String) throws(ReplayError) -> [(key: String, value: JSONValue)] {
        guard case .object(let object)? = value else {
            throw mismatch(place, "an object of arrays of numbers, by name, or the path of a safetensors file", value)
        }
        return object.sorted { $0.key < $1.key }
    }

    /// An array of numbers, rounded to `dtype`; every number must be within its range.
    func tensor(_ value: JSONValue?, as dtype: DType, at place: String) throws(ReplayError) -> ReplayTensor {
        switch value {
        case .numbers(let numbers)?:
            return try ReplayTensor(numbers, as: dtype, at: place)
        case .array(let elements)?:
            // Some element is not a number: name the first.
            let numbers = try elements.enumerated().map { index, element throws(ReplayError) in
                try number(element, at: "\(place)[\(index)]")
            }
            return try ReplayTensor(numbers, as: dtype, at: place)
        default:
            throw mismatch(place, "an array of numbers", value)
        }
    }

    private func mismatch(_ place: String, _ expected: String, _ value: JSONValue?) -> ReplayError {
        ReplayError(value.map { "\(place) must be \(expected), not \($0.kind)" } ?? "\(place) is missing; it must be \(expected)")
    }
}
