/// A JSON document as ``JSONReader`` reads it: numbers correctly rounded to `Double`, objects without
/// repeated keys, and an array whose elements are all numbers kept as one `[Double]`, so a spec's million-element
/// tensors cost eight bytes per element rather than one enum case each.
enum JSONValue: Sendable {
    /// A number, correctly rounded to the nearest `Double`; ±infinity when its magnitude is beyond float64's.
    case number(Double)
    /// An array whose elements are all numbers (the empty array included).
    case numbers([Double])
    case string(String)
    case bool(Bool)
    /// An array with at least one element that is not a number.
    case array([JSONValue])
    case object([String: JSONValue])
    case null

    /// The elements of an array of either kind, or nil for anything else.
    var elements: [JSONValue]? {
        switch self {
        case .array(let values): values
        case .numbers(let numbers): numbers.map(JSONValue.number)
        default: nil
        }
    }

    /// What the value is, for messages: "a string", "an array", ….
    var kind: String {
        switch self {
        case .number: "a number"
        case .numbers, .array: "an array"
        case .string: "a string"
        case .bool(let value): value ? "true" : "false"
        case .object: "an object"
        case .null: "null"
        }
    }
}
