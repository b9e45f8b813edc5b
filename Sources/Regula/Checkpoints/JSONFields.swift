/// Typed reading of checkpoint JSON. Each accessor names the place of the value (`tensor "param/w" shape[0]`,
/// `parameters[1].step`) and what is allowed there when the value does not fit, and converts only what it has
/// checked: no number is narrowed, rounded or wrapped on the way in.
extension OrderedJSON {
    /// This object's members by key, after checking that it is an object with every key of `required` and
    /// no key outside `required` and `optional`.
    func fields(of place: String, required: [String], optional: [String] = []) throws(CheckpointError) -> [String: OrderedJSON] {
        guard let members else { throw CheckpointError("\(place) is \(kind); allowed: an object") }
        for member in members where !required.contains(member.key) && !optional.contains(member.key) {
            throw CheckpointError("\(place) has an unknown field \(quoted(member.key)); allowed: \((required + optional).map(quoted).joined(separator: ", "))")
        }
        for key in required where self[key] == nil {
            throw CheckpointError("\(place) has no field \(quoted(key))")
        }
        return Dictionary(uniqueKeysWithValues: members.map { ($0.key, $0.value) })
    }

    /// The elements, when this is an array.
    func elements(of place: String) throws(CheckpointError) -> [OrderedJSON] {
        guard case .array(let elements) = self else { throw CheckpointError("\(place) is \(kind); allowed: an array") }
        return elements
    }

    /// The text, when this is a string.
    func text(of place: String) throws(CheckpointError) -> String {
        guard case .string(let text) = self else { throw CheckpointError("\(place) is \(kind); allowed: a string") }
        return text
    }

    /// The value, when this is a whole number written without fraction or exponent and lies in `range`.
    func integer(of place: String, in range: ClosedRange<Int>) throws(CheckpointError) -> Int {
        let allowed = "allowed: a whole number from \(range.lowerBound) to \(range.upperBound)"
        guard case .number(let text) = self else { throw CheckpointError("\(place) is \(kind); \(allowed)") }
        guard text.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) }) else {
            throw CheckpointError("\(place) is \(text), not a whole number; \(allowed)")
        }
        guard let value = Int(text), range.contains(value) else { throw CheckpointError("\(place) is \(text); \(allowed)") }
        return value
    }

    /// The value of a number, or of the strings `inf`, `-inf` and `nan` that stand for the doubles JSON
    /// cannot write; a number too large for a double is refused rather than read as infinity.
    func real(of place: String) throws(CheckpointError) -> Double {
        switch self {
        case .number(let text):
            guard let value = Double(text), value.isFinite else {
                throw CheckpointError("\(place) is \(text), beyond the range of a double")
            }
            return value
        case .string("inf"): return .infinity
        case .string("-inf"): return -.infinity
        case .string("nan"): return .nan
        default: throw CheckpointError("\(place) is \(kind); allowed: a number, or \"inf\", \"-inf\" or \"nan\"")
        }
    }
}
