import Foundation
import Synchronization
@testable import Regula
import RegulaTestSupport
import Testing

/// Parameters with shapes (ABI 1.3): the shape a user gives is checked against the values, reaches every
/// kernel in `regula_block.shape`, is recorded by checkpoints and replay specs, and a resume into another
/// shape is refused.
@Suite struct ParameterShapeTests {
    /// A rule that writes into every element `rank * 100 + last size + first size / 1000`, as the block
    /// told it: what the kernel saw, readable from the parameter afterwards.
    static let shapeProbe = PluginSource.plugin(rules: [#"{ RULE("shape_probe"), .kernel = probe }"#], declarations: """
        REGULA_KERNEL(probe, {
            T *p = (T *)block->param;
            T seen = (T)(block->rank * 100 + block->shape[block->rank - 1]) + (T)block->shape[0] / (T)1000;
            for (size_t i = 0; i < block->length; i++) p[i] = seen;
        })
        """)

    @Test func aShapeMustFitTheValuesAndIsRefusedInWordsOtherwise() throws {
        let matrix = try Parameter("W", values: [Float](repeating: 1, count: 6), shape: [2, 3])
        #expect(matrix.shape == [2, 3])
        #expect(Parameter("b", values: [0.0, 1.0]).shape == [2])
        let refusals: [([Int], String)] = [
            ([4, 2], "shape [4, 2] refused for parameter \"W\": its sizes multiply to 8, but the parameter has 6 values"),
            ([], "a shape needs at least one dimension"),
            ([-2, -3], "a size cannot be negative (-2)"),
            (Array(repeating: 1, count: 9) + [6], "at most 8 dimensions are allowed"),
            ([Int.max, 3], "the sizes multiply past"),
        ]
        for (shape, words) in refusals {
            #expect {
                _ = try Parameter("W", values: [Float](repeating: 1, count: 6), shape: shape)
            } throws: { error in
                guard case .shapeRefused(let parameter, let refused, 6, _)? = error as? OptimizerError else { return false }
                return parameter == "W" && refused == shape && "\(error)".contains(words)
            }
        }
        var memory = [Double](repeating: 0, count: 12)
        try memory.withUnsafeMutableBufferPointer { (buffer) throws in
            #expect(try Parameter("T", wrapping: buffer, shape: [2, 3, 2]).shape == [2, 3, 2])
            #expect(throws: OptimizerError.self) { try Parameter("T", wrapping: buffer, shape: [5, 2]) }
        }
    }

    @Test func everyKernelSeesTheShapeOfTheParameterItSteps() throws {
        let folder = try TemporaryDirectory()
        let registry = RuleRegistry()
        try registry.loadPlugin(at: PluginCompiler.compile(Self.shapeProbe, named: "shape_probe", in: folder).path)
        // Long enough for several blocks and both threads: every block must see the whole parameter's shape.
        let matrix = try Parameter("W", values: [Float](repeating: 0, count: 300 * 70), shape: [300, 70])
        let cube = try Parameter("C", values: [Double](repeating: 0, count: 24), shape: [2, 3, 4])
        let flat = Parameter("b", values: [Double](repeating: 0, count: 5))
        for parameter in [matrix, cube, flat] {
            let optimizer = try Optimizer([parameter], rules: ["shape_probe"], registry: registry)
            optimizer.threads = 2
            if parameter.dtype == .float32 {
                try parameter.setGradient([Float](repeating: 1, count: parameter.count))
            } else {
                try parameter.setGradient([Double](repeating: 1, count: parameter.count))
            }
            try optimizer.step()
        }
        #expect(Set(try matrix.values(as: Float.self)) == [Float(270.3)])
        #expect(Set(try cube.values(as: Double.self)) == [304.002])
        #expect(Set(try flat.values(as: Double.self)) == [105.005])
    }

    @Test func aSwiftRuleSeesTheShapeToo() throws {
        let seen = Mutex<[[Int]]>([])
        let rule = try Rule(name: "shape_seen", summary: "records the shape", kernel: { block in
            seen.withLock { $0.append(Array(block.shape)) }
            let d = block.update(as: Double.self)
            for i in d.indices { d[i] *= 2 }
        })
        let registry = RuleRegistry()
        try registry.register(rule)
        let cube = try Parameter("C", values: [Double](repeating: 0, count: 24), shape: [2, 3, 4])
        try cube.setGradient([Double](repeating: 1, count: 24))
        try Optimizer([cube], rules: ["shape_seen"], registry: registry).step()
        #expect(seen.withLock { $0 } == [[2, 3, 4]])
    }

    @Test func checkpointsRecordShapesAndRefuseAResumeIntoAnotherShape() throws {
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("run.safetensors")
        let weights = (0..<24).map { Double($0) / 10 }
        let saved = try Parameter("W", values: weights, shape: [4, 6])
        let optimizer = try Optimizer([saved], preset: .sgd(lr: 0.1, momentum: 0.9))
        try saved.setGradient([Double](repeating: 1, count: 24))
        try optimizer.step()
        try optimizer.saveCheckpoint(to: file)
        // The file says the shape, in the metadata and in the safetensors header of the values and the momentum.
        let contents = try SafeTensors(decoding: Data(contentsOf: file))
        #expect(contents.tensors["param/W"]?.shape == [4, 6])
        #expect(contents.tensors["state/W/momentum_buffer"]?.shape == [4, 6])

        let same = try Parameter("W", values: [Double](repeating: 0, count: 24), shape: [4, 6])
        try Optimizer([same], preset: .sgd(lr: 0.1, momentum: 0.9)).loadCheckpoint(from: file)
        #expect(try same.values(as: Double.self) == (try saved.values(as: Double.self)))

        for shape in [[6, 4], [24]] {
            let other = try Parameter("W", values: [Double](repeating: 0, count: 24), shape: shape)
            let resumed = try Optimizer([other], preset: .sgd(lr: 0.1, momentum: 0.9))
            #expect {
                try resumed.loadCheckpoint(from: file)
            } throws: { error in
                "\(error)".contains("parameter \"W\" has shape [4, 6] in the checkpoint but \(shape) here; nothing was changed")
            }
            #expect(try other.values(as: Double.self) == [Double](repeating: 0, count: 24), "a refused load changes nothing")
            #expect(resumed.state(of: other) == nil)
        }
    }

    @Test func aCheckpointWrittenBeforeShapesLoadsIntoAnyShapeOfItsSize() throws {
        // Tests/Fixtures/checkpoints/format1.safetensors: its model, every parameter flat, no shape recorded;
        // `w` (24 values) loads as a 4 × 6 matrix, as it was in the model it came from.
        let file = TestPaths.fixtures("checkpoints").appendingPathComponent("format1.safetensors")
        #expect(!String(decoding: try Data(contentsOf: file).prefix(4096), as: UTF8.self).contains(#"\"shape\":["#))
        let w = try Parameter("w", values: [Float](repeating: 0, count: 24), shape: [4, 6])
        let u = Parameter("u", values: [Float](repeating: 0, count: 4))
        let b = Parameter("b", values: [0.0, 0.0, 0.0])
        let optimizer = try Optimizer([ParamGroup([w, u], options: ["lr": 0.05]), ParamGroup([b])],
                                      rules: ["l1", "l2", "momentum", "sgd"],
                                      defaults: ["lr": 0.1, "momentum": 0.9, "weight_decay1": 1e-3, "weight_decay2": 1e-2])
        let scheduler = try LearningRateScheduler(optimizer, schedule: .cosine(period: 5, minimum: 0.001))
        try optimizer.loadCheckpoint(from: file, schedulers: [scheduler])
        #expect(try w.values(as: Float.self) != [Float](repeating: 0, count: 24))
        #expect(optimizer.state(of: w)?.step == 3)
    }

    @Test func replaySpecsCarryShapesAndRefuseOnesThatDoNotFit() throws {
        let spec = #"{"rules": ["sgd"], "defaults": {"lr": 0.5}, "groups": [{"params": ["W", "b"]}], "#
            + #""shapes": {"W": [2, 3]}, "params": {"W": [1, 2, 3, 4, 5, 6], "b": [1]}, "#
            + #""steps": [{"grads": {"W": [1, 1, 1, 1, 1, 1], "b": [2]}}]}"#
        let replay = try ReplaySpec(json: Data(spec.utf8))
        #expect(replay.shapes == ["W": [2, 3]])
        let result = try replay.run()
        #expect(result.parameters["W"] == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
        #expect(result.parameters["b"] == [0])

        let refusals = [
            (spec.replacingOccurrences(of: #""W": [2, 3]"#, with: #""W": [4, 3]"#),
             #"spec.shapes.W: shape [4, 3] refused for parameter "W": its sizes multiply to 12, but the parameter has 6 values"#),
            (spec.replacingOccurrences(of: #""W": [2, 3]"#, with: #""V": [2, 3]"#), #"spec.shapes.V names no parameter"#),
            (spec.replacingOccurrences(of: #""W": [2, 3]"#, with: #""W": [2, 1.5]"#), #"spec.shapes.W[1]"#),
        ]
        for (text, words) in refusals {
            #expect {
                _ = try ReplaySpec(json: Data(text.utf8))
            } throws: { error in
                "\(error)".contains(words)
            }
        }
        // The torch fixture's own bad spec: a shape whose product is not the parameter's length.
        let bad = try #require(TorchFixture.refusals([.matrix]).first { $0.file == "bad-shape-mismatch.json" })
        #expect {
            _ = try ReplaySpec(json: bad.spec)
        } throws: { error in
            bad.errorWords.allSatisfy { "\(error)".contains($0) }
        }
    }
}
