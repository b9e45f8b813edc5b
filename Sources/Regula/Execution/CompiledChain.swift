import RegulaABI

/// A chain laid out for the executor: per rule, its C entry points and where its hyperparameters, slots,
/// scratch and reductions sit in the flat arrays the host keeps.
struct CompiledChain: @unchecked Sendable {
    /// The rule entry points and offsets, in chain order.
    struct Link {
        let kernel: regula_kernel_fn
        let reduce: regula_reduce_fn?
        let prepare: regula_prepare_fn?
        let ruleData: UnsafeMutableRawPointer?
        /// Where the rule's values start in a group's resolved values.
        let hyperparameterOffset: Int
        /// Where the rule's elementwise slots start in a parameter's slot list, and how many it has.
        let slotOffset: Int
        let slotCount: Int
        /// Where the rule's scalar slots start.
        let scalarOffset: Int
        /// How many reductions it declares, and where they start in an item's reduction values.
        let reductionCount: Int
        let reductionOffset: Int
        /// How many scratch values its prepare fills, and where they start in an item's scratch.
        let scratchCount: Int
        let scratchOffset: Int
    }

    /// How one slot (elementwise or scalar) comes into being.
    struct SlotOrigin {
        /// The slot's value before the first step, unless ``initialFrom`` says otherwise.
        let initialValue: Double
        /// Index in a group's resolved values of the hyperparameter the slot starts from, if any.
        let initialFrom: Int?
        /// Index in a group's resolved values of the hyperparameter that turns the slot on, if any.
        let enabledBy: Int?
        /// What the slot holds per parameter (elementwise, rows, columns or scalar).
        let kind: StateSlot.Shape
        /// The parameter ranks that have the slot.
        let ranks: ClosedRange<Int>
        /// Whether the slot starts as a copy of the parameter's values.
        let startsFromParameter: Bool

        /// The slot's starting value with a group's resolved `values`.
        func initial(_ values: UnsafePointer<Double>) -> Double { initialFrom.map { values[$0] } ?? initialValue }
        /// Whether the slot exists with a group's resolved `values`.
        func isEnabled(_ values: UnsafePointer<Double>) -> Bool { enabledBy.map { values[$0] != 0 } ?? true }
    }

    let chain: Chain
    let links: [Link]
    /// Rule indices by stage (see ``Chain/stages``), each a contiguous range of the chain.
    let stages: [Range<Int>]
    /// Whether `d` must persist across stages: a rule other than the first has reductions, or a rule sees
    /// whole tensors.
    let isStaged: Bool
    /// Per stage, whether it is one whole-tensor rule, run once per parameter instead of per block.
    let stageIsWhole: [Bool]
    /// Whether the first rule has reductions: they are folded from the gradients before anything runs.
    let hasLeadingReductions: Bool
    /// Whether every parameter's `d` must persist at once: a later stage's reduction spans the step, or a
    /// whole-tensor stage shares the parameters out among threads.
    let stagesSpanStep: Bool
    let totalReductions: Int
    let totalScratch: Int
    /// Elementwise slots of all rules together, and how each comes into being.
    let elementwiseSlots: [SlotOrigin]
    /// Scalar slots of all rules together, and how each comes into being.
    let scalarSlots: [SlotOrigin]
    /// Indices of the elementwise slots that exist only when an option turns them on.
    let conditionalSlots: [Int]
    /// Whether some element slot is shorter than the parameter (rows or columns): the journal and the finite
    /// check then take such a slot whole, with the parameter's first block.
    let hasFactoredSlots: Bool
    /// The links that have a prepare function.
    let preparing: [Int]

    var rules: [Rule] { chain.rules }
    var slotKeys: [[String]] { chain.slotKeys }
    var totalSlots: Int { elementwiseSlots.count }
    var totalScalars: Int { scalarSlots.count }

    init(_ chain: Chain) {
        self.chain = chain
        var links: [Link] = []
        var elementwise: [SlotOrigin] = [], scalar: [SlotOrigin] = []
        var hyperparameters = 0, reductions = 0, scratch = 0
        for rule in chain.rules {
            let names = rule.hyperparameters.map(\.name)
            let slotOffset = elementwise.count, scalarOffset = scalar.count
            for slot in rule.stateSlots {
                let origin = SlotOrigin(
                    initialValue: slot.initialValue,
                    initialFrom: slot.initialFrom.flatMap { names.firstIndex(of: $0) }.map { hyperparameters + $0 },
                    enabledBy: slot.enabledBy.flatMap { names.firstIndex(of: $0) }.map { hyperparameters + $0 },
                    kind: slot.shape, ranks: slot.ranks, startsFromParameter: slot.startsFromParameter)
                if slot.shape.holdsElements { elementwise.append(origin) } else { scalar.append(origin) }
            }
            links.append(Link(kernel: rule.kernel.kernel, reduce: rule.kernel.reduce, prepare: rule.kernel.prepare,
                              ruleData: rule.kernel.ruleData, hyperparameterOffset: hyperparameters,
                              slotOffset: slotOffset, slotCount: elementwise.count - slotOffset, scalarOffset: scalarOffset,
                              reductionCount: rule.reductions.count, reductionOffset: reductions,
                              scratchCount: rule.scratchCount, scratchOffset: scratch))
            hyperparameters += rule.hyperparameters.count
            reductions += rule.reductions.count
            scratch += rule.scratchCount
        }
        self.links = links
        stages = chain.stages.map { $0[0]..<($0[$0.count - 1] + 1) }
        isStaged = chain.rules.dropFirst().contains { !$0.reductions.isEmpty } || chain.rules.contains(where: \.isWholeTensor)
        stageIsWhole = stages.map { chain.rules[$0.lowerBound].isWholeTensor }
        hasLeadingReductions = !(chain.rules.first?.reductions.isEmpty ?? true)
        stagesSpanStep = chain.rules.dropFirst().contains { $0.reductions.contains { $0.scope == .step } }
            || chain.rules.contains(where: \.isWholeTensor)
        totalReductions = reductions
        totalScratch = scratch
        elementwiseSlots = elementwise
        scalarSlots = scalar
        conditionalSlots = elementwise.indices.filter { elementwise[$0].enabledBy != nil }
        hasFactoredSlots = elementwise.contains { $0.kind != .elementwise }
        preparing = links.indices.filter { links[$0].prepare != nil }
    }
}
