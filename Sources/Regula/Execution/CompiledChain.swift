import RegulaABI

/// A chain laid out for the executor: per rule, its C entry points and where its hyperparameters, slots and
/// reductions sit in the flat arrays the host keeps.
struct CompiledChain: @unchecked Sendable {
    /// The rule entry points and offsets, in chain order.
    struct Link {
        let kernel: regula_kernel_fn
        let reduce: regula_reduce_fn?
        let ruleData: UnsafeMutableRawPointer?
        /// Where the rule's values start in a group's resolved values.
        let hyperparameterOffset: Int
        /// Where the rule's elementwise slots start in a parameter's slot list, and how many it has.
        let slotOffset: Int
        let slotCount: Int
        /// Where the rule's scalar slots start.
        let scalarOffset: Int
        /// How many reductions it declares, and where they start in a lane's reduction values.
        let reductionCount: Int
        let reductionOffset: Int
    }

    let chain: Chain
    let links: [Link]
    /// Rule indices by stage (see ``Chain/stages``), each a contiguous range of the chain.
    let stages: [Range<Int>]
    /// Whether `d` must persist across stages, i.e. the chain has a reduction.
    let isStaged: Bool
    let totalReductions: Int
    /// Elementwise slots of all rules together.
    let totalSlots: Int
    /// Scalar slots of all rules together.
    let totalScalars: Int

    var rules: [Rule] { chain.rules }
    var slotKeys: [[String]] { chain.slotKeys }

    init(_ chain: Chain) {
        self.chain = chain
        var links: [Link] = []
        var hyperparameters = 0, slots = 0, scalars = 0, reductions = 0
        for rule in chain.rules {
            let slotCount = rule.stateSlots.filter { $0.shape == .elementwise }.count
            links.append(Link(kernel: rule.kernel.kernel, reduce: rule.kernel.reduce, ruleData: rule.kernel.ruleData,
                              hyperparameterOffset: hyperparameters, slotOffset: slots, slotCount: slotCount,
                              scalarOffset: scalars, reductionCount: rule.reductions.count, reductionOffset: reductions))
            hyperparameters += rule.hyperparameters.count
            slots += slotCount
            scalars += rule.stateSlots.count - slotCount
            reductions += rule.reductions.count
        }
        self.links = links
        stages = chain.stages.map { $0[0]..<($0[$0.count - 1] + 1) }
        isStaged = reductions > 0
        totalReductions = reductions
        totalSlots = slots
        totalScalars = scalars
    }
}
