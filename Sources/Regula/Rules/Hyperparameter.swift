/// A hyperparameter a rule reads, as the rule declares it: the unit of validation and documentation.
///
/// Rules in one chain that declare the same name share one value per parameter group; each checks it
/// against its own ``range``.
public struct Hyperparameter: Sendable, Equatable, Codable, CustomStringConvertible {
    /// How a value is read. Every value is carried as a `Double`.
    public enum Kind: String, Sendable, Codable {
        /// Any real number inside the range.
        case real
        /// A whole number inside the range.
        case integer
        /// 0 (false) or 1 (true).
        case boolean
        /// One of named values (``Hyperparameter/choices``): users give a name, the kernel receives its index.
        case choice
    }

    /// The name users write, e.g. `lr` or `weight_decay1`.
    public let name: String
    /// One line of documentation.
    public let doc: String
    /// How the value is read.
    public let kind: Kind
    /// The value used when none is given, or `nil` when the user must give one.
    public let defaultValue: Double?
    /// The allowed values, inclusive; an unbounded side is infinite. For a choice, the indices `0...choices.count - 1`.
    public let range: ClosedRange<Double>
    /// A choice's names in index order (the kernel receives the index of the one given); empty for other kinds.
    public let choices: [String]

    /// Declares a hyperparameter that takes a number (for one of named values, see ``init(_:doc:choices:default:)``).
    ///
    /// - Parameters:
    ///   - name: An identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    ///   - doc: One line shown by `regula list`.
    ///   - kind: How the value is read; `.boolean` implies the range `0...1`.
    ///   - defaultValue: The default, inside `range`; `nil` makes the hyperparameter required.
    ///   - range: Allowed values, inclusive. Use `-.infinity` / `.infinity` for an open side.
    public init(_ name: String, doc: String = "", kind: Kind = .real, default defaultValue: Double?,
                range: ClosedRange<Double> = -Double.infinity...Double.infinity) {
        self.name = name
        self.doc = doc
        self.kind = kind
        self.defaultValue = defaultValue
        self.range = kind == .boolean ? 0...1 : range
        choices = []
    }

    /// Declares a choice: the user gives one of `choices` by name, and the kernel reads its index as a `Double`.
    ///
    /// - Parameters:
    ///   - name: An identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    ///   - doc: One line shown by `regula list`.
    ///   - choices: The names, identifiers, 2 to 64 of them, each once, in the order of their indices.
    ///   - defaultChoice: One of `choices`; `nil` makes the hyperparameter required.
    public init(_ name: String, doc: String = "", choices: [String], default defaultChoice: String?) {
        self.name = name
        self.doc = doc
        kind = .choice
        self.choices = choices
        // A name outside the list becomes an index past the end, which the declaration check refuses.
        defaultValue = defaultChoice.map { Double(choices.firstIndex(of: $0) ?? choices.count) }
        range = 0...Double(max(choices.count - 1, 0))
    }

    /// Reads a declaration from a plugin, whose range and default the declaration check then judges.
    init(_ name: String, doc: String, choices: [String], defaultIndex: Double?, range: ClosedRange<Double>) {
        self.name = name
        self.doc = doc
        kind = .choice
        self.choices = choices
        defaultValue = defaultIndex
        self.range = range
    }

    /// The default's name, for a choice that has one.
    public var defaultChoice: String? {
        defaultValue.flatMap { Int(exactly: $0) }.flatMap { choices.indices.contains($0) ? choices[$0] : nil }
    }

    /// Whether the user must give a value.
    public var isRequired: Bool { defaultValue == nil }

    /// The range as users read it: `≥ 0`, `[0, 1]`, `any`.
    public var rangeDescription: String {
        switch (range.lowerBound.isFinite, range.upperBound.isFinite) {
        case (true, true): "[\(format(range.lowerBound)), \(format(range.upperBound))]"
        case (true, false): "≥ \(format(range.lowerBound))"
        case (false, true): "≤ \(format(range.upperBound))"
        case (false, false): "any"
        }
    }

    /// `name (default 0, ≥ 0): doc`.
    public var description: String {
        if kind == .choice {
            return "\(name) (choice, \(defaultChoice.map { "default \($0)" } ?? "required"), one of \(choices.joined(separator: ", ")))"
                + (doc.isEmpty ? "" : ": \(doc)")
        }
        let defaultText = defaultValue.map { "default \(format($0))" } ?? "required"
        return "\(name) (\(kind == .real ? "" : "\(kind.rawValue), ")\(defaultText), \(rangeDescription))"
            + (doc.isEmpty ? "" : ": \(doc)")
    }

    /// Why `value` is not allowed, or `nil` when it is.
    func problem(with value: Double) -> String? {
        if value.isNaN { return "NaN is not a value" }
        // An unbounded side means any finite number: an infinite step size or decay only ever yields inf/NaN.
        if value.isInfinite { return "allowed: a finite number\(range == -Double.infinity...Double.infinity ? "" : ", \(rangeDescription)")" }
        if !range.contains(value) { return "allowed: \(rangeDescription)" }
        switch kind {
        case .real: return nil
        case .integer: return value == value.rounded() ? nil : "allowed: a whole number \(rangeDescription)"
        case .boolean: return value == 0 || value == 1 ? nil : "allowed: 0 or 1"
        case .choice: return value == value.rounded() ? nil : "allowed: the index of one of \(choices.joined(separator: ", "))"
        }
    }
}

/// Formats a number the way users typed it: `0.1`, `1`, `1e-05`.
func format(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return "\(value)"
}
