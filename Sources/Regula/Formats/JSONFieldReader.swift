/// An error that is one sentence, such as ``CheckpointError`` and ``ReplayError``: what ``JSONFieldReader``
/// throws, in the type of the format whose fields it reads.
protocol SentenceError: Error {
    init(_ description: String)
}

extension CheckpointError: SentenceError {}
extension ReplayError: SentenceError {}

/// Typed reading of the fields of a JSON document, for the formats built on JSON (checkpoint metadata,
/// safetensors headers, replay specs). Each accessor names the place of the value (`groups[1].lr`,
/// `tensor "param/w" shape[0]`), what it is and what is allowed there when the value does not fit, and
/// converts only what it has checked: no number is narrowed, rounded or wrapped on the way in. A value that
/// is nil is a field the document does not have.
struct JSONFieldReader<Failure: SentenceError> {
    /// The members of an object by key. With `keys`, a member outside them is refused (with a did-you-mean),
    /// and so is an object without every key of `required`.
    func object(_ value: JSONValue?, at place: String, keys: [String]? = nil, required: [String] = [])
        throws(Failure) -> [String: JSONValue] {
        guard let members = value?.members else { throw mismatch(place, "an object", value) }
        if let keys {
            for member in members where !keys.contains(member.key) {
                throw Failure("\(place) has an unknown field \(quoted(member.key))\(didYouMean(member.key, among: keys)); "
                              + "allowed: " + keys.sorted().joined(separator: ", "))
            }
        }
        if let key = required.first(where: { value?[$0] == nil }) { throw Failure("\(place) has no field \(quoted(key))") }
        return Dictionary(uniqueKeysWithValues: members.map { ($0.key, $0.value) })
    }

    /// The elements of an array.
    func array(_ value: JSONValue?, at place: String) throws(Failure) -> [JSONValue] {
        guard let elements = value?.elements else { throw mismatch(place, "an array", value) }
        return elements
    }

    /// The text of a string.
    func string(_ value: JSONValue?, at place: String) throws(Failure) -> String {
        guard case .string(let text)? = value else { throw mismatch(place, "a string", value) }
        return text
    }

    /// The texts of an array of strings.
    func strings(_ value: JSONValue?, at place: String) throws(Failure) -> [String] {
        try array(value, at: place).enumerated().map { index, element throws(Failure) in
            try string(element, at: "\(place)[\(index)]")
        }
    }

    /// A whole number written without fraction or exponent that lies in `range`.
    func integer(_ value: JSONValue?, at place: String, in range: ClosedRange<Int>) throws(Failure) -> Int {
        let allowed = "a whole number from \(range.lowerBound) to \(range.upperBound)"
        guard case .number(let text)? = value else { throw mismatch(place, allowed, value) }
        guard text.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || JSONReader.isDigit($0) }) else {
            throw Failure("\(place) is \(text), not a whole number; allowed: \(allowed)")
        }
        guard let number = Int(text), range.contains(number) else { throw Failure("\(place) is \(text); allowed: \(allowed)") }
        return number
    }

    /// A finite number; one beyond float64's range is refused rather than read as an infinity.
    func number(_ value: JSONValue?, at place: String) throws(Failure) -> Double {
        guard case .number(let text)? = value else { throw mismatch(place, "a number", value) }
        guard let number = Double(text), number.isFinite else {
            throw Failure("\(place) is \(text), beyond float64's range (largest magnitude \(Double.greatestFiniteMagnitude))")
        }
        return number
    }

    /// A number, or one of the strings `inf`, `-inf` and `nan` that stand for the doubles JSON cannot write.
    func real(_ value: JSONValue?, at place: String) throws(Failure) -> Double {
        switch value {
        case .string("inf")?: .infinity
        case .string("-inf")?: -.infinity
        case .string("nan")?: .nan
        case .number?: try number(value, at: place)
        default: throw mismatch(place, "a number, or \"inf\", \"-inf\" or \"nan\"", value)
        }
    }

    /// An object of finite numbers, such as a group's options, read in key order (so the first problem
    /// reported is always the same one).
    func numbers(_ value: JSONValue?, at place: String) throws(Failure) -> [String: Double] {
        try numbers(object(value, at: place), at: place)
    }

    /// The members of an object read as the object of numbers above: every one finite, in key order.
    func numbers(_ members: [String: JSONValue], at place: String) throws(Failure) -> [String: Double] {
        var numbers: [String: Double] = [:]
        for (key, entry) in members.sorted(by: { $0.key < $1.key }) {
            numbers[key] = try number(entry, at: "\(place).\(key)")
        }
        return numbers
    }

    /// `place is <what value is>; allowed: <expected>`, or that it is missing.
    func mismatch(_ place: String, _ expected: String, _ value: JSONValue?) -> Failure {
        Failure(value.map { "\(place) is \($0.kind); allowed: \(expected)" } ?? "\(place) is missing; allowed: \(expected)")
    }
}
