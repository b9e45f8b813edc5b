import Foundation
@testable import Regula
import RegulaTestSupport
import Testing

/// Checkpoints whose checksums are right but whose content no step of the optimizer could have made: anyone
/// can compute the checksums (Docs/Checkpoints.md says how), so a file is rewritten here with its content
/// changed and its checksums recomputed, and each lie must be refused in words naming the tensor and the
/// rule, leaving the optimizer as it was.
@Suite struct LyingCheckpointTests {
    let registry = try! RuleRegistry.standard(environment: [:])

    /// Adam (AMSGrad on) steps, or the steps of `rules`, over one parameter, saved after three steps.
    func saved(amsgrad: Double = 1, rules: [String] = ["adam"]) throws -> (folder: TemporaryDirectory, file: URL, optimizer: Optimizer, w: Parameter) {
        let folder = try TemporaryDirectory()
        let w = Parameter("w", values: (0..<8).map { Float($0) / 4 - 1 })
        let optimizer = try Optimizer([w], rules: rules, defaults: Self.defaults(rules, amsgrad: amsgrad), registry: registry)
        for step in 0..<3 {
            try w.setGradient((0..<8).map { Float(($0 + step) % 5) / 3 - 0.5 })
            try optimizer.step()
        }
        let file = folder.url.appendingPathComponent("run.safetensors")
        try optimizer.saveCheckpoint(to: file)
        return (folder, file, optimizer, w)
    }

    /// The options of these tests: a learning rate, and for Adam whether AMSGrad is on.
    static func defaults(_ rules: [String], amsgrad: Double) -> [String: Double] {
        rules == ["adam"] ? ["lr": 0.01, "amsgrad": amsgrad] : ["lr": 0.01]
    }

    /// The checkpoint at `file` rewritten by `change`, with valid checksums.
    func rewrite(_ file: URL, _ change: (inout SafeTensors) throws -> Void) throws {
        var contents = try SafeTensors(decoding: try Data(contentsOf: file))
        try change(&contents)
        try contents.encoded().write(to: file)
    }

    /// `tensor`'s float32 values with element 2 replaced by `value`.
    func replacingElement(of tensor: SafeTensors.Tensor, with value: Float) -> SafeTensors.Tensor {
        var values = tensor.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        values[2] = value
        return SafeTensors.Tensor(dtype: .float32, bytes: values.withUnsafeBytes { Data($0) })
    }

    /// Loads `file` into a fresh copy of the saved optimizer; returns the refusal's words, and checks that the
    /// fresh optimizer's parameter is untouched.
    func refusal(loading file: URL, amsgrad: Double = 1, rules: [String] = ["adam"]) throws -> String {
        let w = Parameter("w", values: [Float](repeating: 7, count: 8))
        let optimizer = try Optimizer([w], rules: rules, defaults: Self.defaults(rules, amsgrad: amsgrad), registry: registry)
        do {
            try optimizer.loadCheckpoint(from: file)
        } catch {
            #expect((try? w.values(as: Float.self)) == [Float](repeating: 7, count: 8), "nothing changed")
            return "\(error)"
        }
        Issue.record("the checkpoint was accepted")
        return ""
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func aNonFiniteParameterOrStateIsRefused(_ value: Float) throws {
        for tensor in ["param/w", "state/w/exp_avg_sq", "state/w/exp_avg"] {
            let (folder, file, _, _) = try saved()
            defer { withExtendedLifetime(folder) {} }
            try rewrite(file) { $0.tensors[tensor] = replacingElement(of: $0.tensors[tensor]!, with: value) }
            let words = try refusal(loading: file)
            #expect(words.contains("tensor \"\(tensor)\") holds \(Double(value)) at element 2"), "\(words)")
            #expect(words.contains("a checkpoint holds finite values only"))
            if tensor.hasPrefix("state/") { #expect(words.contains("(rule \"adam\")"), "\(words)") }
        }
    }

    /// The next step would take the square root of these (torch's `exp_avg_sq.sqrt()`, Adagrad's `sum.sqrt()`).
    @Test(arguments: [("adam", "exp_avg_sq"), ("adam", "max_exp_avg_sq"), ("adagrad", "sum")])
    func aNegativeValueInASlotDeclaredNonNegativeIsRefused(_ rule: String, _ slot: String) throws {
        let (folder, file, _, _) = try saved(rules: [rule])
        defer { withExtendedLifetime(folder) {} }
        let tensor = "state/w/\(slot)"
        try rewrite(file) { $0.tensors[tensor] = replacingElement(of: $0.tensors[tensor]!, with: -0.25) }
        let words = try refusal(loading: file, rules: [rule])
        #expect(words.contains("state slot \"\(slot)\" of parameter \"w\" (rule \"\(rule)\") (tensor \"\(tensor)\") holds -0.25 at element 2"), "\(words)")
        #expect(words.contains("but rule \"\(rule)\" declares the slot non-negative"), "\(words)")
    }

    @Test func aNegativeValueInASignedSlotLoads() throws {
        let (folder, file, _, _) = try saved()
        defer { withExtendedLifetime(folder) {} }
        try rewrite(file) { $0.tensors["state/w/exp_avg"] = replacingElement(of: $0.tensors["state/w/exp_avg"]!, with: -0.25) }
        let w = Parameter("w", values: [Float](repeating: 7, count: 8))
        let optimizer = try Optimizer([w], rules: ["adam"], defaults: ["lr": 0.01, "amsgrad": 1], registry: registry)
        try optimizer.loadCheckpoint(from: file)
        #expect(optimizer.state(of: w)?.slots["exp_avg"]?[2] == -0.25)
    }

    @Test func aStepCountOfZeroWithStateAStepMadeIsRefused() throws {
        let (folder, file, _, _) = try saved()
        defer { withExtendedLifetime(folder) {} }
        try rewrite(file) { contents in
            let text = contents.metadata["regula"]!
            #expect(text.contains(#""step":3"#))
            contents.metadata["regula"] = text.replacingOccurrences(of: #""step":3"#, with: #""step":0"#)
        }
        let words = try refusal(loading: file)
        #expect(words.contains("state slot \"exp_avg\" of parameter \"w\" (rule \"adam\")"), "\(words)")
        #expect(words.contains("the checkpoint says no step has run (step 0)"), "\(words)")
    }

    @Test func anOptionMissingFromTheCheckpointIsRefused() throws {
        let (folder, file, _, _) = try saved()
        defer { withExtendedLifetime(folder) {} }
        try rewrite(file) { contents in
            let text = contents.metadata["regula"]!
            let without = text.replacingOccurrences(of: #""beta1":0.9,"#, with: "")
            #expect(without != text)
            contents.metadata["regula"] = without
        }
        let words = try refusal(loading: file)
        #expect(words.contains("the checkpoint's options for group 0 lack \"beta1\", which rule \"adam\" reads"), "\(words)")
    }

    @Test func aSlotMissingWhileItsOptionIsOnIsRefused() throws {
        let (folder, file, _, _) = try saved(amsgrad: 1)
        defer { withExtendedLifetime(folder) {} }
        try rewrite(file) { #expect($0.tensors.removeValue(forKey: "state/w/max_exp_avg_sq") != nil) }
        let words = try refusal(loading: file)
        #expect(words.contains("the checkpoint has no tensor \"state/w/max_exp_avg_sq\", which rule \"adam\" keeps while \"amsgrad\" is on"),
                "\(words)")
    }

    /// Turned on after the last step, the slot does not exist yet; the save writes it at its start value, as
    /// the next step would create it, so the file is whole and the resumed run steps as the original does.
    @Test func aSlotTurnedOnButNotYetMadeIsSavedAtItsStartValue() throws {
        let (folder, file, optimizer, w) = try saved(amsgrad: 0)
        defer { withExtendedLifetime(folder) {} }
        optimizer.groups[0].options["amsgrad"] = 1
        try optimizer.saveCheckpoint(to: file)
        let contents = try SafeTensors(decoding: try Data(contentsOf: file))
        let slot = try #require(contents.tensors["state/w/max_exp_avg_sq"])
        #expect(slot.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } == [Float](repeating: 0, count: 8))

        let copy = Parameter("w", values: [Float](repeating: 0, count: 8))
        let resumed = try Optimizer([copy], rules: ["adam"], defaults: ["lr": 0.01, "amsgrad": 0], registry: registry)
        try resumed.loadCheckpoint(from: file)
        let gradient = (0..<8).map { Float($0 % 3) - 1 }
        try w.setGradient(gradient)
        try copy.setGradient(gradient)
        try optimizer.step()
        try resumed.step()
        #expect(try copy.values(as: Float.self) == w.values(as: Float.self))
    }

    @Test func savingANonFiniteStateIsRefusedAndWritesNothing() throws {
        let (folder, file, optimizer, w) = try saved()
        defer { withExtendedLifetime(folder) {} }
        let before = try Data(contentsOf: file)
        try w.setGradient([Float](repeating: .nan, count: 8))
        try optimizer.step()   // NonFiniteSteps.proceed, the default: the NaN reaches the state
        #expect {
            try optimizer.saveCheckpoint(to: file)
        } throws: { error in
            "\(error)".contains("cannot save: parameter \"w\" (tensor \"param/w\") holds nan at element 0")
                && "\(error)".contains("nothing was written")
        }
        #expect(try Data(contentsOf: file) == before)
    }
}
