import Foundation
import Regula
import RegulaDistributed

/// Whole-tensor rules under both modes: `muon` (with a choice) on two matrices beside `adamw` on two vectors,
/// and `adafactor` on a matrix and a vector. Every rank sets the same gradient, so the average over ranks is
/// exactly it and a one-process `Optimizer` stepping it is the bit-for-bit reference. Then a sharded
/// checkpoint goes to one process and back to the ranks, and ranks that disagree on a choice are refused.
enum WholeTensor {
    static let steps = 4
    static let shapes: [(name: String, shape: [Int])] = [("w1", [6, 4]), ("w2", [3, 5]), ("b1", [6]), ("b2", [3]),
                                                         ("f", [5, 7]), ("g", [9])]

    /// Fresh parameters (`shift` away from the initial values) and their three groups.
    static func model<T: ParameterElement>(_: T.Type, shift: Double = 0, choice: String = "match_rms_adamw") -> ([Parameter], [ParamGroup]) {
        let parameters = shapes.enumerated().map { index, entry in
            let count = entry.shape.reduce(1, *)
            return try! Parameter(entry.name, values: (0..<count).map { T(2 * SyntheticModel.uniform(index + 200, 0, $0) - 1 + shift) },
                                  shape: entry.shape)
        }
        return (parameters, [ParamGroup([parameters[0], parameters[1]], rules: ["muon"], options: ["lr": 0.02],
                                        choices: ["adjust_lr_fn": choice]),
                             ParamGroup([parameters[2], parameters[3]], options: ["lr": 0.01, "weight_decay": 0.1]),
                             ParamGroup([parameters[4], parameters[5]], rules: ["adafactor"], options: ["lr": 0.01])])
    }

    /// The same gradient on every rank: a pull of each element towards a fixed target, at the current values.
    static func setGradients<T: ParameterElement>(_: T.Type, _ parameters: [Parameter]) throws {
        for (index, parameter) in parameters.enumerated() {
            let values = try parameter.values(as: T.self)
            try parameter.setGradient(values.indices.map { j in
                (values[j] - T(4 * SyntheticModel.uniform(index + 300, 0, j) - 2)) * T(0.5 + SyntheticModel.uniform(index + 400, 0, j))
            })
        }
    }

    static func run(_ communicator: Communicator, registry: RuleRegistry, folder: URL, into report: inout Report) throws {
        for mode in DistributedOptimizer.Mode.allCases {
            try numerics(Float.self, mode, communicator, registry, &report)
            try numerics(Double.self, mode, communicator, registry, &report)
        }
        try checkpoints(communicator, registry: registry, folder: folder, into: &report)
        try choiceDisagreements(communicator, registry: registry, into: &report)
    }

    /// Every parameter's values, share and state on this rank, under `key`.
    private static func record<T: ParameterElement>(_: T.Type, _ parameters: [Parameter], share: (Parameter) -> Range<Int>?,
                                                    state: (Parameter) -> ParameterState?, key: String, into report: inout Report) throws {
        for parameter in parameters {
            report.record("\(key)/\(parameter.name)", values: try parameter.values(as: T.self).map(Double.init))
            if let share = share(parameter) { report.record("\(key)/\(parameter.name)/share", values: [Double(share.lowerBound), Double(share.upperBound)]) }
            guard let state = state(parameter) else { continue }
            report.record("\(key)/\(parameter.name)/step", number: state.step)
            report.record("\(key)/\(parameter.name)/slots", text: state.slots.keys.sorted().joined(separator: ","))
            for (slot, values) in state.slots { report.record("\(key)/\(parameter.name)/slot/\(slot)", values: values) }
        }
    }

    private static func numerics<T: ParameterElement>(_: T.Type, _ mode: DistributedOptimizer.Mode, _ communicator: Communicator,
                                                      _ registry: RuleRegistry, _ report: inout Report) throws {
        let key = "whole-tensor/\(mode.rawValue)/\(T.dtype)"
        // Other values on each rank: building the optimizer copies rank 0's to every rank.
        let (parameters, groups) = model(T.self, shift: Double(communicator.rank))
        let optimizer = try DistributedOptimizer(groups, rules: ["adamw"], mode: mode, bucketBytes: 1024, registry: registry)
        for _ in 0..<steps {
            try setGradients(T.self, parameters)
            try optimizer.step()
        }
        try record(T.self, parameters, share: optimizer.share(of:), state: optimizer.state(of:), key: key, into: &report)
        guard communicator.rank == 0 else { return }
        let (single, singleGroups) = model(T.self)
        let reference = try Optimizer(singleGroups, rules: ["adamw"], registry: registry)
        reference.threads = optimizer.local.threads
        for _ in 0..<steps {
            try setGradients(T.self, single)
            try reference.step()
        }
        try record(T.self, single, share: { _ in nil }, state: reference.state(of:), key: "\(key)/reference", into: &report)
    }

    /// A sharded run saves midway and goes on; two ranks (sharded) and one process load its file and go on
    /// alike; the one process saves what it loaded, and two ranks load that and go on alike.
    private static func checkpoints(_ communicator: Communicator, registry: RuleRegistry, folder: URL, into report: inout Report) throws {
        let (fromRanks, fromOne) = (folder.appendingPathComponent("whole-tensor.safetensors"), folder.appendingPathComponent("whole-tensor-single.safetensors"))
        func distributed(shift: Double) throws -> ([Parameter], DistributedOptimizer) {
            let (parameters, groups) = model(Float.self, shift: shift)
            return (parameters, try DistributedOptimizer(groups, rules: ["adamw"], mode: .sharded, bucketBytes: 1024, registry: registry))
        }
        func train(_ parameters: [Parameter], _ step: () throws -> Void) throws {
            for _ in 0..<steps {
                try setGradients(Float.self, parameters)
                try step()
            }
        }
        let (parameters, saving) = try distributed(shift: 0)
        try train(parameters) { try saving.step() }
        try saving.saveCheckpoint(to: fromRanks)
        try train(parameters) { try saving.step() }
        try record(Float.self, parameters, share: { _ in nil }, state: { _ in nil }, key: "whole-tensor/checkpoint/continued", into: &report)

        let (resumed, loading) = try distributed(shift: 0.5)
        try loading.loadCheckpoint(from: fromRanks)
        try train(resumed) { try loading.step() }
        try record(Float.self, resumed, share: { _ in nil }, state: { _ in nil }, key: "whole-tensor/checkpoint/sharded", into: &report)

        if communicator.rank == 0 {
            let (single, groups) = model(Float.self, shift: 0.5)
            let optimizer = try Optimizer(groups, rules: ["adamw"], registry: registry)
            optimizer.threads = saving.local.threads
            try optimizer.loadCheckpoint(from: fromRanks)
            try record(Float.self, single, share: { _ in nil }, state: optimizer.state(of:), key: "whole-tensor/checkpoint/loaded", into: &report)
            try optimizer.saveCheckpoint(to: fromOne)
            try train(single) { try optimizer.step() }
            try record(Float.self, single, share: { _ in nil }, state: { _ in nil }, key: "whole-tensor/checkpoint/single", into: &report)
            report.record("whole-tensor/checkpoint/header", text: try header(of: fromRanks))
        }
        let (again, reloading) = try distributed(shift: 0.25)
        try reloading.loadCheckpoint(from: fromOne)
        try train(again) { try reloading.step() }
        try record(Float.self, again, share: { _ in nil }, state: { _ in nil }, key: "whole-tensor/checkpoint/from-one", into: &report)
    }

    /// The JSON header of a safetensors file, as written.
    private static func header(of url: URL) throws -> String {
        let data = try Data(contentsOf: url)
        let length = data.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        return String(decoding: data.dropFirst(8).prefix(length), as: UTF8.self)
    }

    /// Ranks that build their optimizers with different choices, and ranks whose choices come apart between
    /// steps: refused on every rank, in words.
    private static func choiceDisagreements(_ communicator: Communicator, registry: RuleRegistry, into report: inout Report) throws {
        let other = communicator.rank == 1
        do {
            let (_, groups) = model(Float.self, choice: other ? "original" : "match_rms_adamw")
            _ = try DistributedOptimizer(groups, rules: ["adamw"], mode: .sharded, registry: registry)
            report.record("whole-tensor/choice-at-build", text: "built")
        } catch {
            report.record("whole-tensor/choice-at-build", text: error.description)
        }
        let (parameters, groups) = model(Float.self)
        let optimizer = try DistributedOptimizer(groups, rules: ["adamw"], mode: .replicated, registry: registry)
        try setGradients(Float.self, parameters)
        if other { optimizer.local.groups[0].choices["adjust_lr_fn"] = "spectral_unclamped" }
        let before = try parameters.map { try $0.values(as: Float.self) }
        do {
            try optimizer.step()
            report.record("whole-tensor/choice-at-step", text: "stepped")
        } catch {
            report.record("whole-tensor/choice-at-step", text: error.description)
        }
        report.record("whole-tensor/choice-at-step/unchanged", number: try parameters.map { try $0.values(as: Float.self) } == before ? 1 : 0)
    }
}
