import Foundation

/// A reference case from `Tests/Fixtures/torch-sgd/`, `torch-optim/` or `torch-matrix/`: a replay spec and what
/// torch (or optax) computed, or, for a `bad-*` case, the words its refusal must contain.
public struct TorchFixture: Sendable, CustomStringConvertible {
    /// The fixture folders, by name under `Tests/Fixtures`.
    public enum Folder: String, Sendable, CaseIterable {
        /// torch.optim.SGD with the seed's L1 term.
        case sgd = "torch-sgd"
        /// The optimizer family: Adam to LAMB and clip_grad_norm_.
        case optim = "torch-optim"
        /// Shaped parameters: Muon, Adafactor, ASGD and a chain per group (issue 15).
        case matrix = "torch-matrix"
        /// Stock torch.optim.Muon, its Newton–Schulz iteration in bfloat16, for muon's `ns_dtype: "bfloat16"`.
        case muonBFloat16 = "torch-muon-bf16"

        /// The folders every agreement test runs: those whose rules and spec features Regula has. torch-matrix
        /// joins once `muon`, `adafactor`, `asgd` and a group's own `rules` exist; until then its cases are
        /// used one by one, by the tests of what does exist (shapes).
        public static let implemented: [Folder] = [.sgd, .optim]

        /// The folder on disk.
        public var directory: URL { TestPaths.fixtures(rawValue) }
    }

    /// The folder the case comes from.
    public let folder: Folder
    /// The file's name, e.g. `seed-example.json`.
    public let file: String
    /// The whole fixture file; `regula replay` and ``ReplaySpec`` read through to its `spec` member.
    public let spec: Data
    /// Element type named by the spec.
    public let dtype: String
    /// The reference's parameters after the last step.
    public let expectedParameters: [String: [Double]]
    /// The reference's state tensors after the last step, by parameter and then slot name, where the fixture
    /// records them (torch-sgd records only `momentum_buffer`).
    public let expectedState: [String: [String: [Double]]]
    /// The reference's state shapes, by parameter and slot, where the fixture records them (torch-matrix).
    public let expectedStateShapes: [String: [String: [Int]]]
    /// For a bad case, words the error must contain.
    public let errorWords: [String]

    /// The file's path.
    public var path: String { folder.directory.appendingPathComponent(file).path }

    /// Every trajectory case (not `bad-*`) of the given folders, in folder and name order.
    public static func trajectories(_ folders: [Folder] = Folder.implemented) -> [TorchFixture] {
        folders.flatMap { load($0) { !$0.hasPrefix("bad-") } }
    }
    /// File-name prefixes of the torch-matrix cases whose rules exist already: the agreement tests replay them
    /// beside the implemented folders until the whole folder joins ``Folder/implemented``.
    public static let implementedMatrixCases = ["asgd-", "muon-float", "muon-plain", "muon-spectral", "bad-muon-",
                                                "bad-shape-mismatch", "muon-and-adamw-groups", "bad-group-unknown-rule",
                                                "adafactor-", "bad-adafactor-"]
    /// The trajectories the agreement tests replay: those of ``Folder/implemented`` and the torch-matrix cases
    /// of ``implementedMatrixCases``.
    public static func agreementTrajectories() -> [TorchFixture] {
        trajectories() + onlyImplemented(trajectories([.matrix]))
    }
    /// The bad specs the agreement tests refuse: those of ``Folder/implemented`` and the torch-matrix cases of
    /// ``implementedMatrixCases``.
    public static func agreementRefusals() -> [TorchFixture] {
        refusals() + onlyImplemented(refusals([.matrix]))
    }
    private static func onlyImplemented(_ cases: [TorchFixture]) -> [TorchFixture] {
        cases.filter { fixture in implementedMatrixCases.contains { fixture.file.hasPrefix($0) } }
    }
    /// Every `bad-*` case of the given folders, in folder and name order.
    public static func refusals(_ folders: [Folder] = Folder.implemented) -> [TorchFixture] {
        folders.flatMap { load($0) { $0.hasPrefix("bad-") } }
    }

    /// `|ours − reference| ≤ tolerance · max(1, |reference|)`: 1e-5 for float32, 1e-11 for float64, and 1e-2 for
    /// stock Muon's bfloat16 iteration (the issue's bar; its float32 and bfloat16 variants differ by 2e-3).
    public var tolerance: Double { folder == .muonBFloat16 ? 1e-2 : dtype == "float64" ? 1e-11 : 1e-5 }

    /// `folder/file`.
    public var description: String { "\(folder.rawValue)/\(file)" }

    private static func load(_ folder: Folder, _ include: (String) -> Bool) -> [TorchFixture] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.directory.path)) ?? []
        return names.filter { $0.hasSuffix(".json") && include($0) }.sorted().map { name in
            let data = try! Data(contentsOf: folder.directory.appendingPathComponent(name))
            // JSONDecoder reads numbers exactly (JSONSerialization on Linux may be an ulp off).
            let file = try! JSONDecoder().decode(File.self, from: data)
            var state = file.expect?.state ?? [:]
            for (parameter, buffer) in file.expect?.momentum_buffer ?? [:] { state[parameter, default: [:]]["momentum_buffer"] = buffer }
            return TorchFixture(
                folder: folder, file: name, spec: data, dtype: file.spec.dtype ?? "float32",
                expectedParameters: file.expect?.params ?? [:], expectedState: state,
                expectedStateShapes: file.expect?.state_shapes ?? [:], errorWords: file.error_words ?? [])
        }
    }

    /// The parts of a fixture file the tests read.
    private struct File: Decodable {
        struct Spec: Decodable { let dtype: String? }
        struct Expect: Decodable {
            let params: [String: [Double]]
            let momentum_buffer: [String: [Double]]?
            let state: [String: [String: [Double]]]?
            let state_shapes: [String: [String: [Int]]]?
        }
        let spec: Spec
        let expect: Expect?
        let error_words: [String]?
    }

    /// Every element farther from the reference than the tolerance, and every reference state tensor that is
    /// missing, described; empty when all agree.
    /// With `stateShapes`, every state shape the fixture records must be equal too.
    public func disagreements(parameters: [String: [Double]], state: [String: [String: [Double]]],
                              stateShapes: [String: [String: [Int]]]? = nil) -> [String] {
        var problems = compare(parameters, expectedParameters, what: "param")
        for (parameter, slots) in expectedState.sorted(by: { $0.key < $1.key }) {
            problems += compare(state[parameter] ?? [:], slots, what: "state of \(parameter):")
        }
        for (parameter, shapes) in expectedStateShapes.sorted(by: { $0.key < $1.key }) where stateShapes != nil {
            for (slot, shape) in shapes.sorted(by: { $0.key < $1.key }) where stateShapes?[parameter]?[slot] != shape {
                problems.append("state of \(parameter): \(slot) has shape \(stateShapes?[parameter]?[slot].map { "\($0)" } ?? "none"), torch's \(shape)")
            }
        }
        return problems
    }

    private func compare(_ ours: [String: [Double]], _ reference: [String: [Double]], what: String) -> [String] {
        var problems: [String] = []
        for (name, expected) in reference.sorted(by: { $0.key < $1.key }) {
            guard let actual = ours[name], actual.count == expected.count else {
                problems.append("\(what) \(name): missing or of the wrong length")
                continue
            }
            for (index, (a, e)) in zip(actual, expected).enumerated() where !(abs(a - e) <= tolerance * max(1, abs(e))) {
                problems.append("\(what) \(name)[\(index)]: ours \(a), reference \(e)")
            }
        }
        return problems
    }
}
