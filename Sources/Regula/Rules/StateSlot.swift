/// State a rule keeps between steps, declared by the rule and owned by the host.
///
/// The host allocates each slot when a parameter takes its first step, fills it with ``initialValue``,
/// hands the rule the part matching each block, and saves it with the optimizer.
public struct StateSlot: Sendable, Equatable {
    /// How much storage a slot takes per parameter.
    public enum Shape: String, Sendable {
        /// One element per parameter element, with the parameter's dtype (e.g. `momentum_buffer`).
        case elementwise
        /// One `Double` per parameter.
        case scalar
    }

    /// The slot's name, unique within its rule.
    public let name: String
    /// One line of documentation.
    public let doc: String
    /// Per element or per parameter.
    public let shape: Shape
    /// Every element's value before the parameter's first step.
    public let initialValue: Double

    /// Declares a state slot.
    public init(_ name: String, doc: String = "", shape: Shape = .elementwise, initialValue: Double = 0) {
        self.name = name
        self.doc = doc
        self.shape = shape
        self.initialValue = initialValue
    }
}
