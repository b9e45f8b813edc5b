/// Runs the conformance checks of `regula check` on one rule, in this process.
///
/// A rule that writes out of bounds makes the guard-page checks crash the process: run them in a child
/// process to report that instead (the `regula check` command does).
public enum Conformance {
    /// Elements in the test parameter: odd, and more than two host blocks.
    static let count = 5003
    /// Steps taken in each trajectory.
    static let steps = 3

    /// Checks `rule`, calling `starting` before each check (so a crash can be attributed to it).
    public static func check(_ rule: Rule, skipping skipped: Set<ConformanceCheck> = [],
                             starting: (ConformanceCheck) -> Void = { _ in }) -> [ConformanceResult] {
        var results: [ConformanceResult] = []
        func record(_ check: ConformanceCheck, _ body: () -> (Bool, String)) {
            guard !skipped.contains(check) else { return }
            starting(check)
            let (passed, detail) = body()
            results.append(ConformanceResult(rule: rule.name, check: check, passed: passed, detail: detail))
        }
        record(.descriptor) {
            var problems = rule.declarationProblems
            if rule.summary.isEmpty { problems.append("the summary is empty") }
            return problems.isEmpty
                ? (true, "\(rule.hyperparameters.count) hyperparameters, \(rule.stateSlots.count) slots, \(rule.reductions.count) reductions")
                : (false, problems.joined(separator: "; "))
        }
        guard let (values, described) = acceptedHyperparameters(of: rule) else {
            record(.hyperparameters) { (false, "the rule's check refused every combination tried") }
            return results
        }
        record(.hyperparameters) { (true, described) }
        let dtype = rule.dtypes.contains(.float32) ? DType.float32 : rule.dtypes[0]
        let host = hostBlocks(count, dtype)

        record(.emptyBlock) {
            let workspace = RuleWorkspace(rule: rule, dtype: dtype, count: 0, edge: .end, values: values)
            let failure = workspace.step(hyperparameters: values, blockLengths: [0])
            return failure.map { (false, $0) } ?? (true, "returned success")
        }
        record(.blockSplit) {
            let reference = trajectory(rule, dtype, values, split: host)
            for split in [[count], splitAt([1, 7, 1000, 2048], count), Array(repeating: 1, count: count)] {
                let other = trajectory(rule, dtype, values, split: split)
                if let difference = compareBits(reference, other) {
                    return (false, "blocks of \(describe(split)) elements differ from the host's blocks: \(difference)")
                }
            }
            return (true, "the host's blocks, one block, 1/7/1000/2048/…, and 1 element agree")
        }
        record(.threads) {
            let split = Array(repeating: 64, count: count / 64) + [count % 64]
            let one = trajectory(rule, dtype, values, split: split, threads: 1)
            for threads in [2, 4] {
                if let difference = compareBits(one, trajectory(rule, dtype, values, split: split, threads: threads)) {
                    return (false, "\(threads) threads differ from 1: \(difference)")
                }
            }
            return (true, "1, 2 and 4 threads agree")
        }
        record(.deterministic) {
            let difference = compareBits(trajectory(rule, dtype, values, split: host), trajectory(rule, dtype, values, split: host))
            return difference.map { (false, "two identical runs differ: \($0)") } ?? (true, "two runs agree")
        }
        record(.writesInsideBlock) { writesInsideBlock(rule, dtype, values) }
        record(.guardAfter) { guarded(rule, dtype, values, edge: .end) }
        record(.guardBefore) { guarded(rule, dtype, values, edge: .start) }
        record(.finite) {
            // At the defaults (when the rule's check accepts them) and at the values used above.
            let defaults = defaultValues(of: rule)
            for tried in (rule.kernel.refusal(of: defaults) == nil ? [defaults] : []) + [values] {
                let outcome = trajectory(rule, dtype, tried, split: host)
                if let failure = outcome.failure { return (false, "at \(describe(tried, of: rule)): \(failure)") }
                let bad = outcome.workspace.numbers.filter { !$0.isFinite }.count
                if bad > 0 { return (false, "at \(describe(tried, of: rule)): \(bad) outputs are NaN or infinite") }
                if let (slot, value) = outcome.workspace.negativeSlot {
                    return (false, "at \(describe(tried, of: rule)): slot \(quoted(slot.name)) is declared non-negative but holds \(value)")
                }
            }
            return (true, rule.stateSlots.contains(where: \.isNonNegative)
                ? "all outputs finite, slots declared non-negative stay so" : "all outputs finite")
        }
        record(.stateRoundTrip) { stateRoundTrip(rule, dtype, values) }
        record(.noHiddenState) { noHiddenState(rule, dtype, values) }
        record(.precision) { precision(rule, values) }
        return results
    }

    // MARK: - Trajectories

    /// A workspace after ``steps`` steps from fixed inputs, and the first failure if any.
    struct Outcome {
        let workspace: RuleWorkspace
        let failure: String?
    }

    static func trajectory(_ rule: Rule, _ dtype: DType, _ values: [Double], split: [Int], threads: Int = 1,
                           edge: GuardedMemory.Edge? = nil, count: Int = Conformance.count, seed: UInt64 = 1) -> Outcome {
        let workspace = RuleWorkspace(rule: rule, dtype: dtype, count: count, edge: edge, values: values)
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

    static func writesInsideBlock(_ rule: Rule, _ dtype: DType, _ values: [Double]) -> (Bool, String) {
        // Step only the middle of three blocks (whole-parameter reductions still see everything); every
        // element outside it must keep its bits.
        let workspace = RuleWorkspace(rule: rule, dtype: dtype, count: 3 * 512, values: values)
        var random = SplitMix(seed: 7)
        workspace.fill(workspace.param, with: (0..<workspace.count).map { _ in random.value(in: 2) })
        workspace.fill(workspace.gradient, with: (0..<workspace.count).map { _ in random.value(in: 1) })
        for slot in workspace.slots { workspace.fill(slot, with: (0..<workspace.count).map { _ in random.value(in: 1) }) }
        workspace.update.copyMemory(from: workspace.gradient, byteCount: workspace.count * dtype.size)
        let before = ([workspace.param, workspace.update] + workspace.slots).map(workspace.read)
        if let failure = workspace.step(hyperparameters: values, blockLengths: [512, 512, 512], only: 1) {
            return (false, failure)
        }
        let after = ([workspace.param, workspace.update] + workspace.slots).map(workspace.read)
        let names = ["param", "update"] + rule.stateSlots.filter { $0.shape == .elementwise }.map(\.name)
        for (name, (old, new)) in zip(names, zip(before, after)) {
            for index in Array(0..<512) + Array(1024..<1536) where old[index].bitPattern != new[index].bitPattern {
                return (false, "\(name)[\(index)] changed, outside the block 512..<1024 that was handed over")
            }
        }
        return (true, "the elements around the block kept their bits")
    }

    static func guarded(_ rule: Rule, _ dtype: DType, _ values: [Double], edge: GuardedMemory.Edge) -> (Bool, String) {
        // One block the size of the buffers, so the block's edge is the guard page: a stray access faults.
        let outcome = trajectory(rule, dtype, values, split: [Self.count], edge: edge)
        if let failure = outcome.failure { return (false, failure) }
        return (true, "no fault with the guard page right \(edge == .end ? "after" : "before") every buffer")
    }

    static func stateRoundTrip(_ rule: Rule, _ dtype: DType, _ values: [Double]) -> (Bool, String) {
        let host = hostBlocks(count, dtype)
        let straight = trajectory(rule, dtype, values, split: host)
        // Same inputs, but the state is saved after the second step, scrambled, and restored.
        let workspace = RuleWorkspace(rule: rule, dtype: dtype, count: count, values: values)
        var random = SplitMix(seed: 1)
        workspace.fill(workspace.param, with: (0..<count).map { _ in random.value(in: 2) })
        for step in 0..<steps {
            workspace.fill(workspace.gradient, with: (0..<count).map { _ in random.value(in: 1) })
            if step == steps - 1 {
                let saved = workspace.saveState()
                workspace.resetState()
                for slot in workspace.slots { workspace.fill(slot, with: Array(repeating: 123, count: count)) }
                workspace.restoreState(saved)
            }
            if let failure = workspace.step(hyperparameters: values, blockLengths: host) { return (false, failure) }
        }
        let difference = compareBits(straight, Outcome(workspace: workspace, failure: nil))
        return difference.map { (false, "restored run differs: \($0)") } ?? (true, "restored run continues bit for bit")
    }

    static func noHiddenState(_ rule: Rule, _ dtype: DType, _ values: [Double]) -> (Bool, String) {
        let host = hostBlocks(count, dtype)
        let alone = trajectory(rule, dtype, values, split: host)
        // Step a second, different parameter between each step of the first.
        let first = RuleWorkspace(rule: rule, dtype: dtype, count: count, values: values)
        let other = RuleWorkspace(rule: rule, dtype: dtype, count: 777, values: values)
        var random = SplitMix(seed: 1), noise = SplitMix(seed: 99)
        first.fill(first.param, with: (0..<count).map { _ in random.value(in: 2) })
        other.fill(other.param, with: (0..<777).map { _ in noise.value(in: 5) })
        for _ in 0..<steps {
            first.fill(first.gradient, with: (0..<count).map { _ in random.value(in: 1) })
            other.fill(other.gradient, with: (0..<777).map { _ in noise.value(in: 3) })
            if let failure = first.step(hyperparameters: values, blockLengths: host) { return (false, failure) }
            if let failure = other.step(hyperparameters: values, blockLengths: [777]) { return (false, failure) }
        }
        let difference = compareBits(alone, Outcome(workspace: first, failure: nil))
        return difference.map { (false, "stepping another parameter in between changed the result: \($0)") }
            ?? (true, "another parameter stepped in between changed nothing")
    }

    static func precision(_ rule: Rule, _ values: [Double]) -> (Bool, String) {
        guard rule.dtypes.contains(.float32), rule.dtypes.contains(.float64) else {
            return (true, "only \(rule.dtypes.map(\.rawValue).joined()) supported; nothing to compare")
        }
        let single = trajectory(rule, .float32, values, split: hostBlocks(count, .float32))
        let double = trajectory(rule, .float64, values, split: hostBlocks(count, .float64))
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

    /// Blocks of the given lengths, then the rest.
    static func splitAt(_ lengths: [Int], _ count: Int) -> [Int] { lengths + [count - lengths.reduce(0, +)] }

    static func describe(_ split: [Int]) -> String {
        split.count > 6 ? split.prefix(4).map(String.init).joined(separator: "/") + "/…" : split.map(String.init).joined(separator: "/")
    }

    /// Hyperparameter values the rule accepts that exercise it, and how they read: every zero default raised
    /// to a typical non-zero value, else one zero raised at a time, else the defaults (required ones at a
    /// typical value), else all typical values.
    static func acceptedHyperparameters(of rule: Rule) -> ([Double], String)? {
        let declared = rule.hyperparameters
        let base = defaultValues(of: rule)
        var candidates = [zip(declared, base).map { $1 == 0 ? typical($0) : $1 }]
        for (index, hyperparameter) in declared.enumerated() where base[index] == 0 {
            var raised = base
            raised[index] = typical(hyperparameter)
            candidates.append(raised)
        }
        candidates += [base, declared.map(typical)]
        guard let values = candidates.first(where: { rule.kernel.refusal(of: $0) == nil }) else { return nil }
        return (values, describe(values, of: rule))
    }

    /// The defaults, with a typical value for each required hyperparameter.
    static func defaultValues(of rule: Rule) -> [Double] {
        rule.hyperparameters.map { $0.defaultValue ?? typical($0) }
    }

    /// `name=value, …`.
    static func describe(_ values: [Double], of rule: Rule) -> String {
        let text = zip(rule.hyperparameters, values).map { "\($0.name)=\(format($1))" }.joined(separator: ", ")
        return text.isEmpty ? "no hyperparameters" : text
    }

    /// A non-zero value inside the range: 0.1 or 0.9 where allowed, else a bound.
    static func typical(_ hyperparameter: Hyperparameter) -> Double {
        let range = hyperparameter.range
        switch hyperparameter.kind {
        case .boolean, .choice: return 1
        case .integer:
            return [1, 2, range.lowerBound, range.upperBound].first { range.contains($0) && $0.isFinite && $0 != 0 } ?? 0
        case .real:
            return [0.1, 0.9, 0.5, 1, range.lowerBound, range.upperBound].first { range.contains($0) && $0.isFinite && $0 != 0 }
                ?? range.lowerBound
        }
    }
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
