/// Runs the conformance checks of `regula check` on one rule, in this process.
///
/// A rule that writes out of bounds makes the guard-page checks crash the process: run them in a child
/// process to report that instead (the `regula check` command does).
///
/// A whole-tensor rule (``Rule/isWholeTensor``) is called as the host calls it: once per parameter and step,
/// on one block covering the parameter, with its rank and shape. Its checks mean the same things for the
/// parameter as a block rule's do for a block; the block-split check does not apply to it, and its thread
/// check steps several parameters at once and changes the BLAS's thread count instead of the blocks' threads.
public enum Conformance {
    /// Steps taken in each trajectory.
    static let steps = 3

    /// Checks `rule` on the shape and options of `setup` (which ``ConformanceSetup/validate(for:)`` has
    /// accepted), calling `starting` before each check (so a crash can be attributed to it).
    public static func check(_ rule: Rule, setup: ConformanceSetup = ConformanceSetup(),
                             skipping skipped: Set<ConformanceCheck> = [],
                             starting: (ConformanceCheck) -> Void = { _ in }) -> [ConformanceResult] {
        var results: [ConformanceResult] = []
        func record(_ check: ConformanceCheck, _ body: () -> (Bool, String)) {
            guard !skipped.contains(check) else { return }
            starting(check)
            let (passed, detail) = body()
            results.append(ConformanceResult(rule: rule.name, check: check, passed: passed, detail: detail))
        }
        let shape = setup.shape(for: rule)
        let subject = Subject(rule: rule, shape: shape)
        record(.descriptor) {
            var problems = rule.declarationProblems
            if rule.summary.isEmpty { problems.append("the summary is empty") }
            return problems.isEmpty
                ? (true, "\(rule.hyperparameters.count) hyperparameters, \(rule.stateSlots.count) slots, \(rule.reductions.count) reductions"
                    + (rule.isWholeTensor ? ", sees whole tensors" : "") + (rule.ranks == Rule.allRanks ? "" : ", \(describe(rule.ranks))"))
                : (false, problems.joined(separator: "; "))
        }
        let given = setup.givenValues(for: rule)
        let checked: CheckedValues
        switch CheckedValues.accepted(by: rule, given: given) {
        case .failure(let refusal):
            record(.hyperparameters) {
                (false, "the rule's check refused every combination tried" + (refusal.words.isEmpty ? "" : ": \(refusal.words)"))
            }
            return results
        case .success(let accepted): checked = accepted
        }
        let values = checked.values
        record(.hyperparameters) { (true, "\(checked.described); \(subject.describedShape)") }
        let dtype = rule.dtypes.contains(.float32) ? DType.float32 : rule.dtypes[0]
        let split = subject.split(dtype)

        record(.emptyBlock) {
            // A whole-tensor rule is called on an empty parameter as a block rule is on an empty block.
            let empty = [0] + shape.dropFirst()
            let workspace = RuleWorkspace(rule: rule, dtype: dtype, shape: empty, edge: .end, values: values)
            let failure = workspace.step(hyperparameters: values, blockLengths: [0])
            return failure.map { (false, $0) } ?? (true, "returned success" + (rule.isWholeTensor ? " on shape \(text(empty))" : ""))
        }
        if rule.isWholeTensor {
            if !skipped.contains(.blockSplit) {
                results.append(.notApplicable(rule: rule.name, check: .blockSplit,
                                              reason: "a whole-tensor rule is handed its parameter whole, never split into blocks"))
            }
        } else {
            record(.blockSplit) {
                let count = subject.count
                let reference = trajectory(subject, dtype, values, split: split)
                for other in [[count], splitAt([1, 7, 1000, 2048], count), Array(repeating: 1, count: count)] {
                    if let difference = compareBits(reference, trajectory(subject, dtype, values, split: other)) {
                        return (false, "blocks of \(describe(other)) elements differ from the host's blocks: \(difference)")
                    }
                }
                return (true, "the host's blocks, one block, \(describe(splitAt([1, 7, 1000, 2048], count))), and 1 element agree")
            }
        }
        record(.threads) {
            if rule.isWholeTensor { return wholeTensorThreads(subject, dtype, values) }
            let count = subject.count
            let blocks = Array(repeating: 64, count: count / 64) + (count % 64 == 0 ? [] : [count % 64])
            let one = trajectory(subject, dtype, values, split: blocks, threads: 1)
            for threads in [2, 4] {
                if let difference = compareBits(one, trajectory(subject, dtype, values, split: blocks, threads: threads)) {
                    return (false, "\(threads) threads differ from 1: \(difference)")
                }
            }
            return (true, "1, 2 and 4 threads agree")
        }
        record(.deterministic) {
            let difference = compareBits(trajectory(subject, dtype, values, split: split), trajectory(subject, dtype, values, split: split))
            return difference.map { (false, "two identical runs differ: \($0)") } ?? (true, "two runs agree")
        }
        record(.writesInsideBlock) {
            rule.isWholeTensor ? writesInsideParameter(subject, dtype, values) : writesInsideBlock(subject, dtype, values)
        }
        record(.guardAfter) { guarded(subject, dtype, values, edge: .end) }
        record(.guardBefore) { guarded(subject, dtype, values, edge: .start) }
        record(.finite) {
            // At the defaults (when the rule's check accepts them) and at the values used above.
            let defaults = CheckedValues.defaults(of: rule, given: given)
            for tried in (rule.kernel.refusal(of: defaults) == nil ? [defaults] : []) + [values] {
                let outcome = trajectory(subject, dtype, tried, split: split)
                let at = CheckedValues.describe(tried, of: rule)
                if let failure = outcome.failure { return (false, "at \(at): \(failure)") }
                let bad = outcome.workspace.numbers.filter { !$0.isFinite }.count
                if bad > 0 { return (false, "at \(at): \(bad) outputs are NaN or infinite") }
                if let (slot, value) = outcome.workspace.negativeSlot {
                    return (false, "at \(at): slot \(quoted(slot.name)) is declared non-negative but holds \(value)")
                }
            }
            return (true, rule.stateSlots.contains(where: \.isNonNegative)
                ? "all outputs finite, slots declared non-negative stay so" : "all outputs finite")
        }
        record(.stateRoundTrip) { stateRoundTrip(subject, dtype, values) }
        record(.noHiddenState) { noHiddenState(subject, dtype, values) }
        record(.precision) { precision(subject, values) }
        return results
    }

    /// The rule checked and the shape of its test parameter.
    struct Subject {
        let rule: Rule
        let shape: [Int]
        var count: Int { shape.reduce(1, *) }

        /// The blocks the host hands the rule a parameter of `dtype` in: one for a whole-tensor rule.
        func split(_ dtype: DType) -> [Int] { rule.isWholeTensor ? [count] : hostBlocks(count, dtype) }

        /// `shape [24, 40] (rank 2), whole tensor: one call per parameter and step`.
        var describedShape: String {
            "shape \(text(shape)) (rank \(shape.count))"
                + (rule.isWholeTensor ? ", whole tensor: one call per parameter and step" : ", in the host's blocks")
        }

        /// A shape of the same rank for `count` elements: `[count]`, or `[1, …, 1, count]`.
        func flat(_ count: Int) -> [Int] { Array(repeating: 1, count: shape.count - 1) + [count] }

        /// Another parameter of the same rank, and of other sizes, for the hidden-state check.
        var otherShape: [Int] { shape.count == 1 ? [777] : shape.dropLast(2) + [9, 13] }
    }

    // MARK: - Trajectories

    /// A workspace after ``steps`` steps from fixed inputs, and the first failure if any.
    struct Outcome {
        let workspace: RuleWorkspace
        let failure: String?
    }

    static func trajectory(_ subject: Subject, _ dtype: DType, _ values: [Double], split: [Int], threads: Int = 1,
                           edge: GuardedMemory.Edge? = nil, shape: [Int]? = nil, seed: UInt64 = 1) -> Outcome {
        let workspace = RuleWorkspace(rule: subject.rule, dtype: dtype, shape: shape ?? subject.shape, edge: edge, values: values)
        let count = workspace.count
        var random = SplitMix(seed: seed)
        workspace.fill(workspace.param, with: (0..<count).map { _ in random.value(in: 2) })
        for _ in 0..<steps {
            workspace.fill(workspace.gradient, with: (0..<count).map { _ in random.value(in: 1) })
            if let failure = workspace.step(hyperparameters: values, blockLengths: split, threads: threads) {
                return Outcome(workspace: workspace, failure: failure)
            }
        }
        return Outcome(workspace: workspace, failure: nil)
    }

    /// Where two outcomes differ, or `nil` when they agree bit for bit.
    static func compareBits(_ a: Outcome, _ b: Outcome) -> String? {
        if let failure = a.failure ?? b.failure { return "a step failed: \(failure)" }
        let (x, y) = (a.workspace.bits, b.workspace.bits)
        guard let index = x.indices.first(where: { x[$0] != y[$0] }) else { return x.count == y.count ? nil : "different output counts" }
        return "first difference at output \(index) of \(x.count)"
    }

    // MARK: - Individual checks

    static func writesInsideBlock(_ subject: Subject, _ dtype: DType, _ values: [Double]) -> (Bool, String) {
        // Step only the middle of three blocks (whole-parameter reductions still see everything); every
        // element outside it must keep its bits.
        let workspace = RuleWorkspace(rule: subject.rule, dtype: dtype, shape: subject.flat(3 * 512), values: values)
        var random = SplitMix(seed: 7)
        workspace.fill(workspace.param, with: (0..<workspace.count).map { _ in random.value(in: 2) })
        workspace.fill(workspace.gradient, with: (0..<workspace.count).map { _ in random.value(in: 1) })
        for slot in workspace.slots { workspace.fill(slot.memory, with: (0..<slot.length).map { _ in random.value(in: 1) }) }
        workspace.update.copyMemory(from: workspace.gradient, byteCount: workspace.count * dtype.size)
        let changeable = workspace.buffers.filter { $0.name != "grad" }
        let before = changeable.map { workspace.read($0.memory, length: $0.length) }
        if let failure = workspace.step(hyperparameters: values, blockLengths: [512, 512, 512], only: 1) {
            return (false, failure)
        }
        let after = changeable.map { workspace.read($0.memory, length: $0.length) }
        for (name, (old, new)) in zip(changeable.map(\.name), zip(before, after)) {
            for index in Array(0..<512) + Array(1024..<1536) where old[index].bitPattern != new[index].bitPattern {
                return (false, "\(name)[\(index)] changed, outside the block 512..<1024 that was handed over")
            }
        }
        return (true, "the elements around the block kept their bits")
    }

    static func guarded(_ subject: Subject, _ dtype: DType, _ values: [Double], edge: GuardedMemory.Edge) -> (Bool, String) {
        // One block the size of the buffers, so the block's edge is the guard page: a stray access faults.
        let outcome = trajectory(subject, dtype, values, split: [subject.count], edge: edge)
        if let failure = outcome.failure { return (false, failure) }
        return (true, "no fault with the guard page right \(edge == .end ? "after" : "before") every buffer"
                    + (subject.rule.isWholeTensor ? " of the \(text(subject.shape)) parameter" : ""))
    }

    static func stateRoundTrip(_ subject: Subject, _ dtype: DType, _ values: [Double]) -> (Bool, String) {
        let split = subject.split(dtype)
        let straight = trajectory(subject, dtype, values, split: split)
        // Same inputs, but the state is saved after the second step, scrambled, and restored.
        let workspace = RuleWorkspace(rule: subject.rule, dtype: dtype, shape: subject.shape, values: values)
        let count = workspace.count
        var random = SplitMix(seed: 1)
        workspace.fill(workspace.param, with: (0..<count).map { _ in random.value(in: 2) })
        for step in 0..<steps {
            workspace.fill(workspace.gradient, with: (0..<count).map { _ in random.value(in: 1) })
            if step == steps - 1 {
                let saved = workspace.saveState()
                workspace.resetState()
                for slot in workspace.slots { workspace.fill(slot.memory, with: Array(repeating: 123, count: slot.length)) }
                workspace.restoreState(saved)
            }
            if let failure = workspace.step(hyperparameters: values, blockLengths: split) { return (false, failure) }
        }
        let difference = compareBits(straight, Outcome(workspace: workspace, failure: nil))
        return difference.map { (false, "restored run differs: \($0)") } ?? (true, "restored run continues bit for bit")
    }

    static func noHiddenState(_ subject: Subject, _ dtype: DType, _ values: [Double]) -> (Bool, String) {
        let split = subject.split(dtype)
        let alone = trajectory(subject, dtype, values, split: split)
        // Step a second, different parameter between each step of the first.
        let first = RuleWorkspace(rule: subject.rule, dtype: dtype, shape: subject.shape, values: values)
        let other = RuleWorkspace(rule: subject.rule, dtype: dtype, shape: subject.otherShape, values: values)
        let (count, otherCount) = (first.count, other.count)
        var random = SplitMix(seed: 1), noise = SplitMix(seed: 99)
        first.fill(first.param, with: (0..<count).map { _ in random.value(in: 2) })
        other.fill(other.param, with: (0..<otherCount).map { _ in noise.value(in: 5) })
        for _ in 0..<steps {
            first.fill(first.gradient, with: (0..<count).map { _ in random.value(in: 1) })
            other.fill(other.gradient, with: (0..<otherCount).map { _ in noise.value(in: 3) })
            if let failure = first.step(hyperparameters: values, blockLengths: split) { return (false, failure) }
            if let failure = other.step(hyperparameters: values, blockLengths: [otherCount]) { return (false, failure) }
        }
        let difference = compareBits(alone, Outcome(workspace: first, failure: nil))
        return difference.map { (false, "stepping another parameter (\(text(subject.otherShape))) in between changed the result: \($0)") }
            ?? (true, "another parameter (\(text(subject.otherShape))) stepped in between changed nothing")
    }

    static func precision(_ subject: Subject, _ values: [Double]) -> (Bool, String) {
        let rule = subject.rule
        guard rule.dtypes.contains(.float32), rule.dtypes.contains(.float64) else {
            return (true, "only \(rule.dtypes.map(\.rawValue).joined()) supported; nothing to compare")
        }
        let single = trajectory(subject, .float32, values, split: subject.split(.float32))
        let double = trajectory(subject, .float64, values, split: subject.split(.float64))
        if let failure = single.failure ?? double.failure { return (false, failure) }
        var worst = 0.0
        for (a, b) in zip(single.workspace.numbers, double.workspace.numbers) where a.isFinite && b.isFinite {
            worst = max(worst, abs(a - b) / max(1, abs(b)))
        }
        return worst <= 1e-5 ? (true, "largest relative difference \(worst)")
                             : (false, "largest relative difference \(worst) exceeds 1e-5")
    }

    // MARK: - Helpers

    /// The host's own split of `count` elements of `dtype` into blocks.
    static func hostBlocks(_ count: Int, _ dtype: DType) -> [Int] {
        let length = ChainExecutor.blockLength(elementSize: dtype.size)
        return stride(from: 0, to: count, by: length).map { min(length, count - $0) }
    }

    /// Blocks of the given lengths, as many of them as leave room for at least one more element, then the rest.
    static func splitAt(_ lengths: [Int], _ count: Int) -> [Int] {
        var taken: [Int] = []
        for length in lengths where taken.reduce(0, +) + length < count { taken.append(length) }
        return taken + [count - taken.reduce(0, +)]
    }

    static func describe(_ split: [Int]) -> String {
        split.count > 6 ? split.prefix(4).map(String.init).joined(separator: "/") + "/…" : split.map(String.init).joined(separator: "/")
    }

    /// `rank 2 only`, `ranks 1 to 8`.
    static func describe(_ ranks: ClosedRange<Int>) -> String {
        ranks.count == 1 ? "rank \(ranks.lowerBound) only" : "ranks \(ranks.lowerBound) to \(ranks.upperBound)"
    }

    /// `[24, 40]`.
    static func text(_ shape: [Int]) -> String { "[\(shape.map(String.init).joined(separator: ", "))]" }
}

/// A small, fast, seeded generator so that every run checks the same inputs.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A float32-representable value in [-bound, bound], exactly 0 one time in sixteen.
    mutating func value(in bound: Double) -> Double {
        let bits = next()
        if bits & 15 == 0 { return 0 }
        return Double(Float((Double(bits >> 11) / Double(1 << 53) * 2 - 1) * bound))
    }
}
