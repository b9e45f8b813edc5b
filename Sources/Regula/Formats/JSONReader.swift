import Foundation

extension JSONValue {
    /// Reads one JSON document (RFC 8259) that fills `bytes`, whitespace aside. With `packingNumberArrays`,
    /// every array of numbers only becomes one ``numbers(_:)`` of correctly rounded doubles (what a replay
    /// spec's tensors need); without it, numbers keep their text (what a checkpoint header's checksum needs).
    /// - Throws: ``JSONSyntaxError`` for anything else (``JSONReader`` lists what it refuses).
    init(parsing bytes: some ContiguousBytes, packingNumberArrays: Bool = false) throws(JSONSyntaxError) {
        let result = bytes.withUnsafeBytes { raw in
            var reader = JSONReader(raw.bindMemory(to: UInt8.self), packingNumberArrays: packingNumberArrays)
            return Result { () throws(JSONSyntaxError) in try reader.document() }
        }
        self = try result.get()
    }
}

/// The one strict JSON (RFC 8259) reader, over UTF-8 bytes, fast enough for specs of hundreds of megabytes.
///
/// Strict where readers disagree, so a document means the same thing to Regula and to whatever wrote it:
/// a key repeated in one object, `NaN` and `Infinity` (which Python's `json` writes but JSON has not),
/// invalid UTF-8, lone surrogate escapes, control characters in strings, leading zeros, text after the
/// document and nesting deeper than ``maximumDepth`` are refused with the line, column and key path.
struct JSONReader {
    /// How deeply arrays and objects may nest: serde_json's limit, with which Python's safetensors reads a
    /// header, so every header it reads is read here. A replay spec needs five levels, a checkpoint four.
    static let maximumDepth = 128

    private let bytes: UnsafeBufferPointer<UInt8>
    private let packingNumberArrays: Bool
    private var position = 0
    private var depth = 0

    fileprivate init(_ bytes: UnsafeBufferPointer<UInt8>, packingNumberArrays: Bool) {
        self.bytes = bytes
        self.packingNumberArrays = packingNumberArrays
    }

    fileprivate mutating func document() throws(JSONSyntaxError) -> JSONValue {
        skipWhitespace()
        guard position < bytes.count else {
            throw failure(bytes.isEmpty ? "the document is empty; expected a JSON value" : "the document holds only whitespace; expected a JSON value")
        }
        let value = try value()
        skipWhitespace()
        guard position == bytes.count else { throw failure("\(found()) after the end of the JSON document") }
        return value
    }

    private mutating func value() throws(JSONSyntaxError) -> JSONValue {
        guard position < bytes.count else { throw truncated("a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(String(decoding: try number(), as: UTF8.self))
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "N"), UInt8(ascii: "I"): throw nonFiniteLiteral()
        case UInt8(ascii: "]"), UInt8(ascii: "}"):
            throw failure("expected a value, found \(found()) (JSON allows no comma before a closing bracket)")
        default: throw failure("expected a value, found \(found())")
        }
    }

    private mutating func object() throws(JSONSyntaxError) -> JSONValue {
        let open = position
        try enter()
        defer { depth -= 1 }
        var members: [JSONValue.Member] = []
        var keys: Set<String> = []
        if closesEmpty(with: UInt8(ascii: "}")) { return .object(members) }
        while true {
            skipWhitespace()
            guard position < bytes.count else { throw truncated("a key", opened: open) }
            guard bytes[position] == UInt8(ascii: "\"") else { throw failure("expected a key in double quotes, found \(found())") }
            let keyStart = position
            let key = try string()
            guard keys.insert(key).inserted else {
                throw failure("key \(quoted(key)) appears twice in one object; readers disagree on which value counts "
                              + "(Python's json keeps the last), so each key may appear once", at: keyStart).inside(key)
            }
            skipWhitespace()
            guard position < bytes.count else { throw truncated("\":\" after key \(quoted(key))", opened: open) }
            guard bytes[position] == UInt8(ascii: ":") else { throw failure("expected \":\" after key \(quoted(key)), found \(found())") }
            position += 1
            skipWhitespace()
            do { members.append(.init(key: key, value: try value())) } catch { throw error.inside(key) }
            if try closes(with: UInt8(ascii: "}"), opened: open, after: "the value of key \(quoted(key))") { return .object(members) }
        }
    }

    private mutating func array() throws(JSONSyntaxError) -> JSONValue {
        let open = position
        if packingNumberArrays, let numbers = packedNumbers() { return .numbers(numbers) }
        position = open
        try enter()
        defer { depth -= 1 }
        var elements: [JSONValue] = []
        if closesEmpty(with: UInt8(ascii: "]")) { return .array(elements) }
        while true {
            skipWhitespace()
            do { elements.append(try value()) } catch { throw error.inside("[\(elements.count)]") }
            if try closes(with: UInt8(ascii: "]"), opened: open, after: "element \(elements.count - 1) of the array") {
                return .array(elements)
            }
        }
    }

    /// The array at `position` as correctly rounded doubles, read without making a value per element; nil
    /// when anything in it is not a well-formed number or separator, for ``array()`` to read it again from
    /// its start and give the element or the error its place.
    private mutating func packedNumbers() -> [Double]? {
        guard depth < Self.maximumDepth else { return nil }
        position += 1
        if closesEmpty(with: UInt8(ascii: "]")) { return [] }
        var numbers: [Double] = []
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "-") || Self.isDigit(bytes[position]),
                  let text = try? number() else { return nil }
            numbers.append(DecimalNumber.nearestDouble(to: text))
            skipWhitespace()
            guard position < bytes.count else { return nil }
            switch bytes[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return numbers
            default: return nil
            }
        }
    }

    /// Whether the array or object just opened is empty: `close` after any whitespace, which it consumes.
    private mutating func closesEmpty(with close: UInt8) -> Bool {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == close else { return false }
        position += 1
        return true
    }

    /// After a member or element, whether the container ends: `close` ends it, a comma leads to the next one
    /// (either is consumed, after any whitespace); anything else is refused.
    private mutating func closes(with close: UInt8, opened open: Int, after what: @autoclosure () -> String)
        throws(JSONSyntaxError) -> Bool {
        skipWhitespace()
        func expected() -> String { "\",\" or \"\(Character(Unicode.Scalar(close)))\"" }
        guard position < bytes.count else { throw truncated(expected(), opened: open) }
        switch bytes[position] {
        case UInt8(ascii: ","): position += 1; return false
        case close: position += 1; return true
        default: throw failure("expected \(expected()) after \(what()), found \(found())")
        }
    }

    /// Consumes the opening bracket of an array or object, refusing nesting beyond ``maximumDepth``.
    private mutating func enter() throws(JSONSyntaxError) {
        guard depth < Self.maximumDepth else {
            throw failure("arrays and objects are nested more than \(Self.maximumDepth) levels deep; allowed: \(Self.maximumDepth)")
        }
        depth += 1
        position += 1
    }

    // MARK: Strings

    private mutating func string() throws(JSONSyntaxError) -> String {
        let open = position
        position += 1
        let start = position
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "\""):
                defer { position += 1 }
                return try text(UnsafeBufferPointer(rebasing: bytes[start..<position]), opened: open)
            case UInt8(ascii: "\\"):
                return try escapedString(from: start, opened: open)
            case 0..<0x20:
                throw controlCharacter()
            default:
                position += 1
            }
        }
        throw truncated("the closing quote of the string", opened: open)
    }

    /// The rest of a string that has escapes; `position` is at the first backslash.
    private mutating func escapedString(from start: Int, opened open: Int) throws(JSONSyntaxError) -> String {
        var decoded = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return try decoded.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in try text(buffer, opened: open) }
            case UInt8(ascii: "\\"):
                guard position + 1 < bytes.count else { throw truncated("an escape", opened: open) }
                let escape = bytes[position + 1]
                position += 2
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"): decoded.append(contentsOf: String(try unicodeEscape()).utf8)
                default:
                    position -= 2
                    throw failure("\\\(Character(Unicode.Scalar(escape))) is not a JSON escape; allowed: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX")
                }
            case 0..<0x20:
                throw controlCharacter()
            default:
                decoded.append(byte)
                position += 1
            }
        }
        throw truncated("the closing quote of the string", opened: open)
    }

    /// The character of a `\uXXXX` escape (two of them for a surrogate pair); `position` is after the `u`.
    private mutating func unicodeEscape() throws(JSONSyntaxError) -> Character {
        let escapeStart = position - 2
        let high = try hexQuad()
        if !(0xD800...0xDFFF).contains(high) { return Character(Unicode.Scalar(high)!) }
        guard high < 0xDC00, position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
              bytes[position + 1] == UInt8(ascii: "u") else {
            throw failure("\\u\(String(high, radix: 16, uppercase: true)) is half of a surrogate pair with no other half; it names no character", at: escapeStart)
        }
        position += 2
        let low = try hexQuad()
        guard (0xDC00...0xDFFF).contains(low) else {
            throw failure("\\u\(String(high, radix: 16, uppercase: true)) is not followed by the low half of a surrogate pair", at: escapeStart)
        }
        return Character(Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!)
    }

    private mutating func hexQuad() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard position < bytes.count else { throw truncated("four hexadecimal digits after \\u") }
            guard let digit = Self.hexDigit(bytes[position]) else { throw failure("\\u must be followed by four hexadecimal digits, found \(found())") }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private func text(_ utf8: UnsafeBufferPointer<UInt8>, opened open: Int) throws(JSONSyntaxError) -> String {
        guard let text = String(validating: utf8, as: UTF8.self) else {
            throw failure("the string holds bytes that are not UTF-8; a JSON document is UTF-8 text", at: open)
        }
        return text
    }

    private func controlCharacter() -> JSONSyntaxError {
        failure("a string holds the control character \(found()); write it as an escape (\\n, \\t, \\u00XX)")
    }

    // MARK: Numbers

    /// The text of the number at `position`, checked against `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    private mutating func number() throws(JSONSyntaxError) -> UnsafeBufferPointer<UInt8> {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count, Self.isDigit(bytes[position]) else {
            if position < bytes.count, bytes[position] == UInt8(ascii: "I") { throw nonFiniteLiteral() }
            throw position < bytes.count ? failure("a minus sign must be followed by a digit, found \(found())", at: start)
                                         : truncated("a digit after the minus sign")
        }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count, Self.isDigit(bytes[position]) {
                throw failure("a number may not start with 0 followed by more digits (\(numberText(from: start)))", at: start)
            }
        } else {
            skipDigits()
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard position < bytes.count, Self.isDigit(bytes[position]) else {
                throw position < bytes.count ? failure("a decimal point must be followed by a digit (\(numberText(from: start)))", at: start)
                                             : truncated("a digit after the decimal point")
            }
            skipDigits()
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") || bytes[position] == UInt8(ascii: "+") { position += 1 }
            guard position < bytes.count, Self.isDigit(bytes[position]) else {
                throw position < bytes.count ? failure("an exponent must have digits (\(numberText(from: start)))", at: start)
                                             : truncated("the digits of an exponent")
            }
            skipDigits()
        }
        return UnsafeBufferPointer(rebasing: bytes[start..<position])
    }

    private mutating func skipDigits() {
        while position < bytes.count, Self.isDigit(bytes[position]) { position += 1 }
    }

    private func numberText(from start: Int) -> String {
        var end = position
        while end < bytes.count, end - start < 40, Self.isDigit(bytes[end]) || "+-.eE".utf8.contains(bytes[end]) { end += 1 }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }

    private func nonFiniteLiteral() -> JSONSyntaxError {
        var end = position
        while end < bytes.count, end - position < 12, (bytes[end] | 0x20) &- UInt8(ascii: "a") < 26 { end += 1 }
        let word = String(decoding: UnsafeBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self)
        return failure("\(word) is not a JSON number; JSON holds finite numbers only (Python's json.dump writes NaN and "
                       + "Infinity for non-finite floats unless given allow_nan=False)")
    }

    // MARK: Bytes and positions

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for (offset, byte) in expected.enumerated() {
            guard position + offset < bytes.count else { throw truncated("the rest of \(word)") }
            guard bytes[position + offset] == byte else {
                throw failure("expected a value, found \(quoted(String(decoding: UnsafeBufferPointer(rebasing: bytes[position..<min(bytes.count, position + offset + 1)]), as: UTF8.self)))…")
            }
        }
        position += expected.count
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): position += 1
            default: return
            }
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }

    private static func hexDigit(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// The byte at `position`, described: `"x"`, `byte 0x07`, or the end of the document.
    private func found() -> String {
        guard position < bytes.count else { return "the end of the document" }
        let byte = bytes[position]
        return (0x21..<0x7F).contains(byte) ? quoted(String(UnicodeScalar(byte))) : "byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    private func failure(_ message: String, at offset: Int? = nil) -> JSONSyntaxError {
        let offset = min(offset ?? position, bytes.count)
        var line = 1, column = 1
        for byte in bytes[..<offset] {
            if byte == UInt8(ascii: "\n") { line += 1; column = 1 }
            else if byte & 0xC0 != 0x80 { column += 1 }
        }
        return JSONSyntaxError(message, line: line, column: column)
    }

    /// The document ended early; `open` is where the unfinished array, object or string began.
    private func truncated(_ expected: String, opened open: Int? = nil) -> JSONSyntaxError {
        let container = open.map { offset -> String in
            let start = failure("", at: offset)
            let what = switch bytes[offset] {
            case UInt8(ascii: "{"): "object"
            case UInt8(ascii: "["): "array"
            default: "string"
            }
            return " inside the \(what) opened at line \(start.line), column \(start.column),"
        } ?? ""
        return failure("the document ends\(container) where \(expected) was expected: it is truncated")
    }
}
