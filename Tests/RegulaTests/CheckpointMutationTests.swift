import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Damaged checkpoints, made from a seeded generator (``CheckpointMutation``): every one must be refused with
/// words and leave the optimizer exactly as it was, or, when the damage provably changed nothing meaningful,
/// load to exactly the state that was saved.
@Suite struct CheckpointMutationTests {
    let registry = try! RuleRegistry.standard(environment: [:])

    /// The model of Tests/Fixtures/checkpoints/format1.safetensors: three parameters in two groups (`u` never
    /// gets a gradient, so it has no state), four rules and a cosine schedule.
    struct Model {
        let parameters: [Parameter]
        let optimizer: Optimizer
        let scheduler: LearningRateScheduler
    }

    func model() throws -> Model {
        let w = Parameter("w", values: (0..<24).map { Float($0 % 7) / 4 - 0.75 })
        let u = Parameter("u", values: [Float](repeating: 2, count: 4))
        let b = Parameter("b", values: [0.5, -0.25, 1.0])
        let optimizer = try Optimizer([ParamGroup([w, u], options: ["lr": 0.05]), ParamGroup([b])],
                                      rules: ["l1", "l2", "momentum", "sgd"],
                                      defaults: ["lr": 0.1, "momentum": 0.9, "weight_decay1": 1e-3, "weight_decay2": 1e-2],
                                      registry: registry)
        let scheduler = try LearningRateScheduler(optimizer, schedule: .cosine(period: 5, minimum: 0.001))
        return Model(parameters: [w, u, b], optimizer: optimizer, scheduler: scheduler)
    }

    /// Trains as the fixture's program did (`shift` 0), or along another path.
    func train(_ model: Model, steps: Range<Int>, shift: Int = 0) throws {
        for step in steps {
            try model.parameters[0].setGradient((0..<24).map { Float(($0 * 3 + step + shift) % 5) / 2 - 1 })
            try model.parameters[2].setGradient((0..<3).map { Double(($0 + step + shift) % 4) / 3 - 0.5 })
            try model.optimizer.step()
            try model.scheduler.step()
        }
    }

    /// Everything a load may change, bit for bit.
    struct Snapshot: Equatable {
        var values: [[UInt64]]
        var states: [[String: [UInt64]]?]
        var steps: [Int?]
        var options: [[String: UInt64]]
        var skippedSteps: Int
        var scheduler: LearningRateScheduler.State
    }

    /// A parameter's values as bit patterns. (`try`: reading values as the wrong type throws on main.)
    func bits(of parameter: Parameter) throws -> [UInt64] {
        switch parameter.dtype {
        case .float32: try parameter.values(as: Float.self).map { UInt64($0.bitPattern) }
        case .float64: try parameter.values(as: Double.self).map(\.bitPattern)
        }
    }

    func snapshot(_ model: Model) throws -> Snapshot {
        Snapshot(
            values: try model.parameters.map(bits),
            states: model.parameters.map { model.optimizer.state(of: $0)?.slots.mapValues { $0.map(\.bitPattern) } },
            steps: model.parameters.map { model.optimizer.state(of: $0)?.step },
            options: model.optimizer.groups.map { $0.options.mapValues(\.bitPattern) },
            skippedSteps: model.optimizer.skippedSteps,
            scheduler: model.scheduler.state)
    }

    /// The model after the fixture's three steps, and its snapshot.
    func saved() throws -> (Model, Snapshot) {
        let model = try model()
        try train(model, steps: 0..<3)
        return (model, try snapshot(model))
    }

    /// A model in another state, to load into.
    func target() throws -> Model {
        let target = try model()
        try train(target, steps: 0..<2, shift: 1)
        return target
    }

    static let format1 = TestPaths.fixtures("checkpoints/format1.safetensors")

    /// Loads each mutant into a model and applies the oracle; returns how many were refused.
    @discardableResult
    func expectRefusedOrExact(_ mutants: [Mutant], saved: Snapshot, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("mutant.safetensors")
        var target = try target()
        var refused = 0
        for mutant in mutants {
            try mutant.bytes.write(to: file)
            let before = try snapshot(target)
            do {
                try target.optimizer.loadCheckpoint(from: file, schedulers: [target.scheduler])
                #expect(try snapshot(target) == saved, "\(mutant): loaded, but not what was saved", sourceLocation: sourceLocation)
                target = try self.target()
            } catch {
                refused += 1
                let message = "\(error)"
                #expect(message.hasPrefix("cannot load \(file.path): ") && message.hasSuffix("; nothing was changed")
                        && message.count > "cannot load \(file.path): ; nothing was changed".count + 10,
                        "\(mutant): \(message)", sourceLocation: sourceLocation)
                #expect(!message.contains("NSCocoaErrorDomain") && !message.contains("could not be completed"),
                        "\(mutant): \(message)", sourceLocation: sourceLocation)
                #expect(try snapshot(target) == before, "\(mutant): refused, but the optimizer changed", sourceLocation: sourceLocation)
            }
        }
        return refused
    }

    /// A checkpoint with checksums, damaged every way: all refused, except a few header bit flips that turn
    /// padding spaces into other whitespace (which must then load exactly).
    @Test(arguments: CheckpointMutation.allCases)
    func damagedCheckpointIsRefusedAndChangesNothing(_ mutation: CheckpointMutation) throws {
        let (model, saved) = try saved()
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("saved.safetensors")
        try model.optimizer.saveCheckpoint(to: file, schedulers: [model.scheduler])
        let mutants = mutation.mutants(of: try Data(contentsOf: file), seed: 10 + UInt64(CheckpointMutation.allCases.firstIndex(of: mutation)!))
        #expect(mutants.count >= 10, "the generator made only \(mutants.count) files")
        let refused = try expectRefusedOrExact(mutants, saved: saved)
        if mutation != .headerBits { #expect(refused == mutants.count) }
    }

    /// A checkpoint written before checksums (format 1), damaged in every way its structure can show: a
    /// flipped bit in its numbers or a changed option value cannot be noticed in such a file, so those
    /// mutations are left out here.
    @Test(arguments: CheckpointMutation.allCases.filter { ![.headerNumbers, .headerBits, .dataBits].contains($0) })
    func damagedChecksumlessCheckpointIsRefusedAndChangesNothing(_ mutation: CheckpointMutation) throws {
        let (_, saved) = try saved()
        let mutants = mutation.mutants(of: try Data(contentsOf: Self.format1), seed: 20 + UInt64(CheckpointMutation.allCases.firstIndex(of: mutation)!))
        #expect(mutants.count >= 10, "the generator made only \(mutants.count) files")
        #expect(try expectRefusedOrExact(mutants, saved: saved) == mutants.count)
    }

    @Test func checksumlessCheckpointLoadsExactlyAndSaysSo() throws {
        let (_, saved) = try saved()
        let target = try target()
        #expect(try target.optimizer.loadCheckpoint(from: Self.format1, schedulers: [target.scheduler]) == .unchecked)
        #expect(try snapshot(target) == saved)

        let strict = try self.target(), before = try snapshot(strict)
        #expect(throws: CheckpointError.self) {
            try strict.optimizer.loadCheckpoint(from: Self.format1, schedulers: [strict.scheduler], requireChecksums: true)
        }
        #expect(try snapshot(strict) == before)

        // Saved again, it has checksums.
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("again.safetensors")
        try target.optimizer.saveCheckpoint(to: file, schedulers: [target.scheduler])
        let again = try self.target()
        #expect(try again.optimizer.loadCheckpoint(from: file, schedulers: [again.scheduler], requireChecksums: true) == .verified)
        #expect(try snapshot(again) == saved)
    }

    @Test func unreadableFileIsRefusedSayingWhy() throws {
        let folder = try TemporaryDirectory()
        let target = try target(), before = try snapshot(target)
        let missing = folder.url.appendingPathComponent("missing.safetensors")
        #expect(throws: CheckpointError("cannot read \(missing.path): no such file; nothing was changed")) {
            try target.optimizer.loadCheckpoint(from: missing)
        }
        #expect(throws: CheckpointError("cannot read \(folder.path): it is a folder, not a file; nothing was changed")) {
            try target.optimizer.loadCheckpoint(from: folder.url)
        }
        let empty = try folder.write("", to: "empty.safetensors")
        #expect(throws: CheckpointError("cannot load \(empty.path): the file is 0 bytes long, too short for a safetensors header; nothing was changed")) {
            try target.optimizer.loadCheckpoint(from: empty)
        }
        #expect(try snapshot(target) == before)
    }

    /// The three crashes the fuzzing run found, now refusals that say what is wrong.
    @Test func formerCrashesAreRefusals() throws {
        let parts = SafeTensorsParts(try Data(contentsOf: Self.format1))
        let folder = try TemporaryDirectory()
        let cases = [
            (#""shape":\[24\]"#, #""shape":[4294967296,4294967296]"#, #"tensor "param/w" has shape [4294967296,4294967296], more elements than a file can hold: corrupt file"#),
            (#""shape":\[24\]"#, #""shape":[4611686018427387904]"#, #"tensor "param/w" has shape [4611686018427387904], more bytes than a file can hold: corrupt file"#),
            (#"\\"step\\":3"#, #"\\"step\\":-1"#, "parameters[0].step is -1; allowed: a whole number from 0 to 9007199254740992"),
            (#"\\"step\\":3"#, #"\\"step\\":4611686018427387904"#, "parameters[0].step is 4611686018427387904; allowed: a whole number from 0 to 9007199254740992"),
        ]
        for (pattern, replacement, words) in cases {
            let file = folder.url.appendingPathComponent("crash.safetensors")
            try parts.replacing(pattern, with: replacement)!.assembled().write(to: file)
            let target = try target(), before = try snapshot(target)
            #expect(throws: CheckpointError("cannot load \(file.path): \(words); nothing was changed")) {
                try target.optimizer.loadCheckpoint(from: file, schedulers: [target.scheduler])
            }
            #expect(try snapshot(target) == before)
        }
    }

    /// A file with several defects gives the same refusal in every process (reading the header through a
    /// dictionary made the first defect met, and so the outcome, depend on the process's hash seed).
    @Test func severalDefectsGiveTheSameRefusalInEveryProcess() async throws {
        var parts = SafeTensorsParts(try Data(contentsOf: Self.format1))
        parts = parts.replacing(#""dtype":"F64""#, with: #""dtype":"F16""#)!                         // param/b, first
            .replacing(#"("state\\/w\\/momentum_buffer":\{[^}]*"shape":)\[24\]"#, with: "$1[-24]")!
            .replacing(#""data_offsets":\[24,40\]"#, with: #""data_offsets":[24.5,40]"#)!
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("defects.safetensors")
        try (parts.assembled() + Data(repeating: 7, count: 5)).write(to: file)
        let expected = "cannot load \(file.path): tensor \"param/b\" has dtype \"F16\"; allowed: F32, F64; nothing was changed"
        let target = try target()
        #expect(throws: CheckpointError(expected)) { try target.optimizer.loadCheckpoint(from: file) }
        for _ in 0..<3 {
            let result = await #expect(processExitsWith: .success, observing: [\.standardOutputContent]) { [path = file.path as String] in
                let registry = try RuleRegistry.standard(environment: [:])
                let optimizer = try Optimizer([ParamGroup([Parameter("w", values: [Float](repeating: 0, count: 24)),
                                                           Parameter("u", values: [Float](repeating: 0, count: 4))]),
                                               ParamGroup([Parameter("b", values: [0.0, 0, 0])])],
                                              rules: ["l1", "l2", "momentum", "sgd"], defaults: ["lr": 0.1], registry: registry)
                do { try optimizer.loadCheckpoint(from: URL(fileURLWithPath: path)) } catch { print(error, terminator: "") }
            }
            #expect(result.map { String(decoding: $0.standardOutputContent, as: UTF8.self) } == expected)
        }
    }
}
