import Foundation
import Regula
import RegulaTestSupport
import Testing

/// A slot declared non-negative (`REGULA_SLOT_NON_NEGATIVE`, `StateSlot.isNonNegative`): `regula check` finds
/// a rule that breaks the promise, and a checkpoint never holds what a load would refuse.
@Suite struct NonNegativeSlotTests {
    /// A rule whose slot `squares` is declared non-negative; with `broken` on it stores -d instead of d².
    static func squaresRule(broken: Bool) throws -> Rule {
        try Rule(name: broken ? "broken_squares" : "squares", summary: "keeps the squares of the update",
                 stateSlots: [StateSlot("squares", doc: "running sum of d²", isNonNegative: true)]) { block in
            switch block.dtype {
            case .float32:
                let d = block.update(as: Float.self), squares = block.slot(0, as: Float.self)
                for i in 0..<block.count { squares[i] += broken ? -abs(d[i]) - 1 : d[i] * d[i] }
            case .float64:
                let d = block.update(as: Double.self), squares = block.slot(0, as: Double.self)
                for i in 0..<block.count { squares[i] += broken ? -abs(d[i]) - 1 : d[i] * d[i] }
            }
        }
    }

    @Test func conformanceFindsASlotThatGoesNegative() throws {
        let kept = Conformance.check(try Self.squaresRule(broken: false)).first { $0.check == .finite }
        #expect(kept?.passed == true)
        #expect(kept?.detail == "all outputs finite, slots declared non-negative stay so")
        let broken = Conformance.check(try Self.squaresRule(broken: true)).first { $0.check == .finite }
        #expect(broken?.passed == false)
        #expect(broken?.detail.contains("slot \"squares\" is declared non-negative but holds -") == true, "\(broken?.detail ?? "")")
    }

    @Test func aSwiftSlotDeclaredNonNegativeMustStartSo() {
        #expect {
            try Rule(name: "negative_start", summary: "starts below zero",
                     stateSlots: [StateSlot("squares", initialValue: -1, isNonNegative: true)]) { _ in }
        } throws: { error in
            "\(error)".contains("state slot \"squares\" of rule \"negative_start\": declared non-negative, but its initial value is -1")
        }
    }

    @Test func savingANegativeValueOfANonNegativeSlotIsRefusedAndWritesNothing() throws {
        let registry = try RuleRegistry.standard(environment: [:])
        try registry.register(Self.squaresRule(broken: true))
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("run.safetensors")
        let w = Parameter("w", values: [Float(1), 2, 3])
        let optimizer = try Optimizer([w], rules: ["broken_squares", "sgd"], defaults: ["lr": 0.1], registry: registry)
        try w.setGradient([Float(0.5), -0.5, 0])
        try optimizer.step()
        #expect {
            try optimizer.saveCheckpoint(to: file)
        } throws: { error in
            "\(error)".contains("cannot save: state slot \"squares\" of parameter \"w\" (rule \"broken_squares\")")
                && "\(error)".contains("holds -1.5 at element 0, but rule \"broken_squares\" declares the slot non-negative")
                && "\(error)".contains("nothing was written")
        }
        #expect(!FileManager.default.fileExists(atPath: file.path))
    }
}
