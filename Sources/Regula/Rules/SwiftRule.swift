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
    /// The kernel, check, reduce and prepare closures become real C function pointers through libffi closures,
    /// so the optimizer cannot tell this rule from a loaded one. Each call costs one libffi trampoline on top of
    /// the Swift closure (a few nanoseconds per block, not per element; see Docs/ABI.md).
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
    ///   - scratchCount: Doubles of per-parameter scratch `prepare` fills, 0 to 16; more than 0 needs `prepare`.
    ///   - prepare: Runs once per parameter and step, before any `reduce` or `kernel` call of the rule for that
    ///     parameter, never twice at once for the same parameter; optional. It receives the whole parameter as
    ///     a block of no elements (``RuleBlock/count`` is 0; `dtype`, `step`, `parameterCount`, the
    ///     hyperparameters and the writable ``RuleBlock/scalarSlots`` are the parameter's) and the scratch,
    ///     `scratchCount` zeroes, to fill with values every block of the parameter then reads in
    ///     ``RuleBlock/scratch`` (per-step constants such as bias corrections). Scratch is not state: it is
    ///     neither saved nor kept between steps. A thrown error fails the step, and the scalar slots are put
    ///     back as they were.
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
                scratchCount: Int = 0,
                prepare: (@Sendable (RuleBlock, UnsafeMutableBufferPointer<Double>) throws -> Void)? = nil,
                check: (@Sendable ([Double]) throws -> Void)? = nil,
                kernel: @escaping @Sendable (RuleBlock) throws -> Void,
                fileID: String = #fileID, line: Int = #line) throws(RuleDeclarationError) {
        let hyperparameterCount = hyperparameters.count
        /// The block at argument 0, as Swift sees it.
        func view(_ arguments: UnsafeMutablePointer<UnsafeMutableRawPointer?>, reductionCount: Int) -> RuleBlock {
            RuleBlock(FFIClosure.argument(0, of: arguments, as: UnsafePointer<regula_block>.self),
                      hyperparameterCount: hyperparameterCount, slots: stateSlots, reductionCount: reductionCount,
                      scratchCount: scratchCount)
        }
        /// A libffi closure taking `argumentCount` pointers, the last of them the host's message buffer.
        func closure(_ argumentCount: Int, _ body: @escaping (UnsafeMutablePointer<UnsafeMutableRawPointer?>) throws -> Void)
            throws(RuleDeclarationError) -> FFIClosure {
            let made = FFIClosure(argumentCount: argumentCount) { arguments in
                let message = FFIClosure.argument(argumentCount - 1, of: arguments, as: UnsafeMutablePointer<regula_message>.self)
                return reportingFailure(into: message) { try body(arguments) }
            }
            guard let made else { throw RuleDeclarationError(rule: name, problems: ["libffi could not allocate a closure"]) }
            return made
        }
        /// The doubles at argument 1.
        func doubles(_ arguments: UnsafeMutablePointer<UnsafeMutableRawPointer?>, count: Int) -> UnsafeMutableBufferPointer<Double> {
            UnsafeMutableBufferPointer(start: FFIClosure.argument(1, of: arguments, as: UnsafeMutablePointer<Double>.self), count: count)
        }
        let kernelClosure = try closure(2) { try kernel(view($0, reductionCount: reductions.count)) }
        let reduceClosure = try reduce.map { (reduce) throws(RuleDeclarationError) in
            try closure(3) { try reduce(view($0, reductionCount: 0), doubles($0, count: reductions.count)) }
        }
        let prepareClosure = try prepare.map { (prepare) throws(RuleDeclarationError) in
            try closure(3) { try prepare(view($0, reductionCount: 0), doubles($0, count: scratchCount)) }
        }
        let checkClosure = try check.map { (check) throws(RuleDeclarationError) in
            try closure(3) { arguments in
                let values = FFIClosure.argument(0, of: arguments, as: UnsafePointer<Double>.self)
                try check(Array(UnsafeBufferPointer(start: values, count: hyperparameterCount)))
            }
        }
        let owner = SwiftRuleClosures(closures: [kernelClosure, checkClosure, reduceClosure, prepareClosure].compactMap { $0 })
        self.init(
            name: name, summary: summary, version: version, dtypes: dtypes, hyperparameters: hyperparameters,
            stateSlots: stateSlots, reductions: reductions, scratchCount: scratchCount,
            origin: .swift(location: "\(fileID):\(line)"),
            kernel: RuleKernel(
                kernel: unsafeBitCast(kernelClosure.code, to: regula_kernel_fn.self),
                check: checkClosure.map { unsafeBitCast($0.code, to: regula_check_fn.self) },
                reduce: reduceClosure.map { unsafeBitCast($0.code, to: regula_reduce_fn.self) },
                prepare: prepareClosure.map { unsafeBitCast($0.code, to: regula_prepare_fn.self) },
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
