/// One property `regula check` verifies for every rule of a plugin.
public enum ConformanceCheck: String, CaseIterable, Sendable, Codable {
    /// Names are identifiers, ranges sane, defaults inside their ranges, a summary is given.
    case descriptor = "descriptor"
    /// Some in-range hyperparameter values pass the rule's own check.
    case hyperparameters = "hyperparameters"
    /// A block of length 0 returns success without touching memory.
    case emptyBlock = "empty-block"
    /// Splitting a parameter into other blocks gives the same bits.
    case blockSplit = "block-split"
    /// Running blocks on several threads gives the same bits; for a whole-tensor rule, stepping several
    /// parameters at once, and the BLAS's thread count, change no bit.
    case threads = "threads"
    /// The same inputs give the same bits twice.
    case deterministic = "deterministic"
    /// No element outside the block handed over is written (for a whole-tensor rule, outside the parameter).
    case writesInsideBlock = "writes-inside-block"
    /// No access past the end of a block (a whole-tensor rule's block is its parameter): the memory after it is a
    /// guard page.
    case guardAfter = "guard-after"
    /// No access before the start of a block: the memory before it is a guard page.
    case guardBefore = "guard-before"
    /// Finite inputs at the chosen hyperparameters give finite outputs.
    case finite = "finite"
    /// Saving the state and restoring it continues bit for bit.
    case stateRoundTrip = "state-round-trip"
    /// Two parameters stepped in turn give what each gives alone: no state outside the slots.
    case noHiddenState = "no-hidden-state"
    /// float32 and float64 results agree to float32 precision.
    case precision = "precision"

    /// What the check establishes, for reports.
    public var summary: String {
        switch self {
        case .descriptor: "descriptor is well formed"
        case .hyperparameters: "some in-range hyperparameters pass the rule's check"
        case .emptyBlock: "an empty block is a no-op"
        case .blockSplit: "results do not depend on the block split (bit for bit)"
        case .threads: "results do not depend on the thread count (bit for bit)"
        case .deterministic: "the same inputs give the same bits twice"
        case .writesInsideBlock: "nothing outside the block is written"
        case .guardAfter: "no access past a block's end (guard page)"
        case .guardBefore: "no access before a block's start (guard page)"
        case .finite: "finite inputs give finite outputs (and non-negative slots stay so)"
        case .stateRoundTrip: "state survives a save and restore"
        case .noHiddenState: "no state outside the declared slots"
        case .precision: "float32 and float64 agree to float32 precision"
        }
    }
}

/// The outcome of one check on one rule.
public struct ConformanceResult: Sendable, Codable, Equatable {
    /// The rule checked.
    public let rule: String
    /// The check.
    public let check: ConformanceCheck
    /// Whether the rule passed.
    public let passed: Bool
    /// What was found (the values used, or what went wrong); for a check that does not apply, why not.
    public let detail: String
    /// Whether the check means anything for the rule: a whole-tensor rule is never split into blocks, so the
    /// block-split check does not apply to it. A check that does not apply is neither run nor failed.
    public let isApplicable: Bool

    /// Creates a result.
    public init(rule: String, check: ConformanceCheck, passed: Bool, detail: String, isApplicable: Bool = true) {
        self.rule = rule
        self.check = check
        self.passed = passed
        self.detail = detail
        self.isApplicable = isApplicable
    }

    /// The result of a check that does not apply to the rule, saying why.
    public static func notApplicable(rule: String, check: ConformanceCheck, reason: String) -> ConformanceResult {
        ConformanceResult(rule: rule, check: check, passed: true, detail: reason, isApplicable: false)
    }
}
