import RegulaABI

/// An error a rule written in Swift throws from its kernel or check; the optimizer reports its words.
public struct RuleFailure: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for the user.
    public let message: String
    /// Creates a failure with its words.
    public init(_ message: String) { self.message = message }
    /// The words.
    public var description: String { message }
}

extension Rule {
    /// Defines a rule in Swift code, run through the same C calling path as rules from shared objects.
    ///
    /// The kernel and check become real C function pointers through libffi closures, so the optimizer cannot
    /// tell this rule from a loaded one. Each call costs one libffi trampoline on top of the Swift closure
    /// (a few nanoseconds per block, not per element; see Docs/ABI.md).
    ///
    /// - Parameters:
    ///   - name: What users select the rule by; an identifier.
    ///   - summary: One line: what the rule does to the update.
    ///   - version: The rule's own version, shown by `regula list` and recorded in checkpoints.
    ///   - dtypes: Element types the kernel handles.
    ///   - hyperparameters: What the kernel reads, in the order ``RuleBlock/hyperparameter(_:)`` indexes them.
    ///   - stateSlots: State the host keeps for the rule, in the order ``RuleBlock`` indexes them.
    ///   - reductions: Values over the whole parameter the kernel needs (``RuleBlock/reductions``).
    ///   - reduce: Folds one block into the partials, one per reduction, each starting at its combine's
    ///     identity; required exactly when `reductions` is not empty.
    ///   - check: Refuses a combination of in-range values (in declaration order) by throwing; optional.
    ///   - kernel: Transforms one block. May run concurrently on disjoint blocks; must keep no state of its
    ///     own. A thrown error fails the step with its words.
    ///   - fileID: Where the rule is defined, shown as its origin; leave the default.
    ///   - line: The line it is defined on, shown as its origin; leave the default.
    /// - Throws: ``RuleDeclarationError`` when the declaration is malformed.
    public init(name: String, summary: String, version: Int = 1, dtypes: [DType] = DType.allCases,
                hyperparameters: [Hyperparameter] = [], stateSlots: [StateSlot] = [],
                reductions: [Reduction] = [],
                reduce: (@Sendable (RuleBlock, UnsafeMutableBufferPointer<Double>) throws -> Void)? = nil,
                check: (@Sendable ([Double]) throws -> Void)? = nil,
                kernel: @escaping @Sendable (RuleBlock) throws -> Void,
                fileID: String = #fileID, line: Int = #line) throws {
        let hyperparameterCount = hyperparameters.count
        guard let kernelClosure = FFIClosure(argumentCount: 2, body: { arguments in
            let block = FFIClosure.argument(0, of: arguments, as: UnsafePointer<regula_block>.self)
            let message = FFIClosure.argument(1, of: arguments, as: UnsafeMutablePointer<regula_message>.self)
            return reportingFailure(into: message) {
                try kernel(RuleBlock(block, hyperparameterCount: hyperparameterCount, slots: stateSlots,
                                     reductionCount: reductions.count))
            }
        }) else { throw RuleDeclarationError(rule: name, problems: ["libffi could not allocate a closure"]) }
        var reduceClosure: FFIClosure?
        if let reduce {
            reduceClosure = FFIClosure(argumentCount: 3, body: { arguments in
                let block = FFIClosure.argument(0, of: arguments, as: UnsafePointer<regula_block>.self)
                let partials = FFIClosure.argument(1, of: arguments, as: UnsafeMutablePointer<Double>.self)
                let message = FFIClosure.argument(2, of: arguments, as: UnsafeMutablePointer<regula_message>.self)
                return reportingFailure(into: message) {
                    try reduce(RuleBlock(block, hyperparameterCount: hyperparameterCount, slots: stateSlots,
                                         reductionCount: 0),
                               UnsafeMutableBufferPointer(start: partials, count: reductions.count))
                }
            })
            if reduceClosure == nil {
                throw RuleDeclarationError(rule: name, problems: ["libffi could not allocate a closure"])
            }
        }
        var checkClosure: FFIClosure?
        if let check {
            checkClosure = FFIClosure(argumentCount: 3, body: { arguments in
                let values = FFIClosure.argument(0, of: arguments, as: UnsafePointer<Double>.self)
                let message = FFIClosure.argument(2, of: arguments, as: UnsafeMutablePointer<regula_message>.self)
                return reportingFailure(into: message) {
                    try check(Array(UnsafeBufferPointer(start: values, count: hyperparameterCount)))
                }
            })
            if checkClosure == nil {
                throw RuleDeclarationError(rule: name, problems: ["libffi could not allocate a closure"])
            }
        }
        let owner = SwiftRuleClosures(closures: [kernelClosure, checkClosure, reduceClosure].compactMap { $0 })
        self.init(
            name: name, summary: summary, version: version, dtypes: dtypes, hyperparameters: hyperparameters,
            stateSlots: stateSlots, reductions: reductions, origin: .swift(location: "\(fileID):\(line)"),
            kernel: RuleKernel(
                kernel: unsafeBitCast(kernelClosure.code, to: regula_kernel_fn.self),
                check: checkClosure.map { unsafeBitCast($0.code, to: regula_check_fn.self) },
                reduce: reduceClosure.map { unsafeBitCast($0.code, to: regula_reduce_fn.self) },
                ruleData: nil, owner: owner))
        let problems = declarationProblems
        if !problems.isEmpty { throw RuleDeclarationError(rule: name, problems: problems) }
    }
}

/// Why a rule defined in Swift was refused.
public struct RuleDeclarationError: Error, Sendable, CustomStringConvertible {
    /// The rule's name as given.
    public let rule: String
    /// Each problem found.
    public let problems: [String]
    /// `rule "x" is malformed: ...`.
    public var description: String { "rule \(quoted(rule)) is malformed: " + problems.joined(separator: "; ") }
}

/// Keeps a Swift rule's libffi closures alive as long as the rule.
private final class SwiftRuleClosures: Sendable {
    let closures: [FFIClosure]
    init(closures: [FFIClosure]) { self.closures = closures }
}

/// Runs `body`, turning a thrown error into a status and words in the host's buffer: no Swift error ever
/// crosses the C boundary.
private func reportingFailure(into message: UnsafeMutablePointer<regula_message>, _ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return regula_status(REGULA_OK)
    } catch {
        let words = (error as? RuleFailure)?.message ?? String(describing: error)
        let capacity = message.pointee.capacity
        if let text = message.pointee.text, capacity > 0 {
            let bytes = Array(words.utf8.prefix(capacity - 1))
            bytes.withUnsafeBufferPointer { source in
                UnsafeMutableRawPointer(text).copyMemory(from: source.baseAddress!, byteCount: source.count)
            }
            text[bytes.count] = 0
        }
        return regula_status(REGULA_ERROR_INVALID_ARGUMENT)
    }
}
