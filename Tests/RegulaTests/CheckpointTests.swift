import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Checkpoints: bit-exact round trips and resumes, refusals that change nothing, atomic writes, and files
/// Python's safetensors can read.
@Suite struct CheckpointTests {
    let registry = try! RuleRegistry.standard(environment: [:])
    static let rules = ["l1", "l2", "momentum", "sgd"]

    /// A model of a float32 and a float64 parameter in two groups, its optimizer and a scheduler.
    func model(seed: Int = 0) throws -> (parameters: [Parameter], optimizer: Optimizer, scheduler: LearningRateScheduler) {
        let w = Parameter("w", values: (0..<5000).map { Float(($0 * 7 + seed) % 19) / 9 - 1 })
        let b = Parameter("b", values: (0..<10).map { Double(($0 + seed) % 3) - 1 })
        let optimizer = try Optimizer([ParamGroup([w], options: ["lr": 0.05]), ParamGroup([b])], rules: Self.rules,
                                      defaults: ["lr": 0.1, "momentum": 0.9, "weight_decay1": 1e-3], registry: registry)
        let scheduler = try LearningRateScheduler(optimizer, schedule: .cosine(period: 5, minimum: 0.001))
        return ([w, b], optimizer, scheduler)
    }

    func train(_ model: (parameters: [Parameter], optimizer: Optimizer, scheduler: LearningRateScheduler), steps: Range<Int>) throws {
        for step in steps {
            try model.parameters[0].setGradient((0..<5000).map { Float(($0 + step * 3) % 11) / 5 - 1 })
            try model.parameters[1].setGradient((0..<10).map { Double(($0 * step) % 7) / 3 - 1 })
            try model.optimizer.step()
            try model.scheduler.step()
        }
    }

    /// Every bit that a checkpoint must carry.
    func bits(_ model: (parameters: [Parameter], optimizer: Optimizer, scheduler: LearningRateScheduler)) throws -> [UInt64] {
        let values = try model.parameters[0].values(as: Float.self).map { UInt64($0.bitPattern) }
            + model.parameters[1].values(as: Double.self).map(\.bitPattern)
        let state = model.parameters.flatMap { parameter -> [UInt64] in
            guard let state = model.optimizer.state(of: parameter) else { return [UInt64.max] }
            return [UInt64(state.step)] + state.slots.keys.sorted().flatMap { state.slots[$0]!.map(\.bitPattern) }
        }
        let options = model.optimizer.groups.flatMap { group in group.options.keys.sorted().map { group.options[$0]!.bitPattern } }
        return values + state + options + [UInt64(model.scheduler.state.steps)]
    }

    @Test func roundTripIsBitExact() throws {
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("optimizer.safetensors")
        let original = try model()
        try train(original, steps: 0..<7)
        try original.optimizer.saveCheckpoint(to: file, schedulers: [original.scheduler])
        let restored = try model(seed: 5)
        #expect(try bits(restored) != bits(original))
        try restored.optimizer.loadCheckpoint(from: file, schedulers: [restored.scheduler])
        #expect(try bits(restored) == bits(original))
        #expect(restored.scheduler.state == original.scheduler.state)
    }

    @Test func resumedRunContinuesBitIdentically() throws {
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("resume.safetensors")
        let straight = try model()
        try train(straight, steps: 0..<12)
        let first = try model()
        try train(first, steps: 0..<5)
        try first.optimizer.saveCheckpoint(to: file, schedulers: [first.scheduler])
        let resumed = try model(seed: 3)
        try resumed.optimizer.loadCheckpoint(from: file, schedulers: [resumed.scheduler])
        try train(resumed, steps: 5..<12)
        #expect(try bits(resumed) == bits(straight))
    }

    /// Loads `file` into a freshly trained model and expects a refusal containing `words` that changes nothing.
    func expectRefusal(of file: URL, says words: String, rules: [String] = rules, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let target = try model(seed: 2)
        try train(target, steps: 0..<2)
        let before = try bits(target)
        do {
            try target.optimizer.loadCheckpoint(from: file, schedulers: [target.scheduler])
            Issue.record("the checkpoint was accepted", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(words), "\(error)", sourceLocation: sourceLocation)
        }
        #expect(try bits(target) == before, "a refused load changed something", sourceLocation: sourceLocation)
    }

    @Test func checkpointsThatDoNotFitAreRefusedAndChangeNothing() throws {
        let folder = try TemporaryDirectory()
        // Other rules.
        let otherRules = folder.url.appendingPathComponent("rules.safetensors")
        let w = Parameter("w", values: [Float](repeating: 1, count: 5000)), b = Parameter("b", values: [Double](repeating: 1, count: 10))
        try Optimizer([ParamGroup([w]), ParamGroup([b])], rules: ["sgd"], defaults: ["lr": 0.1], registry: registry)
            .saveCheckpoint(to: otherRules)
        try expectRefusal(of: otherRules, says: "the checkpoint was made with rules sgd; this optimizer runs l1 > l2 > momentum > sgd")
        // Other parameter names.
        let otherNames = folder.url.appendingPathComponent("names.safetensors")
        try Optimizer([ParamGroup([Parameter("weights", values: [Float](repeating: 1, count: 5000))]), ParamGroup([b])],
                      rules: Self.rules, defaults: ["lr": 0.1], registry: registry).saveCheckpoint(to: otherNames)
        try expectRefusal(of: otherNames, says: "group 0 holds parameters [\"weights\"] in the checkpoint but [\"w\"] here")
        // Other sizes.
        let otherSizes = folder.url.appendingPathComponent("sizes.safetensors")
        try Optimizer([ParamGroup([Parameter("w", values: [Float](repeating: 1, count: 50))]), ParamGroup([b])],
                      rules: Self.rules, defaults: ["lr": 0.1], registry: registry).saveCheckpoint(to: otherSizes)
        try expectRefusal(of: otherSizes, says: "parameter \"w\" is 50 float32 values in the checkpoint but 5000 float32 here")
        // Another schedule.
        let good = try model()
        try train(good, steps: 0..<3)
        let file = folder.url.appendingPathComponent("good.safetensors")
        try good.optimizer.saveCheckpoint(to: file, schedulers: [good.scheduler])
        let target = try model()
        let exponential = try LearningRateScheduler(target.optimizer, schedule: .exponential(gamma: 0.9))
        for (schedulers, words) in [([exponential], "a saved cosine schedule over 2 groups cannot restore a exponential schedule over 2"),
                                    ([], "the checkpoint holds 1 schedulers; 0 were given")] {
            #expect(throws: CheckpointError.self) { try target.optimizer.loadCheckpoint(from: file, schedulers: schedulers) }
            do { try target.optimizer.loadCheckpoint(from: file, schedulers: schedulers) } catch {
                #expect("\(error)".contains(words), "\(error)")
            }
        }
        // Truncated, corrupt, and not a checkpoint at all.
        let bytes = try Data(contentsOf: file)
        let truncated = folder.url.appendingPathComponent("truncated.safetensors")
        try bytes.prefix(bytes.count - 100).write(to: truncated)
        try expectRefusal(of: truncated, says: "truncated or corrupt")
        let corrupt = folder.url.appendingPathComponent("corrupt.safetensors")
        var damaged = bytes
        damaged[20] = 0x7B
        damaged[21] = 0x7B
        try damaged.write(to: corrupt)
        try expectRefusal(of: corrupt, says: "corrupt")
        let text = try folder.write("hello", to: "text.safetensors")
        try expectRefusal(of: text, says: "too short")
        try expectRefusal(of: folder.url.appendingPathComponent("missing.safetensors"), says: "cannot read")
    }

    @Test func duplicateParameterNamesAreRefusedBeforeAnyCheckpoint() throws {
        #expect(throws: OptimizerError.duplicateParameterName("w")) {
            try Optimizer([Parameter("w", values: [1.0]), Parameter("w", values: [2.0])], rules: ["sgd"],
                          defaults: ["lr": 0.1], registry: registry)
        }
        let optimizer = try Optimizer([Parameter("w", values: [1.0])], rules: ["sgd"], defaults: ["lr": 0.1], registry: registry)
        #expect(throws: OptimizerError.duplicateParameterName("w")) {
            try optimizer.addGroup(ParamGroup([Parameter("w", values: [2.0])]))
        }
        #expect(optimizer.groups.count == 1)
    }

    @Test func killedSaveLeavesTheOldFile() async throws {
        // A folder of this run's own: another clone's tests may run this test at the same time.
        let directory = try TemporaryDirectory(), folder = directory.url
        let file = folder.appendingPathComponent("model.safetensors")
        let old = try model()
        try old.optimizer.saveCheckpoint(to: file, schedulers: [old.scheduler])
        let oldBytes = try Data(contentsOf: file)
        await #expect(processExitsWith: .signal(SIGXFSZ)) { [path = file.path as String] in
            // A model big enough that the save spans several chunks; the kernel kills the process (SIGXFSZ)
            // at the write that passes 1 MiB, without a core file, so no hook in the library is needed.
            let registry = try RuleRegistry.standard(environment: [:])
            let big = Parameter("w", values: [Float](repeating: 0.5, count: 3_000_000))
            let optimizer = try Optimizer([big], rules: ["momentum", "sgd"], defaults: ["lr": 0.1, "momentum": 0.9], registry: registry)
            try big.setGradient([Float](repeating: 1, count: 3_000_000))
            try optimizer.step()
            var core = rlimit(rlim_cur: 0, rlim_max: 0), size = rlimit(rlim_cur: 1 << 20, rlim_max: 1 << 20)
            guard setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &core) == 0,
                  setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &size) == 0 else { exit(3) }
            // The default action ends the process; the test runner may ignore or block the signal.
            signal(SIGXFSZ, SIG_DFL)
            var unblocked = sigset_t()
            sigemptyset(&unblocked)
            sigaddset(&unblocked, SIGXFSZ)
            sigprocmask(SIG_UNBLOCK, &unblocked, nil)
            try optimizer.saveCheckpoint(to: URL(fileURLWithPath: path))
        }
        #expect(try Data(contentsOf: file) == oldBytes)
        let partials = { try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".partial") } }
        #expect(try partials().count == 1, "the killed save leaves its partial file")
        let restored = try model(seed: 4)
        try restored.optimizer.loadCheckpoint(from: file, schedulers: [restored.scheduler])
        #expect(try bits(restored) == bits(old))
        // The next save clears what the killed one abandoned.
        try restored.optimizer.saveCheckpoint(to: file, schedulers: [restored.scheduler])
        #expect(try partials().isEmpty)
    }
}
