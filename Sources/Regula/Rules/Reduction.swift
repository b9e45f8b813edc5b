/// A value a rule computes over a whole parameter before transforming any of its blocks, such as the
/// squared norm `max_norm` needs.
///
/// The host folds every block into fresh partials with the rule's reduce function, combines the partials in
/// block order (so the result does not depend on the thread count), and hands the results to the kernel.
/// A reduction with ``Scope-swift.enum/step`` scope spans every parameter stepped together instead.
public struct Reduction: Sendable, Equatable, Codable {
    /// What a reduction runs over.
    public enum Scope: String, Sendable, Codable {
        /// The blocks of one parameter: one value per parameter (a parameter's norm).
        case parameter
        /// The blocks of every parameter that has a gradient in the step, across groups, combined in the
        /// order the optimizer lists its parameters: one value per step (torch's `clip_grad_norm_`).
        case step
    }

    /// How partial values combine.
    public enum Combine: String, Sendable, Codable {
        /// Start at 0 and add.
        case sum
        /// Start at −∞ and keep the largest.
        case max
        /// Start at +∞ and keep the smallest.
        case min

        /// The value each block's partial starts from.
        public var identity: Double {
            switch self {
            case .sum: 0
            case .max: -.infinity
            case .min: .infinity
            }
        }

        /// Combines two partials.
        public func callAsFunction(_ a: Double, _ b: Double) -> Double {
            switch self {
            case .sum: a + b
            case .max: Swift.max(a, b)
            case .min: Swift.min(a, b)
            }
        }
    }

    /// The reduction's name, unique within its rule.
    public let name: String
    /// One line of documentation.
    public let doc: String
    /// How partials combine.
    public let combine: Combine
    /// What the reduction runs over.
    public let scope: Scope

    /// Declares a reduction.
    public init(_ name: String, doc: String = "", combine: Combine = .sum, scope: Scope = .parameter) {
        self.name = name
        self.doc = doc
        self.combine = combine
        self.scope = scope
    }
}
