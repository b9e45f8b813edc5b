import Dispatch
import Foundation
import Regula
import RegulaTestSupport
import Synchronization
import Testing

/// An optimizer shared between threads takes whole steps one after another; and the hooks a distributed
/// optimizer needs (a step other processes may veto, state set from outside, reductions combined across
/// processes) keep the all-or-nothing promise.
@Suite struct ConcurrencyAndAgreementTests {
    let registry = try! RuleRegistry.standard(environment: [:])

    static func parameter(_ name: String = "w", count: Int = 50_000) -> Parameter {
        Parameter(name, values: (0..<count).map { Float(($0 * 37) % 101) / 50 - 1 })
    }

    /// Runs `body` on `threads` threads at once, each handed a `step` that steps `optimizer`; returns how many
    /// of those steps succeeded and the words of every one that threw.
    static func steps(of optimizer: Optimizer, onThreads threads: Int,
                      _ body: @Sendable (_ worker: Int, _ step: () -> Void) -> Void) -> (count: Int, errors: [String]) {
        let outcome = Mutex((count: 0, errors: [String]()))
        DispatchQueue.concurrentPerform(iterations: threads) { worker in
            body(worker) {
                do {
                    try optimizer.step()
                    outcome.withLock { $0.count += 1 }
                } catch {
                    outcome.withLock { $0.errors.append("\(error)") }
                }
            }
        }
        return outcome.withLock { $0 }
    }

    @Test func twoThreadsSteppingTakeTwoWholeSteps() throws {
        let shared = Self.parameter(), serial = Self.parameter()
        let gradient = (0..<shared.count).map { Float(($0 * 13) % 41) / 20 - 1 }
        try shared.setGradient(gradient)
        try serial.setGradient(gradient)
        let concurrent = try Optimizer([shared], preset: .adamW(lr: 0.01), registry: registry)
        let reference = try Optimizer([serial], preset: .adamW(lr: 0.01), registry: registry)
        let taken = Self.steps(of: concurrent, onThreads: 8) { _, step in
            for _ in 0..<5 { step() }
        }
        #expect(taken.errors == [] && taken.count == 40)
        for _ in 0..<40 { try reference.step() }
        #expect(try shared.values(as: Float.self) == serial.values(as: Float.self))
        #expect(concurrent.state(of: shared) == reference.state(of: serial))
    }

    @Test func optionsChangedWhileAnotherThreadStepsApplyWholeSteps() throws {
        let w = Self.parameter()
        try w.setGradient([Float](repeating: 0.5, count: w.count))
        let optimizer = try Optimizer([w], rules: ["sgd"], defaults: ["lr": 0.01], registry: registry)
        let taken = Self.steps(of: optimizer, onThreads: 2) { worker, step in
            for round in 0..<200 {
                if worker == 0 { step() } else { optimizer.groups[0].learningRate = round % 2 == 0 ? 0.01 : 0.02 }
            }
        }
        #expect(taken.errors == [] && taken.count == 200)
        // Every step moved every element by the same 0.5 · lr, with lr 0.01 or 0.02: all elements moved alike.
        let moved = try zip(Self.parameter().values(as: Float.self), w.values(as: Float.self)).map { $0 - $1 }
        #expect(moved.allSatisfy { abs($0 - moved[0]) < 1e-4 })
    }

    @Test func aVetoedStepChangesNothingAndReportsTheAgreedOutcome() throws {
        let w = Self.parameter(count: 3000)
        let optimizer = try Optimizer([w], rules: ["momentum", "sgd"], defaults: ["lr": 0.1, "momentum": 0.9], registry: registry)
        try w.setGradient([Float](repeating: 1, count: w.count))
        #expect(try DistributionSeam(optimizer).step(agreeing: { local in
            if case .applied = local { return .applied }
            return local
        }) == .applied)
        let before = (try w.values(as: Float.self), optimizer.state(of: w))
        // Another process skipped: this one undoes its own, successful step.
        #expect(try DistributionSeam(optimizer).step(agreeing: { _ in .skipped(reason: "process 1 saw a NaN") }) == .skipped(reason: "process 1 saw a NaN"))
        #expect(try w.values(as: Float.self) == before.0 && optimizer.state(of: w) == before.1)
        #expect(optimizer.skippedSteps == 1)
        // Another process failed: this one undoes its step and throws the agreed error.
        let remote = OptimizerError.kernelFailed(rule: "sgd", parameter: "w", status: 1, message: "on process 2")
        #expect(throws: remote) { try DistributionSeam(optimizer).step(agreeing: { _ in .failed(remote) }) }
        #expect(try w.values(as: Float.self) == before.0 && optimizer.state(of: w) == before.1)
        // Refused options here are handed to the agreement too, so the others can fail the same way.
        optimizer.groups[0].learningRate = -1
        var seen: DistributionSeam.LocalStep?
        #expect(throws: OptimizerError.self) { try DistributionSeam(optimizer).step(agreeing: { seen = $0; return $0 }) }
        if case .failed = seen {} else { Issue.record("the agreement did not see the refusal: \(String(describing: seen))") }
    }

    @Test func stateSetFromOutsideRoundTripsAndRefusesWhatDoesNotFit() throws {
        let a = Self.parameter("a", count: 300), b = Self.parameter("a", count: 300)
        let source = try Optimizer([a], rules: ["adam"], defaults: ["amsgrad": 1], registry: registry)
        let target = try Optimizer([b], rules: ["adam"], defaults: ["amsgrad": 1], registry: registry)
        for step in 0..<3 {
            try a.setGradient((0..<300).map { Float(($0 + step) % 7) - 3 })
            try source.step()
        }
        let state = try #require(source.state(of: a))
        try DistributionSeam(target).setState(of: b, to: state)
        #expect(target.state(of: b) == state)
        #expect(target.stateByteCount == source.stateByteCount)
        #expect(source.stateByteCount == 3 * 300 * 4 + 8)
        var extra = state.slots
        extra["nonsense"] = [1]
        #expect(throws: OptimizerError.stateRefused(parameter: "a", reason: "the chain has no slot \"nonsense\"")) {
            try DistributionSeam(target).setState(of: b, to: DistributionSeam.state(step: 3, slots: extra))
        }
        var short = state.slots
        short["exp_avg"] = [1, 2]
        #expect(throws: OptimizerError.stateRefused(parameter: "a", reason: "slot \"exp_avg\" has 2 values; expected 300")) {
            try DistributionSeam(target).setState(of: b, to: DistributionSeam.state(step: 3, slots: short))
        }
        #expect(target.state(of: b) == state)
    }

    /// Stands in for other processes: each value is combined with what `others` hold, in order.
    final class FakeExchange: ReductionExchange, @unchecked Sendable {
        let others: [[Double]]
        var calls = 0
        init(others: [[Double]]) { self.others = others }
        func combineAcrossProcesses(_ values: UnsafeMutableBufferPointer<Double>, combines: [Reduction.Combine]) {
            calls += 1
            for index in values.indices {
                for other in others { values[index] = combines[index % combines.count](values[index], other[index]) }
            }
        }
    }

    @Test func reductionsAreCombinedWithTheOtherProcessesBeforeTheyAreUsed() throws {
        // One process holding one of two equal halves of a parameter: with the other half's sum of squares
        // added, clip_global_norm sees the whole norm.
        let half = Parameter("w", values: [Double](repeating: 0, count: 4))
        let optimizer = try Optimizer([half], rules: ["clip_global_norm", "sgd"], defaults: ["lr": 1, "max_norm": 1],
                                      registry: registry)
        let exchange = FakeExchange(others: [[4 * 9.0]])
        DistributionSeam(optimizer).reductionExchange = exchange
        try half.setGradient([Double](repeating: 3, count: 4))
        try optimizer.step()
        #expect(exchange.calls == 1)
        let scale = 1 / ((8 * 9.0).squareRoot() + 1e-6)
        #expect(try half.values(as: Double.self) == [Double](repeating: -3 * scale, count: 4))
    }
}
