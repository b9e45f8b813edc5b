import Foundation
import RegulaABI

/// The C entry points of one rule: its kernel, its optional check, and the data they are handed back.
///
/// Whatever made them (a loaded shared object, or a libffi closure around Swift code) is kept alive here for
/// as long as the rule can be called.
final class RuleKernel: @unchecked Sendable {
    let kernel: regula_kernel_fn
    let check: regula_check_fn?
    let reduce: regula_reduce_fn?
    let prepare: regula_prepare_fn?
    let ruleData: UnsafeMutableRawPointer?
    /// Whether these entry points only stand in for a rule that a probe process described and this process
    /// never loaded (``RuleRegistry/init(describingWith:)``): they fail whenever called, and an optimizer
    /// refuses the rule before any could be.
    let isDescription: Bool
    /// How many live optimizers have this rule in their chain.
    let usage = UsageCount()
    private let owner: AnyObject?

    init(kernel: regula_kernel_fn, check: regula_check_fn?, reduce: regula_reduce_fn?, prepare: regula_prepare_fn? = nil,
         ruleData: UnsafeMutableRawPointer?, owner: AnyObject?, isDescription: Bool = false) {
        self.kernel = kernel
        self.check = check
        self.reduce = reduce
        self.prepare = prepare
        self.ruleData = ruleData
        self.owner = owner
        self.isDescription = isDescription
    }

    /// Entry points for a rule known only from a probe process's description: each fails with
    /// `REGULA_ERROR_INTERNAL`, and `reduce` and `prepare` are there exactly when the plugin's were, so the rule's
    /// declaration reads as the plugin's did.
    static func described(reduces: Bool, prepares: Bool) -> RuleKernel {
        let kernel: regula_kernel_fn = { _, _ in REGULA_ERROR_INTERNAL }
        let reduce: regula_reduce_fn = { _, _, _ in REGULA_ERROR_INTERNAL }
        let prepare: regula_prepare_fn = { _, _, _ in REGULA_ERROR_INTERNAL }
        return RuleKernel(kernel: kernel, check: nil, reduce: reduces ? reduce : nil, prepare: prepares ? prepare : nil,
                          ruleData: nil, owner: nil, isDescription: true)
    }

    /// Runs the kernel on one block; returns `nil` on success or the rule's status and words.
    @inline(__always)
    func run(_ block: UnsafePointer<regula_block>, messages: MessageBuffer) -> (status: Int32, words: String)? {
        let status = kernel(block, messages.message)
        guard status != RegulaABISymbols.ok else { return nil }
        return (status, messages.text(or: "the kernel failed with status \(status) and no message"))
    }

    /// Folds one block into `partials`; returns `nil` on success or the rule's status and words.
    @inline(__always)
    func reduce(_ block: UnsafePointer<regula_block>, into partials: UnsafeMutablePointer<Double>,
                messages: MessageBuffer) -> (status: Int32, words: String)? {
        guard let reduce else { return nil }
        let status = reduce(block, partials, messages.message)
        guard status != RegulaABISymbols.ok else { return nil }
        return (status, messages.text(or: "the reduction failed with status \(status) and no message"))
    }

    /// Runs the rule's prepare function for one parameter (a block covering no elements), filling `scratch`;
    /// returns `nil` on success or without a prepare function, else the rule's status and words.
    @inline(__always)
    func prepare(_ parameter: UnsafePointer<regula_block>, scratch: UnsafeMutablePointer<Double>,
                 messages: MessageBuffer) -> (status: Int32, words: String)? {
        guard let prepare else { return nil }
        let status = prepare(parameter, scratch, messages.message)
        guard status != RegulaABISymbols.ok else { return nil }
        return (status, messages.text(or: "prepare failed with status \(status) and no message"))
    }

    /// Asks the rule whether a combination of in-range values is acceptable; `nil` if it is, else its words.
    func refusal(of values: [Double]) -> String? {
        guard let check else { return nil }
        let messages = MessageBuffer()
        let status = values.withUnsafeBufferPointer { check($0.baseAddress, ruleData, messages.message) }
        guard status != RegulaABISymbols.ok else { return nil }
        return messages.text(or: "the rule refused these values (status \(status)) without saying why")
    }
}

/// A count that several threads may change.
final class UsageCount: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    /// The current count.
    var count: Int { lock.withLock { value } }
    /// Adds `delta` (positive or negative).
    func add(_ delta: Int) { lock.withLock { value += delta } }
}
