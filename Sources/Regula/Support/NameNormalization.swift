import Foundation

/// Names that are different strings but the same text to a reader: `K` (U+212A KELVIN SIGN) and `K`, `ﬁ`
/// and `fi`, a precomposed `é` and `e` with a combining accent. Two names clash when their scalars differ
/// but their NFKC forms (Unicode compatibility composition) are equal.
enum NameNormalization {
    /// The NFKC form of `name` as scalar values, compared exactly (Swift's `==` already treats canonically
    /// equivalent strings as equal, so it cannot tell which spelling a file used).
    static func key(_ name: String) -> [UInt32] {
        name.precomposedStringWithCompatibilityMapping.unicodeScalars.map(\.value)
    }

    /// Whether `a` and `b` are spelled with different scalars.
    static func spelledDifferently(_ a: String, _ b: String) -> Bool {
        !a.unicodeScalars.elementsEqual(b.unicodeScalars)
    }

    /// The first two names of `names` that clash, in order of appearance.
    static func firstClash(in names: [String]) -> (String, String)? {
        var seen: [[UInt32]: String] = [:]
        for name in names {
            if let earlier = seen[key(name)], spelledDifferently(earlier, name) { return (earlier, name) }
            seen[key(name)] = seen[key(name)] ?? name
        }
        return nil
    }

    /// `name` quoted with its scalars (`"K" (U+212A)`), so two names that look alike can be told apart.
    static func spelled(_ name: String) -> String {
        "\(quoted(name)) (\(name.unicodeScalars.map { "U+" + String(format: "%04X", $0.value) }.joined(separator: " ")))"
    }

    /// Why two names that clash are refused, naming both.
    static func clash(_ a: String, _ b: String) -> String {
        "\(spelled(a)) and \(spelled(b)) are different strings that read as the same name (they are equal after "
            + "Unicode NFKC normalization); spell both the same way"
    }
}
