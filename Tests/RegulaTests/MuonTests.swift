import Regula
import RegulaTestSupport
import Testing

/// `muon` beyond the torch fixtures' small matrices: what its Newton–Schulz iteration must converge to.
@Suite struct MuonTests {
    /// With the cubic coefficients (1.5, -0.5, 0) the iteration X = 1.5 X - 0.5 X Xᵀ X converges to the polar
    /// factor O of the gradient G (G = O P, P symmetric positive definite), so after one step from p = 0 with
    /// no momentum, decay or Nesterov, p = -lr · sqrt(max(1, rows / cols)) · O. O is checked by what defines
    /// it, not by a second implementation: its smaller Gram matrix is the identity, and Oᵀ G (tall) or G Oᵀ
    /// (wide) is symmetric with a positive diagonal. Both orientations, so the transposed path is covered,
    /// at sizes far beyond a block.
    @Test(arguments: [(600, 40), (40, 600)])
    func cubicIterationConvergesToThePolarFactor(rows: Int, cols: Int) throws {
        var generator = SeededGenerator(seed: 15)
        let gradient = (0..<rows * cols).map { _ in Double.random(in: -1...1, using: &generator) }
        let w = try Parameter("W", values: [Double](repeating: 0, count: rows * cols), shape: [rows, cols])
        try w.setGradient(gradient)
        let options = ["lr": 1, "momentum": 0, "nesterov": 0, "weight_decay": 0, "ns_steps": 30, "ns_a": 1.5, "ns_b": -0.5, "ns_c": 0]
        try Optimizer([w], rules: ["muon"], defaults: options).step()
        let scale = -Double(max(rows, cols) / cols).squareRoot()
        let o = try w.values(as: Double.self).map { $0 / scale }

        // Row-major products of O and G with themselves, over the smaller dimension.
        let tall = rows > cols
        let small = min(rows, cols), large = max(rows, cols)
        func entry(_ m: [Double], _ i: Int, _ k: Int) -> Double { tall ? m[k * cols + i] : m[i * cols + k] }
        func product(_ a: [Double], _ b: [Double], _ i: Int, _ j: Int) -> Double {
            (0..<large).reduce(0) { $0 + entry(a, i, $1) * entry(b, j, $1) }
        }
        for i in 0..<small {
            for j in 0..<small {
                #expect(abs(product(o, o, i, j) - (i == j ? 1 : 0)) < 1e-12, "Gram matrix of O at (\(i), \(j))")
                let p = product(o, gradient, i, j), q = product(o, gradient, j, i)
                #expect(abs(p - q) < 1e-10 * max(1, abs(p)), "P is not symmetric at (\(i), \(j)): \(p) and \(q)")
            }
            #expect(product(o, gradient, i, i) > 0)
        }
    }

    /// Three float32 matrices, tall, wide and square, after six steps with fixed gradients on `threads` threads;
    /// with `resumingAfter`, also after a checkpoint saved at that step is loaded and the later steps are taken
    /// again. (`regula check` cannot yet step a whole-tensor rule, so these are its bit-for-bit checks for muon.)
    static func run(threads: Int, resumingAfter saved: Int? = nil) throws -> [[UInt32]] {
        var generator = SeededGenerator(seed: 7)
        let shapes = [[48, 20], [20, 48], [32, 32]]
        let matrices = try shapes.enumerated().map { index, shape in
            try Parameter("W\(index)", values: (0..<shape[0] * shape[1]).map { _ in Float.random(in: -1...1, using: &generator) }, shape: shape)
        }
        let gradients = (0..<6).map { _ in matrices.map { (0..<$0.count).map { _ in Float.random(in: -1...1, using: &generator) } } }
        let optimizer = try Optimizer(matrices, rules: ["muon"], defaults: ["lr": 0.02], choices: ["adjust_lr_fn": "match_rms_adamw"])
        optimizer.threads = threads
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("muon.safetensors")
        func steps(_ range: Range<Int>) throws -> [UInt32] {
            for step in range {
                for (matrix, gradient) in zip(matrices, gradients[step]) { try matrix.setGradient(gradient) }
                try optimizer.step()
                if step == saved { try optimizer.saveCheckpoint(to: file) }
            }
            return try matrices.flatMap { try $0.values(as: Float.self).map(\.bitPattern) }
        }
        let straight = try steps(0..<6)
        guard let saved else { return [straight] }
        try optimizer.loadCheckpoint(from: file)
        return [straight, try steps(saved + 1..<6)]
    }

    @Test func stepsGiveTheSameBitsOnAnyThreadCount() throws {
        let one = try Self.run(threads: 1)
        #expect(try Self.run(threads: 2) == one)
        #expect(try Self.run(threads: 3) == one)
    }

    @Test func aCheckpointResumesBitForBit() throws {
        let runs = try Self.run(threads: 2, resumingAfter: 2)
        #expect(runs.count == 2 && runs[0] == runs[1])
    }

    @Test func refusesAParameterThatIsNotAMatrixByName() throws {
        let bias = Parameter("b", values: [Float](repeating: 0, count: 8))
        let cube = try Parameter("T", values: [Float](repeating: 0, count: 8), shape: [2, 2, 2])
        for (parameter, words) in [(bias, #"parameter "b" has shape [8] (rank 1)"#), (cube, #"parameter "T" has shape [2, 2, 2] (rank 3)"#)] {
            #expect {
                try Optimizer([parameter], rules: ["muon"], defaults: ["lr": 0.02])
            } throws: { error in
                "\(error)".contains(#"rule "muon" steps parameters of rank 2 only"#) && "\(error)".contains(words)
            }
        }
    }
}
