/// A JSON document read strictly and kept exactly as written: object members in document order, numbers as
/// their literal text. Reading the same bytes always gives the same value (an unordered dictionary does not:
/// which of two bad entries is met first would change from run to run), and a key that appears twice in one
/// object is an error rather than a silent choice of one of its values.
///
/// Written back with ``serialized``, a value gives compact JSON with the same escapes Python's
/// `json.dumps(value, separators=(",", ":"), ensure_ascii=False)` produces, so a reader in Python can recompute
/// a checksum over it (Docs/Checkpoints.md).
package indirect enum OrderedJSON: Equatable, Sendable {
    /// An object's members in document order; keys are unique.
    case object([Member])
    case array([OrderedJSON])
    case string(String)
    /// A number as written (`12`, `-0.5`, `1e-05`): converting it is left to the reader, who knows the range.
    case number(String)
    case bool(Bool)
    case null

    /// One `"key": value` pair of an object.
    package struct Member: Equatable, Sendable {
        package var key: String
        package var value: OrderedJSON
    }

    /// A whole number.
    static func integer(_ value: Int) -> OrderedJSON { .number(String(value)) }

    /// A finite double in the shortest text that reads back to the same value; infinities and NaN, which
    /// JSON cannot hold, become the strings `inf`, `-inf` and `nan`.
    static func double(_ value: Double) -> OrderedJSON {
        if value.isNaN { return .string("nan") }
        if value.isInfinite { return .string(value > 0 ? "inf" : "-inf") }
        return .number(String(value))
    }

    /// An object from `(key, value)` pairs in the order given.
    package static func object(_ pairs: KeyValuePairs<String, OrderedJSON>) -> OrderedJSON {
        .object(pairs.map { Member(key: $0.key, value: $0.value) })
    }

    /// The members when this is an object.
    var members: [Member]? {
        if case .object(let members) = self { members } else { nil }
    }

    /// The value of `key` when this is an object that has it.
    subscript(key: String) -> OrderedJSON? {
        members?.first { $0.key == key }?.value
    }

    /// What kind of value this is, for messages: "an object", "the number 1.5".
    var kind: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string(let text): "the string \(quoted(text.count > 40 ? String(text.prefix(40)) + "…" : text))"
        case .number(let text): "the number \(text)"
        case .bool(let value): "\(value)"
        case .null: "null"
        }
    }
}

// MARK: - Reading

extension OrderedJSON {
    /// Why bytes are not one strict JSON document, and where.
    package struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        /// Byte offset of the problem, from the start of the text read.
        package let offset: Int
        /// What is wrong there.
        package let problem: String
        package var description: String { "\(problem) at byte \(offset)" }

        package init(offset: Int, problem: String) {
            self.offset = offset
            self.problem = problem
        }
    }
}

extension OrderedJSON {
    /// Objects and arrays nested deeper than this are refused rather than read recursively without bound.
    package static let maximumDepth = 64

    /// Reads one JSON document (RFC 8259) from `bytes`; only whitespace may follow it.
    /// - Throws: ``SyntaxError`` for anything else: a syntax error, text that is not UTF-8, a key
    ///   repeated within one object, or nesting deeper than ``maximumDepth``.
    package init(parsing bytes: some Collection<UInt8>) throws(OrderedJSON.SyntaxError) {
        var parser = JSONParser(Array(bytes))
        self = try parser.document()
    }
}

/// A recursive-descent reader over UTF-8 bytes.
private struct JSONParser {
    let bytes: [UInt8]
    var index = 0
    var depth = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func document() throws(OrderedJSON.SyntaxError) -> OrderedJSON {
        let value = try self.value()
        skipWhitespace()
        if index < bytes.count { throw fail("unexpected \(describe(bytes[index])) after the JSON value") }
        return value
    }

    private func fail(_ problem: String, at offset: Int? = nil) -> OrderedJSON.SyntaxError {
        OrderedJSON.SyntaxError(offset: offset ?? index, problem: problem)
    }

    private func describe(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private mutating func expect(_ literal: String, _ value: OrderedJSON) throws(OrderedJSON.SyntaxError) -> OrderedJSON {
        let utf8 = Array(literal.utf8)
        guard bytes.count - index >= utf8.count, Array(bytes[index..<(index + utf8.count)]) == utf8 else {
            throw fail("expected a JSON value")
        }
        index += utf8.count
        return value
    }

    private mutating func value() throws(OrderedJSON.SyntaxError) -> OrderedJSON {
        skipWhitespace()
        guard index < bytes.count else { throw fail("the text ends where a value should be") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected \(describe(bytes[index])) where a value should be")
        }
    }

    private mutating func nest() throws(OrderedJSON.SyntaxError) {
        depth += 1
        if depth > OrderedJSON.maximumDepth { throw fail("more than \(OrderedJSON.maximumDepth) nested objects and arrays") }
    }

    private mutating func object() throws(OrderedJSON.SyntaxError) -> OrderedJSON {
        try nest()
        index += 1
        var members: [OrderedJSON.Member] = []
        var seen: Set<String> = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            let keyOffset = index
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
            let key = try string()
            guard seen.insert(key).inserted else { throw fail("the key \(quoted(key)) appears twice in one object", at: keyOffset) }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':' after the key \(quoted(key))") }
            index += 1
            members.append(.init(key: key, value: try value()))
            skipWhitespace()
            guard index < bytes.count else { throw fail("the text ends inside an object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            guard bytes[index] == UInt8(ascii: "}") else { throw fail("expected ',' or '}' in an object") }
            index += 1
            depth -= 1
            return .object(members)
        }
    }

    private mutating func array() throws(OrderedJSON.SyntaxError) -> OrderedJSON {
        try nest()
        index += 1
        var elements: [OrderedJSON] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            elements.append(try value())
            skipWhitespace()
            guard index < bytes.count else { throw fail("the text ends inside an array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            guard bytes[index] == UInt8(ascii: "]") else { throw fail("expected ',' or ']' in an array") }
            index += 1
            depth -= 1
            return .array(elements)
        }
    }

    /// A number's text, checked against JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    private mutating func number() throws(OrderedJSON.SyntaxError) -> OrderedJSON {
        let start = index
        func digits(_ parser: inout JSONParser) -> Int {
            let first = parser.index
            while parser.index < parser.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(parser.bytes[parser.index]) {
                parser.index += 1
            }
            return parser.index - first
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        let leadingZero = index < bytes.count && bytes[index] == UInt8(ascii: "0")
        let whole = digits(&self)
        guard whole > 0 else { throw fail("a number needs digits", at: start) }
        if leadingZero && whole > 1 { throw fail("a number may not start with 0", at: start) }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits(&self) > 0 else { throw fail("a number needs digits after '.'", at: start) }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits(&self) > 0 else { throw fail("a number needs digits in its exponent", at: start) }
        }
        return .number(String(decoding: bytes[start..<index], as: UTF8.self))
    }

    /// A quoted string, with its escapes decoded; the bytes between escapes must be UTF-8 without control
    /// characters.
    private mutating func string() throws(OrderedJSON.SyntaxError) -> String {
        let start = index
        index += 1
        var decoded: [UInt8] = []
        while true {
            guard index < bytes.count else { throw fail("the text ends inside a string", at: start) }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let text = String(validating: decoded, as: UTF8.self) else {
                    throw fail("a string that is not valid UTF-8", at: start)
                }
                return text
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw fail("the text ends inside a string", at: start) }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"): decoded.append(contentsOf: try unicodeEscape())
                default: throw fail("an unknown escape, a backslash before \(describe(escape))", at: index - 2)
                }
            case 0..<0x20:
                throw fail("a control character inside a string")
            default:
                decoded.append(byte)
                index += 1
            }
        }
    }

    /// The UTF-8 bytes of a `\uXXXX` escape (the `\u` already read), joining a surrogate pair.
    private mutating func unicodeEscape() throws(OrderedJSON.SyntaxError) -> [UInt8] {
        let start = index - 2
        func hex(_ parser: inout JSONParser) -> UInt32? {
            guard parser.bytes.count - parser.index >= 4,
                  let value = UInt32(String(decoding: parser.bytes[parser.index..<(parser.index + 4)], as: UTF8.self), radix: 16)
            else { return nil }
            parser.index += 4
            return value
        }
        guard var scalar = hex(&self) else { throw fail("\\u must be followed by four hexadecimal digits", at: start) }
        if (0xD800..<0xDC00).contains(scalar) {
            guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                throw fail("a lone UTF-16 surrogate in \\u escapes", at: start)
            }
            index += 2
            guard let low = hex(&self), (0xDC00..<0xE000).contains(low) else {
                throw fail("a lone UTF-16 surrogate in \\u escapes", at: start)
            }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let unicode = Unicode.Scalar(scalar) else { throw fail("a lone UTF-16 surrogate in \\u escapes", at: start) }
        return Array(String(Character(unicode)).utf8)
    }
}

// MARK: - Writing

extension OrderedJSON {
    /// Compact UTF-8 JSON: no spaces, members in order, numbers as written, strings escaped as Python's
    /// `json.dumps(..., ensure_ascii=False)` escapes them (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other
    /// control characters as `\u00xx`; everything else as is).
    package var serialized: [UInt8] {
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
