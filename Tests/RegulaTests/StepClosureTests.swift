import Regula
import Testing

/// `step(closure:)`, torch's `optimizer.step(closure)`: the closure runs first, computing the loss and the
/// gradients, then the step; a closure that fails leaves everything as it was.
@Suite struct StepClosureTests {
    @Test func theClosureRunsBeforeTheStepAndItsLossIsReturned() throws {
        let w = Parameter("w", values: [3.0])
        let optimizer = try Optimizer([w], preset: .sgd(lr: 0.25))
        var losses: [Double] = []
        for _ in 0..<3 {
            // Loss w², gradient 2w, evaluated at the values before the step.
            let (loss, outcome) = try optimizer.step { () throws(OptimizerError) -> Double in
                let value = try w.values(as: Double.self)[0]
                try w.setGradient([2 * value])
                return value * value
            }
            #expect(outcome == .applied)
            losses.append(loss)
        }
        // w: 3 → 1.5 → 0.75 → 0.375 (w − 0.25 · 2w); each loss is the square before its step.
        #expect(losses == [9, 2.25, 0.5625])
        #expect(try w.values(as: Double.self) == [0.375])
    }

    @Test func aClosureThatFailsEndsTheCallBeforeTheStep() throws {
        let w = Parameter("w", values: [3.0])
        try w.setGradient([1.0])
        let optimizer = try Optimizer([w], preset: .sgd(lr: 0.25))
        #expect(throws: OptimizerError.gradientLength(parameter: "w", expected: 1, got: 2)) {
            try optimizer.step { () throws(OptimizerError) -> Double in
                try w.setGradient([1.0, 2.0])
                return 0
            }
        }
        #expect(try w.values(as: Double.self) == [3.0])
        #expect(optimizer.state(of: w) == nil)
    }
}
