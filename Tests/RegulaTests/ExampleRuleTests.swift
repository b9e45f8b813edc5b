import Foundation
import Regula
import RegulaTestSupport
import Testing

/// The example rules under Plugins/examples, each against a reference computed here in plain Swift.
@Suite struct ExampleRuleTests {
    let registry: RuleRegistry

    init() throws {
        registry = try RuleRegistry.standard(environment: [:])
        for name in ["ElasticNet", "ProxL1", "MaxNorm", "ClipValue"] {
            try registry.loadPlugin(at: TestPaths.binDirectory.appendingPathComponent("libRegulaExample\(name).so").path)
        }
    }

    static func sign(_ x: Double) -> Double { x > 0 ? 1 : (x < 0 ? -1 : 0) }

    @Test func elasticNetMixesBothPenalties() throws {
        let values: [Double] = [0.5, -2, 0, 3], gradient: [Double] = [0.1, 0.1, -0.2, 0]
        let w = Parameter("w", values: values)
        let optimizer = try Optimizer([w], rules: ["elastic_net", "sgd"],
                                      defaults: ["lr": 0.1, "alpha": 0.3, "l1_ratio": 0.25], registry: registry)
        try w.setGradient(gradient)
        try optimizer.step()
        let expected = zip(values, gradient).map { p, g in
            p - 0.1 * (g + (0.3 * 0.25) * Self.sign(p) + (0.3 * (1 - 0.25)) * p)
        }
        for (ours, reference) in zip(try w.values(as: Double.self), expected) { #expect(abs(ours - reference) <= 1e-15) }
    }

    @Test func proxL1SoftThresholdsAfterTheStep() throws {
        let values: [Double] = [0.5, -0.5, 0.01, -0.02, 0], gradient: [Double] = [0.1, -0.1, 0, 0.05, 1]
        let w = Parameter("w", values: values)
        let optimizer = try Optimizer([w], rules: ["sgd", "prox_l1"], defaults: ["lr": 0.1, "weight_decay1": 0.2],
                                      registry: registry)
        try w.setGradient(gradient)
        try optimizer.step()
        let expected = zip(values, gradient).map { p, g -> Double in
            let stepped = p - 0.1 * g
            return Self.sign(stepped) * max(abs(stepped) - 0.1 * 0.2, 0)
        }
        #expect(try w.values(as: Double.self) == expected)
        #expect(try w.values(as: Double.self)[2] == 0)
    }

    @Test(arguments: [DType.float32, .float64])
    func proxL1GivesExactZerosWhereTheSubgradientOnlyOscillates(dtype: DType) throws {
        // Least squares 0.5·(w − target)² with a penalty stronger than the small targets' pull.
        let target: [Double] = [2, -1.5, 0.03, -0.02, 0.01, 0]
        func train(_ rules: [String]) throws -> [Double] {
            let w = dtype == .float32 ? Parameter("w", values: [Float](repeating: 0.5, count: target.count))
                                      : Parameter("w", values: [Double](repeating: 0.5, count: target.count))
            let optimizer = try Optimizer([w], rules: rules, defaults: ["lr": 0.1, "weight_decay1": 0.1], registry: registry)
            for _ in 0..<300 {
                let current = try dtype == .float32 ? w.values(as: Float.self).map(Double.init) : w.values(as: Double.self)
                let gradient = zip(current, target).map { $0 - $1 }
                if dtype == .float32 { try w.setGradient(gradient.map(Float.init)) } else { try w.setGradient(gradient) }
                try optimizer.step()
            }
            return try dtype == .float32 ? w.values(as: Float.self).map(Double.init) : w.values(as: Double.self)
        }
        let proximal = try train(["sgd", "prox_l1"]), subgradient = try train(["l1", "sgd"])
        #expect(proximal[2...].allSatisfy { $0 == 0 }, "\(proximal)")
        #expect(subgradient[2...].allSatisfy { $0 != 0 }, "\(subgradient)")
        // The large weights end at the lasso solution, target − λ·sign(target).
        #expect(abs(proximal[0] - 1.9) < 1e-5 && abs(proximal[1] + 1.4) < 1e-5)
    }

    @Test(arguments: [DType.float32, .float64], [1, 2048, 5000])
    func maxNormRescalesOntoTheBall(dtype: DType, count: Int) throws {
        let values = (0..<count).map { Double($0 % 13) / 4 - 1.5 }, gradient = (0..<count).map { Double($0 % 5) / 10 }
        let w = dtype == .float32 ? Parameter("w", values: values.map(Float.init)) : Parameter("w", values: values)
        let optimizer = try Optimizer([w], rules: ["sgd", "max_norm"], defaults: ["lr": 0.5, "max_norm": 0.75],
                                      registry: registry)
        if dtype == .float32 { try w.setGradient(gradient.map(Float.init)) } else { try w.setGradient(gradient) }
        try optimizer.step()
        let stepped = zip(values, gradient).map { $0 - 0.5 * $1 }
        let norm = stepped.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let expected = norm > 0.75 ? stepped.map { $0 * (0.75 / norm) } : stepped
        let ours = try dtype == .float32 ? w.values(as: Float.self).map(Double.init) : w.values(as: Double.self)
        let tolerance = dtype == .float32 ? 1e-6 : 1e-14
        for (a, b) in zip(ours, expected) { #expect(abs(a - b) <= tolerance * max(1, abs(b))) }
        #expect(abs(ours.reduce(0) { $0 + $1 * $1 }.squareRoot() - min(norm, 0.75)) <= tolerance * 10)
    }

    @Test func maxNormLeavesAParameterInsideTheBallUntouched() throws {
        let w = Parameter("w", values: [0.1, -0.2, 0.3])
        let optimizer = try Optimizer([w], rules: ["sgd", "max_norm"], defaults: ["lr": 0.1, "max_norm": 1],
                                      registry: registry)
        try w.setGradient([1.0, 1, 1])
        try optimizer.step()
        #expect(try w.values(as: Double.self) == [0.1 - 0.1, -0.2 - 0.1, 0.3 - 0.1])
    }

    @Test func clipValueWrittenInSwiftClampsTheUpdate() throws {
        let w = Parameter("w", values: [Float(0), 0, 0, 0])
        let optimizer = try Optimizer([w], rules: ["clip_value", "sgd"], defaults: ["lr": 1, "clip_value": 0.5],
                                      registry: registry)
        try w.setGradient([Float(2), -3, 0.25, -0.5])
        try optimizer.step()
        #expect(try w.values(as: Float.self) == [-0.5, 0.5, -0.25, 0.5])
        #expect(try registry.rule(named: "clip_value").summary.contains("written in Swift"))
    }
}
