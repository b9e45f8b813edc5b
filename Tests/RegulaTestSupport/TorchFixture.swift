import Foundation

/// A reference case from `../shared/fixtures/torch-sgd/`: a replay spec and what torch computed, or, for a
/// `bad-*` case, the words its refusal must contain.
public struct TorchFixture: Sendable, CustomStringConvertible {
    /// The file's name, e.g. `seed-example.json`.
    public let file: String
    /// The whole fixture file; `regula replay` and ``ReplaySpec`` read through to its `spec` member.
    public let spec: Data
    /// Element type named by the spec.
    public let dtype: String
    /// torch's parameters after the last step.
    public let expectedParameters: [String: [Double]]
    /// torch's momentum buffers after the last step, where torch has one.
    public let expectedMomentumBuffers: [String: [Double]]
    /// For a bad case, words the error must contain.
    public let errorWords: [String]

    /// The folder of the torch-sgd fixtures.
    public static let directory = TestPaths.sharedFixtures("torch-sgd")

    /// Every trajectory case (not `bad-*`), in name order.
    public static func trajectories() -> [TorchFixture] { load { !$0.hasPrefix("bad-") } }
    /// Every `bad-*` case, in name order.
    public static func refusals() -> [TorchFixture] { load { $0.hasPrefix("bad-") } }

    /// `|ours − torch| ≤ tolerance · max(1, |torch|)`: 1e-5 for float32, 1e-11 for float64.
    public var tolerance: Double { dtype == "float64" ? 1e-11 : 1e-5 }

    /// The file name.
    public var description: String { file }

    private static func load(_ include: (String) -> Bool) -> [TorchFixture] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".json") && include($0) }.sorted().map { name in
            let data = try! Data(contentsOf: directory.appendingPathComponent(name))
            // JSONDecoder reads numbers exactly (JSONSerialization on Linux may be an ulp off).
            let file = try! JSONDecoder().decode(File.self, from: data)
            return TorchFixture(
                file: name, spec: data, dtype: file.spec.dtype ?? "float32",
                expectedParameters: file.expect?.params ?? [:], expectedMomentumBuffers: file.expect?.momentum_buffer ?? [:],
                errorWords: file.error_words ?? [])
        }
    }

    /// The parts of a fixture file the tests read.
    private struct File: Decodable {
        struct Spec: Decodable { let dtype: String? }
        struct Expect: Decodable {
            let params: [String: [Double]]
            let momentum_buffer: [String: [Double]]?
        }
        let spec: Spec
        let expect: Expect?
        let error_words: [String]?
    }

    /// Every element farther from torch than the tolerance, described; empty when all agree.
    public func disagreements(parameters: [String: [Double]], momentumBuffers: [String: [Double]]) -> [String] {
        compare(parameters, expectedParameters, what: "param") + compare(momentumBuffers, expectedMomentumBuffers, what: "momentum_buffer")
    }

    private func compare(_ ours: [String: [Double]], _ torch: [String: [Double]], what: String) -> [String] {
        var problems: [String] = []
        for (name, expected) in torch.sorted(by: { $0.key < $1.key }) {
            guard let actual = ours[name], actual.count == expected.count else {
                problems.append("\(what) \(name): missing or of the wrong length")
                continue
            }
            for (index, (a, e)) in zip(actual, expected).enumerated() where !(abs(a - e) <= tolerance * max(1, abs(e))) {
                problems.append("\(what) \(name)[\(index)]: ours \(a), torch \(e)")
            }
        }
        return problems
    }
}
