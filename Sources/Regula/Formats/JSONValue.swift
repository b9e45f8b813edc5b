/// A JSON document as ``JSONReader`` reads it, kept exactly as written: object members in document order
/// (keys unique), numbers as their literal text. Reading the same bytes always gives the same value (an
/// unordered dictionary does not: which of two bad entries is met first would change from run to run).
/// Read with `packingNumberArrays`, an array whose elements are all numbers is one ``numbers(_:)``, so a
/// replay spec's million-element tensors cost eight bytes per element rather than one enum case each.
///
/// Written back with ``serialized``, a value gives compact JSON with the same escapes Python's
/// `json.dumps(value, separators=(",", ":"), ensure_ascii=False)` produces, so a reader in Python can recompute
/// a checksum over it (Docs/Checkpoints.md).
indirect enum JSONValue: Equatable, Sendable {
    /// An object's members in document order; keys are unique.
    case object([Member])
    case array([JSONValue])
    /// An array of numbers only, each correctly rounded to the nearest `Double` (±infinity beyond float64's
    /// range); the reader makes it only when asked to pack number arrays.
    case numbers([Double])
    case string(String)
    /// A number as written (`12`, `-0.5`, `1e-05`): converting it is left to the reader, who knows the range.
    case number(String)
    case bool(Bool)
    case null

    /// One `"key": value` pair of an object.
    struct Member: Equatable, Sendable {
        var key: String
        var value: JSONValue
    }

    /// A whole number.
    static func integer(_ value: Int) -> JSONValue { .number(String(value)) }

    /// A finite double in the shortest text that reads back to the same value; infinities and NaN, which
    /// JSON cannot hold, become the strings `inf`, `-inf` and `nan`.
    static func double(_ value: Double) -> JSONValue {
        if value.isNaN { return .string("nan") }
        if value.isInfinite { return .string(value > 0 ? "inf" : "-inf") }
        return .number(String(value))
    }

    /// An object from `(key, value)` pairs in the order given.
    static func object(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(pairs.map { Member(key: $0.key, value: $0.value) })
    }

    /// The members when this is an object.
    var members: [Member]? {
        if case .object(let members) = self { members } else { nil }
    }

    /// The elements when this is an array of either kind (packed numbers as their text, `7` or `0.5`).
    var elements: [JSONValue]? {
        switch self {
        case .array(let elements): elements
        case .numbers(let numbers): numbers.map { .number(format($0)) }
        default: nil
        }
    }

    /// The value of `key` when this is an object that has it.
    subscript(key: String) -> JSONValue? {
        members?.first { $0.key == key }?.value
    }

    /// What kind of value this is, for messages: "an object", "the number 1.5".
    var kind: String {
        switch self {
        case .object: "an object"
        case .array, .numbers: "an array"
        case .string(let text): "the string \(quoted(text.count > 40 ? String(text.prefix(40)) + "…" : text))"
        case .number(let text): "the number \(text)"
        case .bool(let value): "\(value)"
        case .null: "null"
        }
    }
}

// MARK: - Writing

extension JSONValue {
    /// Compact UTF-8 JSON: no spaces, members in order, numbers as written, strings escaped as Python's
    /// `json.dumps(..., ensure_ascii=False)` escapes them (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other
    /// control characters as `\u00xx`; everything else as is).
    var serialized: [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    private func write(to out: inout [UInt8]) {
        switch self {
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (position, member) in members.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                Self.write(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .numbers(let numbers): JSONValue.array(numbers.map(JSONValue.double)).write(to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                element.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .string(let text): Self.write(text, to: &out)
        case .number(let text): out.append(contentsOf: text.utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        }
    }

    private static func write(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0x08: out.append(contentsOf: #"\b"#.utf8)
            case 0x0C: out.append(contentsOf: #"\f"#.utf8)
            case 0..<0x20:
                let hex = String(byte, radix: 16)
                out.append(contentsOf: ("\\u00" + (hex.count == 1 ? "0" + hex : hex)).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
