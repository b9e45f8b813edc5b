import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Learning-rate schedules against the sequences torch produced (Tests/Fixtures/torch-lr).
@Suite struct ScheduleTests {
    struct TorchCase: Sendable, CustomStringConvertible {
        let name: String
        let scheduler: String
        let bases: [Double]
        let losses: [Double]?
        let rates: [[Double]]
        var description: String { name }
    }

    static let cases: [TorchCase] = {
        let url = TestPaths.fixtures("torch-lr").appendingPathComponent("schedules.json")
        guard let data = try? Data(contentsOf: url),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cases = root["cases"] as? [[String: Any]] else { return [] }
        return cases.map {
            TorchCase(name: $0["name"] as! String, scheduler: $0["scheduler"] as! String,
                      bases: $0["group_base_lrs"] as! [Double], losses: $0["losses"] as? [Double],
                      rates: $0["lr_before_each_step"] as! [[Double]])
        }
    }()

    /// The schedule that mirrors each torch construction, and the construction it was written for.
    static let schedules: [String: (String, LearningRateSchedule)] = [
        "step": ("StepLR(step_size=3, gamma=0.5)", .step(size: 3, gamma: 0.5)),
        "multistep": ("MultiStepLR(milestones=[5,8,12], gamma=0.1)", .multiStep(milestones: [5, 8, 12], gamma: 0.1)),
        "exponential": ("ExponentialLR(gamma=0.9)", .exponential(gamma: 0.9)),
        "cosine": ("CosineAnnealingLR(T_max=10, eta_min=0.001)", .cosine(period: 10, minimum: 0.001)),
        "warmup-cosine": ("SequentialLR([LinearLR(start_factor=0.1, total_iters=4), CosineAnnealingLR(T_max=10, eta_min=0)], milestones=[4])",
                          .warmupCosine(warmupSteps: 4, startFactor: 0.1, period: 10, minimum: 0)),
        "plateau": ("ReduceLROnPlateau(mode='min', factor=0.5, patience=2, threshold=1e-4, threshold_mode='rel', cooldown=0, min_lr=0)",
                    .reduceOnPlateau(factor: 0.5, patience: 2, threshold: 1e-4, cooldown: 0, minimum: 0)),
    ]

    static func optimizer(bases: [Double]) throws -> Optimizer {
        try Optimizer(bases.enumerated().map { ParamGroup([Parameter("w\($0.offset)", values: [1.0])], options: ["lr": $0.element]) },
                      rules: ["sgd"], registry: RuleRegistry.standard(environment: [:]))
    }

    @Test func everyTorchCaseHasASchedule() {
        #expect(Self.cases.count == 6, "fixtures missing from \(TestPaths.fixtures("torch-lr").path)")
        for torchCase in Self.cases { #expect(Self.schedules[torchCase.name] != nil, "\(torchCase.name)") }
    }

    @Test(arguments: cases)
    func scheduleAgreesWithTorch(_ torchCase: TorchCase) throws {
        let (construction, schedule) = try #require(Self.schedules[torchCase.name])
        #expect(torchCase.scheduler.hasPrefix(construction), "fixture changed: \(torchCase.scheduler)")
        let optimizer = try Self.optimizer(bases: torchCase.bases)
        let scheduler = try LearningRateScheduler(optimizer, schedule: schedule)
        for (step, expected) in torchCase.rates.enumerated() {
            for (ours, torch) in zip(scheduler.rates, expected) {
                #expect(abs(ours - torch) <= 1e-12 * abs(torch), "step \(step): ours \(ours), torch \(torch)")
            }
            try optimizer.step()
            try scheduler.step(loss: torchCase.losses?[step])
        }
    }

    @Test func resumedScheduleContinuesExactly() throws {
        let schedule = LearningRateSchedule.warmupCosine(warmupSteps: 3, startFactor: 0.2, period: 7, minimum: 0.001)
        let straight = try Self.optimizer(bases: [0.1])
        let straightScheduler = try LearningRateScheduler(straight, schedule: schedule)
        for _ in 0..<12 { try straightScheduler.step() }

        let first = try Self.optimizer(bases: [0.1])
        let firstScheduler = try LearningRateScheduler(first, schedule: schedule)
        for _ in 0..<5 { try firstScheduler.step() }
        let saved = (firstScheduler.state, first.groups[0].options)
        let second = try Self.optimizer(bases: [0.1])
        let secondScheduler = try LearningRateScheduler(second, schedule: schedule)
        second.groups[0].options = saved.1
        try secondScheduler.restore(saved.0)
        for _ in 5..<12 { try secondScheduler.step() }
        #expect(secondScheduler.rates.map(\.bitPattern) == straightScheduler.rates.map(\.bitPattern))
        #expect(secondScheduler.state == straightScheduler.state)
    }

    @Test func customScheduleMultipliesTheBaseRate() throws {
        let optimizer = try Self.optimizer(bases: [0.5, 0.1])
        let scheduler = try LearningRateScheduler(optimizer, schedule: .custom { step in 1 / Double(step + 1) }, groups: [1])
        #expect(scheduler.rates == [0.1])
        try scheduler.step()
        try scheduler.step()
        #expect(scheduler.rates == [0.1 / 3])
        #expect(optimizer.groups[0].learningRate == 0.5)
    }

    @Test func badSettingsAndMissingLossAreRefused() throws {
        let optimizer = try Self.optimizer(bases: [0.1])
        #expect(throws: ScheduleError.self) { try LearningRateScheduler(optimizer, schedule: .step(size: 0, gamma: 0.5)) }
        #expect(throws: ScheduleError.self) { try LearningRateScheduler(optimizer, schedule: .exponential(gamma: 0.9), groups: [3]) }
        let plateau = try LearningRateScheduler(optimizer, schedule: .reduceOnPlateau())
        #expect(throws: ScheduleError.self) { try plateau.step() }
        #expect(plateau.state.steps == 0)
        let other = try LearningRateScheduler(optimizer, schedule: .exponential(gamma: 0.5))
        #expect(throws: ScheduleError.self) { try plateau.restore(other.state) }
    }
}
