/// Bytes that are not one strict JSON document: what is wrong, where (line, column and the path of keys
/// and indices from the top of the document) and, when it helps, what is allowed.
struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    let message: String
    /// 1-based line and column (in characters) of the offending text.
    let line: Int, column: Int
    /// Keys and indices from the top of the document, innermost last: `groups`, `[1]`, `lr`.
    private(set) var path: [String] = []

    init(_ message: String, line: Int, column: Int) {
        self.message = message
        self.line = line
        self.column = column
    }

    /// The same error, seen from the container that holds `component` (a key, or an index as `[3]`).
    func inside(_ component: String) -> JSONSyntaxError {
        var outer = self
        outer.path.insert(component, at: 0)
        return outer
    }

    /// `groups[1].lr`, or nil at the top of the document.
    var location: String? {
        guard let first = path.first else { return nil }
        return path.dropFirst().reduce(first) { $0 + ($1.hasPrefix("[") ? $1 : "." + $1) }
    }

    /// `line 3, column 17, at groups[1].lr: message`.
    var description: String {
        "line \(line), column \(column)\(location.map { ", at \($0)" } ?? ""): \(message)"
    }
}
