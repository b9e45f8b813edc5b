import Foundation

/// A safetensors file taken apart with nothing but Foundation, to make damaged copies of it: the header as
/// text (padding included) and the data after it. Independent of Regula's own reader.
public struct SafeTensorsParts: Sendable {
    /// The JSON header, as written.
    public var header: String
    /// Everything after the header.
    public var data: Data

    /// Splits `file` at the length its first 8 bytes give.
    public init(_ file: Data) {
        let bytes = [UInt8](file)
        let length = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        header = String(decoding: bytes[8..<(8 + length)], as: UTF8.self)
        data = Data(bytes[(8 + length)...])
    }

    /// The file again, its length field the header's length unless `lengthField` says otherwise.
    public func assembled(lengthField: UInt64? = nil) -> Data {
        let json = Data(header.utf8)
        var file = Data()
        withUnsafeBytes(of: (lengthField ?? UInt64(json.count)).littleEndian) { file.append(contentsOf: $0) }
        return file + json + data
    }

    /// The header with the first match of `pattern` (a regular expression) replaced by `template`; nil when
    /// nothing matches.
    public func header(replacing pattern: String, with template: String) -> String? {
        let expression = try! NSRegularExpression(pattern: pattern)
        let whole = NSRange(header.startIndex..., in: header)
        guard let match = expression.firstMatch(in: header, range: whole) else { return nil }
        return (header as NSString).replacingCharacters(
            in: match.range, with: expression.replacementString(for: match, in: header, offset: 0, template: template))
    }

    /// A copy whose header has the first match of `pattern` replaced by `template` (nil when nothing matches).
    public func replacing(_ pattern: String, with template: String) -> SafeTensorsParts? {
        guard let changed = header(replacing: pattern, with: template) else { return nil }
        var copy = self
        copy.header = changed
        return copy
    }
}
