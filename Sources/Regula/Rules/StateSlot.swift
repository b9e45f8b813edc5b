/// State a rule keeps between steps, declared by the rule and owned by the host.
///
/// The host allocates each slot when a parameter takes its first step, fills it with ``initialValue`` (or
/// the value of the hyperparameter ``initialFrom`` names), hands the rule the part matching each block, and
/// saves it with the optimizer. A slot with ``enabledBy`` exists only once a step has run with that option
/// on, as torch creates `max_exp_avg_sq` only with `amsgrad`. A slot declared ``isNonNegative`` never holds
/// a negative value, and a checkpoint whose copy of it does is refused.
public struct StateSlot: Sendable, Equatable, Codable {
    /// How much storage a slot takes per parameter.
    public enum Shape: String, Sendable, Codable {
        /// One element per parameter element, with the parameter's dtype (e.g. `momentum_buffer`).
        case elementwise
        /// One `Double` per parameter.
        case scalar
        /// One element per row of the last two dimensions, with the parameter's dtype: shape (…, m, 1) for a
        /// parameter of shape (…, m, n), as Adafactor's `row_var` (ABI 1.3; whole-tensor rules, rank 2 and up).
        case rows
        /// One element per column of the last two dimensions: shape (…, 1, n), as Adafactor's `col_var`.
        case columns

        /// Whether the slot holds elements of the parameter's dtype (every shape but ``scalar``).
        public var holdsElements: Bool { self != .scalar }

        /// The slot's shape for a parameter of shape `parameter`: the parameter's, `[]` for a scalar, or the
        /// parameter's with its last (rows) or second-last (columns) size set to 1; nil for rows or columns of
        /// a parameter with fewer than two dimensions, which has no such slot.
        public func shape(for parameter: [Int]) -> [Int]? {
            var shape = parameter
            switch self {
            case .elementwise: break
            case .scalar: shape = []
            case .rows, .columns:
                guard shape.count >= 2 else { return nil }
                shape[shape.count - (self == .rows ? 1 : 2)] = 1
            }
            return shape
        }
    }

    /// The slot's name, unique within its rule.
    public let name: String
    /// One line of documentation.
    public let doc: String
    /// Per element or per parameter.
    public let shape: Shape
    /// Every element's value before the parameter's first step.
    public let initialValue: Double
    /// A hyperparameter of the rule whose value (in the parameter's group, when the slot is created) the slot
    /// starts at instead of ``initialValue``; `nil` for ``initialValue``.
    public let initialFrom: String?
    /// A hyperparameter of the rule that turns the slot on: the slot is created by the first step that runs
    /// with it non-zero and does not exist before; `nil` for a slot every parameter has. Elementwise only.
    public let enabledBy: String?
    /// Whether every value of the slot is at least 0 (a running mean of squares, a sum of squares, a step
    /// size): the start value must be, and state that holds a negative value could not have come from the
    /// rule's steps, so a checkpoint holding one is refused (`REGULA_SLOT_NON_NEGATIVE`, ABI 1.3).
    public let isNonNegative: Bool
    /// Whether the slot starts as a copy of the parameter's values (`REGULA_SLOT_FROM_PARAMETER`, ABI 1.3),
    /// as schedule-free SGD's `z` does. Elementwise only.
    public let startsFromParameter: Bool
    /// The parameter ranks for which the slot exists (`min_rank`...`max_rank`, ABI 1.3); ``Rule/allRanks``
    /// unless bounded, and from 2 up for ``Shape/rows`` and ``Shape/columns``. Elsewhere the kernel gets NULL in
    /// its place and the state has no such slot (Adafactor's `variance` exists for vectors only).
    public let ranks: ClosedRange<Int>

    /// Declares a state slot.
    public init(_ name: String, doc: String = "", shape: Shape = .elementwise, initialValue: Double = 0,
                initialFrom: String? = nil, enabledBy: String? = nil, isNonNegative: Bool = false,
                startsFromParameter: Bool = false, ranks: ClosedRange<Int>? = nil) {
        self.name = name
        self.doc = doc
        self.shape = shape
        self.initialValue = initialValue
        self.initialFrom = initialFrom
        self.enabledBy = enabledBy
        self.isNonNegative = isNonNegative
        self.startsFromParameter = startsFromParameter
        self.ranks = ranks ?? (shape == .rows || shape == .columns ? 2...Rule.allRanks.upperBound : Rule.allRanks)
    }

    /// Whether a parameter of `rank` dimensions has this slot.
    public func exists(forRank rank: Int) -> Bool { ranks.contains(rank) }
}
