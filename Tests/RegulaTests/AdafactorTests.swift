import Foundation
import Regula
import RegulaTestSupport
import Testing

/// `adafactor` beyond the torch trajectories that TorchAgreementTests replays: what its options mean, which
/// state each rank keeps, matrices wider than the kernel's column tile (the fixtures' are 20 wide), a batch
/// of matrices factored one by one, and factored state through a checkpoint.
@Suite struct AdafactorTests {
    let registry = try! RuleRegistry.standard(environment: [:])

    /// Steps `parameter` once per gradient with `options` and returns its values and state.
    func run<T: ParameterElement>(_ parameter: Parameter, _ gradients: [[T]], options: [String: Double] = [:])
        throws -> (values: [T], state: ParameterState?) {
        let optimizer = try Optimizer([parameter], rules: ["adafactor"], defaults: options, registry: registry)
        for gradient in gradients {
            try parameter.setGradient(gradient)
            try optimizer.step()
        }
        return (try parameter.values(as: T.self), optimizer.state(of: parameter))
    }

    /// Values in [-1, 1) from a seed.
    static func values(_ count: Int, seed: UInt64) -> [Double] {
        var random = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Double.random(in: -1..<1, using: &random) }
    }

    /// eps1's default stands for torch's None, the machine epsilon of the parameter's own dtype. Gradients of
    /// ±1e-20 make every second moment smaller than eps1², so the step is g / eps1 and shows eps1 itself; the
    /// parameter starts at 0, where a step that small still changes the bits.
    @Test func eps1DefaultsToTheMachineEpsilonOfTheDtype() throws {
        func step<T: ParameterElement & BinaryFloatingPoint>(_: T.Type, eps1: Double?) throws -> [T] {
            let gradient = (0..<8).map { T($0 % 3 == 0 ? -1e-20 : 1e-20) }
            return try run(Parameter("v", values: [T](repeating: 0, count: 8)), [gradient],
                           options: eps1.map { ["eps1": $0] } ?? [:]).values
        }
        #expect(try step(Float.self, eps1: nil) == step(Float.self, eps1: Double(Float.ulpOfOne)))
        #expect(try step(Float.self, eps1: nil) != step(Float.self, eps1: 2 * Double(Float.ulpOfOne)))
        #expect(try step(Double.self, eps1: nil) == step(Double.self, eps1: Double.ulpOfOne))
        #expect(try step(Double.self, eps1: nil) != step(Double.self, eps1: Double(Float.ulpOfOne)))
        #expect(try step(Float.self, eps1: nil).allSatisfy { $0 != 0 })
    }

    @Test func aNegativeEps1OtherThanTheDefaultIsRefused() {
        #expect {
            try run(Parameter("v", values: [1.0, 2.0]), [[0.5, 0.5]], options: ["eps1": -0.5])
        } throws: { error in
            "\(error)".contains("eps1 must be at least 0, or -1 for the dtype's machine epsilon (got -0.5)")
        }
    }

    /// maximize steps up the gradient: the same bits as stepping down its negation.
    @Test(arguments: [[12, 20], [30]])
    func maximizeStepsAsTheNegatedGradientDoes(shape: [Int]) throws {
        let count = shape.reduce(1, *)
        let start = Self.values(count, seed: 3)
        let gradients = (0..<4).map { Self.values(count, seed: 10 + UInt64($0)) }
        let up = try run(Parameter("W", values: start, shape: shape), gradients, options: ["maximize": 1])
        let down = try run(Parameter("W", values: start, shape: shape), gradients.map { $0.map { -$0 } })
        #expect(up.values == down.values)
        #expect(up.state == down.state)
        #expect(up.values != start)
    }

    /// A vector keeps the full `variance`; a tensor of rank 2 or more keeps only its row and column factors,
    /// shaped as torch shapes them.
    @Test func eachRankKeepsItsOwnState() throws {
        let vector = try #require(try run(Parameter("v", values: Self.values(30, seed: 1)), [Self.values(30, seed: 2)]).state)
        #expect(vector.slots.mapValues(\.count) == ["variance": 30])
        #expect(vector.shapes == ["variance": [30]])
        let tensor = try #require(try run(Parameter("T", values: Self.values(90, seed: 1), shape: [3, 5, 6]),
                                          [Self.values(90, seed: 2)]).state)
        #expect(tensor.slots.mapValues(\.count) == ["row_var": 15, "col_var": 18])
        #expect(tensor.shapes == ["row_var": [3, 5, 1], "col_var": [3, 1, 6]])
    }

    /// A tensor with no elements steps as a no-op beside one that has some, instead of dividing by its zero size
    /// (torch's step raises ZeroDivisionError there): its factors keep their start, a (0, 4) tensor's `col_var`
    /// 4 zeros.
    @Test(arguments: [[0, 4], [3, 0], [0]])
    func anEmptyTensorStepsAsANoOp(shape: [Int]) throws {
        let empty = try Parameter("E", values: [Double](), shape: shape)
        let w = try Parameter("W", values: Self.values(12, seed: 8), shape: [3, 4])
        let optimizer = try Optimizer([empty, w], rules: ["adafactor"], registry: registry)
        try empty.setGradient([Double]())
        try w.setGradient(Self.values(12, seed: 9))
        try optimizer.step()
        #expect(try empty.values(as: Double.self).isEmpty)
        #expect(try w.values(as: Double.self) != Self.values(12, seed: 8))
        #expect(try #require(optimizer.state(of: empty)).slots.values.allSatisfy { $0.allSatisfy { $0 == 0 } })
    }

    /// Update clipping: once the update's RMS exceeds d it is scaled down to d. In step 1 of a vector the update
    /// is sign(g) (RMS 1); in step 2, after a gradient 1000 times smaller, it is about 1 / sqrt(2^-0.8) = 1.32.
    @Test func updateClippingScalesTheUpdateRMSDownToD() throws {
        func secondUpdateRMS(d: Double) throws -> Double {
            let start = Self.values(64, seed: 5)
            let small = Self.values(64, seed: 6).map { $0 * 1e-3 }, large = Self.values(64, seed: 7)
            let first = try run(Parameter("v", values: start), [small], options: ["d": d]).values
            let second = try run(Parameter("v", values: start), [small, large], options: ["d": d]).values
            // The relative step at t = 2 is alpha = max(eps2, RMS(p)) * min(lr, 1/sqrt(2)).
            let rms = { (x: [Double]) in (x.map { $0 * $0 }.reduce(0, +) / Double(x.count)).squareRoot() }
            let alpha = max(1e-3, rms(first)) * 1e-2
            return rms(zip(first, second).map { ($0 - $1) / alpha })
        }
        #expect(abs(try secondUpdateRMS(d: 1) - 1) < 1e-12)
        let unclipped = try secondUpdateRMS(d: 4)
        #expect(abs(unclipped - 1 / pow(2, -0.8).squareRoot()) < 1e-2)
    }

    /// Each matrix of a batch (shape (2, m, n)) has its own row and column factors: those of the matrices
    /// stepped as parameters of their own, side by side.
    @Test func aBatchOfMatricesIsFactoredMatrixByMatrix() throws {
        let (m, n) = (6, 9)
        let start = Self.values(2 * m * n, seed: 21)
        let gradients = (0..<3).map { Self.values(2 * m * n, seed: 30 + UInt64($0)) }
        let batch = try #require(try run(Parameter("T", values: start, shape: [2, m, n]), gradients).state).slots
        var rows: [Double] = [], columns: [Double] = []
        for k in 0..<2 {
            let part = (k * m * n)..<((k + 1) * m * n)
            let alone = try #require(try run(Parameter("W", values: Array(start[part]), shape: [m, n]),
                                             gradients.map { Array($0[part]) }).state).slots
            rows += try #require(alone["row_var"])
            columns += try #require(alone["col_var"])
        }
        #expect(batch["row_var"] == rows)
        #expect(batch["col_var"] == columns)
    }

    /// One step of a 3 × 5000 matrix, wider than the kernel's tile of 4096 columns, against the algorithm
    /// written out here in float64 from torch's documentation (the state starts at 0, so the first step's
    /// factors are the means of g²).
    @Test func aMatrixWiderThanOneTileStepsAsTheAlgorithmSays() throws {
        let (m, n) = (3, 5000)
        let p = Self.values(m * n, seed: 41), g = Self.values(m * n, seed: 42)
        let options = ["lr": 0.5, "weight_decay": 0.1, "d": 1.0, "eps2": 1e-3]
        let (ours, state) = try run(Parameter("W", values: p, shape: [m, n]), [g], options: options)
        let squares = g.map { $0 * $0 }
        let rows = (0..<m).map { i in squares[(i * n)..<((i + 1) * n)].reduce(0, +) / Double(n) }
        let columns = (0..<n).map { j in (0..<m).map { squares[$0 * n + j] }.reduce(0, +) / Double(m) }
        let rowMean = rows.reduce(0, +) / Double(m)
        let u = (0..<(m * n)).map { g[$0] / (rows[$0 / n] * columns[$0 % n] / rowMean).squareRoot() }
        let rms = { (x: [Double]) in (x.map { $0 * $0 }.reduce(0, +) / Double(x.count)).squareRoot() }
        let step = max(1e-3, rms(p)) * min(0.5, 1) / max(1, rms(u))
        let expected = (0..<(m * n)).map { p[$0] * (1 - 0.5 * 0.1) - step * u[$0] }
        let slots = try #require(state).slots
        #expect(zip(try #require(slots["row_var"]), rows).allSatisfy { abs($0 - $1) <= 1e-14 })
        #expect(zip(try #require(slots["col_var"]), columns).allSatisfy { abs($0 - $1) <= 1e-14 })
        #expect(zip(ours, expected).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) })
    }

    /// Factored state saved mid-run and loaded back continues bit for bit, on float32 and float64 tensors.
    @Test func factoredStateResumesFromACheckpointBitForBit() throws {
        let shapes = [[12, 20], [3, 5, 6], [30]]
        let parameters = try shapes.enumerated().map { index, shape in
            try Parameter("p\(index)", values: Self.values(shape.reduce(1, *), seed: 50 + UInt64(index)).map { Float($0) },
                          shape: shape)
        }
        let optimizer = try Optimizer(parameters, rules: ["adafactor"], defaults: ["weight_decay": 0.01], registry: registry)
        func steps(_ range: Range<Int>) throws -> [[UInt32]] {
            for step in range {
                for (index, parameter) in parameters.enumerated() {
                    try parameter.setGradient(Self.values(parameter.count, seed: 100 * UInt64(step) + UInt64(index)).map { Float($0) })
                }
                try optimizer.step()
            }
            return try parameters.map { try $0.values(as: Float.self).map(\.bitPattern) }
        }
        _ = try steps(0..<3)
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("adafactor.safetensors")
        try optimizer.saveCheckpoint(to: file)
        let straight = (try steps(3..<6), parameters.map { optimizer.state(of: $0) })
        try optimizer.loadCheckpoint(from: file)
        let resumed = (try steps(3..<6), parameters.map { optimizer.state(of: $0) })
        #expect(straight.0 == resumed.0)
        #expect(straight.1 == resumed.1)
    }
}
