import Foundation
import Regula
import RegulaTestSupport
import Testing

/// How a replay spec is read: every number correctly rounded, and everything the format does not allow
/// refused with words that name the place and what is allowed.
@Suite struct ReplaySpecReadingTests {
    /// A float64 spec whose one parameter `w` holds `numbers`, written as given.
    static func float64Spec(_ numbers: [String]) -> Data {
        Data(("{\"dtype\": \"float64\", \"rules\": [\"sgd\"], \"defaults\": {\"lr\": 0}, \"groups\": [{\"params\": [\"w\"]}], "
              + "\"params\": {\"w\": [\(numbers.joined(separator: ", "))]}, \"steps\": []}").utf8)
    }

    static func values(_ spec: ReplaySpec, _ name: String = "w") -> [Double] { spec.parameters[name]?.doubles ?? [] }

    /// Hard cases of decimal-to-binary conversion; the bit patterns are Python's `float()` of the same text.
    static let hardCases: [(text: String, bits: UInt64)] = [
        ("2.2250738585072011e-308", 0x000F_FFFF_FFFF_FFFF), ("2.2250738585072012e-308", 0x0010_0000_0000_0000),
        ("9007199254740993", 0x4340_0000_0000_0000), ("9007199254740995", 0x4340_0000_0000_0002),
        ("1e23", 0x44B5_2D02_C7E1_4AF6), ("8.98846567431158e307", 0x7FE0_0000_0000_0000),
        ("1.7976931348623157e308", 0x7FEF_FFFF_FFFF_FFFF), ("1.7976931348623158e308", 0x7FEF_FFFF_FFFF_FFFF),
        ("4.9406564584124654e-324", 0x0000_0000_0000_0001), ("2.4703282292062328e-324", 0x0000_0000_0000_0001),
        ("2.4703282292062327e-324", 0x0000_0000_0000_0000), ("0.1", 0x3FB9_9999_9999_999A),
        ("-0", 0x8000_0000_0000_0000), ("0e0", 0x0000_0000_0000_0000), ("-0.0e-999", 0x8000_0000_0000_0000),
        ("123456789012345678901234567890", 0x45F8_EE90_FF6C_373E), ("9007199254740992e22", 0x47D0_F0CF_064D_D592),
        ("9007199254740993e-22", 0x3EAE_3920_1017_5EE7), ("1e-22", 0x3B5E_3920_1017_5EE6),
        ("1e22", 0x4480_F0CF_064D_D592), ("1e-23", 0x3B28_2DB3_4012_B251), ("0.30000000000000004", 0x3FD3_3333_3333_3334),
        ("7.038531e-26", 0x3AB5_C87F_B000_0000),
        ("1.00000000000000011102230246251565404236316680908203125", 0x3FF0_0000_0000_0000),
        ("1.00000000000000011102230246251565404236316680908203124", 0x3FF0_0000_0000_0000),
        ("1.00000000000000011102230246251565404236316680908203126", 0x3FF0_0000_0000_0001),
        ("4503599627370496.5", 0x4330_0000_0000_0000), ("4503599627370497.5", 0x4330_0000_0000_0002),
        ("1e-400", 0x0000_0000_0000_0000), ("-1e-400", 0x8000_0000_0000_0000),
        ("0.000000000000000000000000000000000000000000001e308", 0x7689_67E5_EEC8_4E2F),
    ]

    @Test func hardDecimalCasesAreCorrectlyRounded() throws {
        let spec = try ReplaySpec(json: Self.float64Spec(Self.hardCases.map(\.text)))
        for (case_, value) in zip(Self.hardCases, Self.values(spec)) {
            #expect(value.bitPattern == case_.bits, "\(case_.text): read \(value)")
        }
    }

    @Test func randomNumbersInEveryNotationAreCorrectlyRounded() throws {
        // The reference is Swift's own correctly rounded parser, `Double(String)`.
        var random = SeededGenerator(seed: 10)
        var texts: [String] = []
        for _ in 0..<6000 {
            let value: Double = switch Int.random(in: 0..<3, using: &random) {
            case 0: Double(bitPattern: random.next())
            case 1: Double(Float(bitPattern: UInt32(truncatingIfNeeded: random.next())))
            default: Double.random(in: -1e6...1e6, using: &random).rounded() / Double([1, 10, 1000, 1e7].randomElement(using: &random)!)
            }
            guard value.isFinite else { continue }
            let digits = Int.random(in: 1...25, using: &random)
            texts.append(["\(value)", String(format: "%.\(digits)g", value), String(format: "%.\(digits)e", value),
                          String(format: "%.17g", value)].randomElement(using: &random)!)
        }
        let read = Self.values(try ReplaySpec(json: Self.float64Spec(texts)))
        #expect(read.count == texts.count)
        for (text, value) in zip(texts, read) where value.bitPattern != Double(text)!.bitPattern {
            Issue.record("\(text): read \(value), expected \(Double(text)!)")
        }
    }

    @Test(arguments: TorchFixture.Folder.implemented)
    func everyFixtureReadsAsJSONDecoderReadsIt(_ folder: TorchFixture.Folder) throws {
        // JSONDecoder rounds correctly; the float32 fixtures are rounded once more, to Float, as torch does.
        struct File: Decodable {
            struct Spec: Decodable { let dtype: String?; let params: [String: [Double]]; let steps: [Step] }
            struct Step: Decodable { let grads: [String: [Double]]? }
            let spec: Spec
        }
        // Refusals too, when what they break is not the reading.
        let fixtures = TorchFixture.trajectories([folder]).map { ($0, true) } + TorchFixture.refusals([folder]).map { ($0, false) }
        #expect(!fixtures.isEmpty)
        for (fixture, mustRead) in fixtures {
            let reference = try JSONDecoder().decode(File.self, from: fixture.spec).spec
            guard let spec = mustRead ? try ReplaySpec(json: fixture.spec) : try? ReplaySpec(json: fixture.spec) else { continue }
            let round: (Double) -> Double = reference.dtype == "float64" ? { $0 } : { Double(Float($0)) }
            Self.expectSame(spec.parameters, reference.params.mapValues { $0.map(round) }, "\(fixture) params")
            #expect(spec.steps.count == reference.steps.count)
            for (index, (step, expected)) in zip(spec.steps, reference.steps).enumerated() {
                guard case .inline(let gradients) = step.gradients else { Issue.record("\(fixture): not inline"); continue }
                Self.expectSame(gradients, (expected.grads ?? [:]).mapValues { $0.map(round) }, "\(fixture) steps[\(index)]")
            }
        }
    }

    /// Records the first element (bit for bit) where `read` and `reference` differ.
    static func expectSame(_ read: [String: ReplayTensor], _ reference: [String: [Double]], _ what: String) {
        #expect(read.keys.sorted() == reference.keys.sorted(), "\(what)")
        for (name, expected) in reference {
            let values = read[name]?.doubles ?? []
            guard values.count == expected.count else { Issue.record("\(what).\(name): \(values.count) values, reference \(expected.count)"); continue }
            if let index = zip(values, expected).enumerated().first(where: { $1.0.bitPattern != $1.1.bitPattern })?.offset {
                Issue.record("\(what).\(name)[\(index)]: read \(values[index]), reference \(expected[index])")
            }
        }
    }

    @Test func aByteOrderMarkAndAnyJSONWhitespaceAreAccepted() throws {
        let text = "\u{FEFF}\r\n\t{ \"rules\" : [ \"sgd\" ] , \"defaults\" : { \"lr\" : 1 }, \"groups\": [{\"params\": [\"w\"]}],"
            + " \"params\": {\"w\": [ 1 , -2.5e0 ]}, \"steps\": [ ] }\n"
        let spec = try ReplaySpec(json: Data(text.utf8))
        #expect(Self.values(spec) == [1, -2.5])
        #expect(spec.dtype == .float32)
    }

    @Test func escapedNamesAreDecoded() throws {
        let text = #"{"rules": ["sgd"], "defaults": {"lr": 1}, "groups": [{"params": ["\u00e9\ud83d\ude00\n\"x\""]}], "#
            + #""params": {"é😀\n\"x\"": [1]}, "steps": []}"#
        let spec = try ReplaySpec(json: Data(text.utf8))
        #expect(spec.groups[0].parameters == ["é😀\n\"x\""])
    }

    /// A spec and words its refusal must contain.
    struct Refusal: CustomStringConvertible, Sendable {
        let text: String
        let words: [String]
        var description: String { words.joined(separator: " / ") }
    }

    static func spec(params: String = #"{"w": [1, 2]}"#, groups: String = #"[{"params": ["w"]}]"#,
                     defaults: String = #"{"lr": 0.1}"#, steps: String = #"[{"grads": {"w": [0.5, 0.5]}}]"#,
                     dtype: String = "float32") -> String {
        #"{"dtype": "\#(dtype)", "rules": ["sgd"], "defaults": \#(defaults), "groups": \#(groups), "params": \#(params), "steps": \#(steps)}"#
    }

    static let refusals: [Refusal] = [
        Refusal(text: spec(defaults: #"{"lr": 0.1, "lr": 0.2}"#), words: ["key \"lr\" appears twice", "defaults", "line 1, column"]),
        Refusal(text: spec(params: #"{"w": [1, 2], "w": [3, 4]}"#), words: ["key \"w\" appears twice", "params"]),
        Refusal(text: #"{"rules": ["sgd"], "rules": ["l1", "sgd"]}"#, words: ["key \"rules\" appears twice"]),
        Refusal(text: spec(params: #"{"w": [1, 1e39]}"#), words: ["spec.params.w[1]", "1e+39", "float32", "3.4028235e+38"]),
        Refusal(text: spec(steps: #"[{"grads": {"w": [0.5, -4e38]}}]"#), words: ["spec.steps[0].grads.w[1]", "float32"]),
        Refusal(text: spec(params: #"{"w": [1, 1e400]}"#, dtype: "float64"), words: ["spec.params.w[1]", "float64"]),
        Refusal(text: spec(defaults: #"{"lr": 1e400}"#), words: ["spec.defaults.lr", "float64's range"]),
        Refusal(text: spec(steps: #"[{"set": [{"group": 0, "lr": -1e999}]}]"#), words: ["spec.steps[0].set[0].lr", "range"]),
        Refusal(text: spec(params: #"{"w": [1, NaN]}"#), words: ["NaN is not a JSON number", "params.w[1]", "allow_nan=False"]),
        Refusal(text: spec(params: #"{"w": [Infinity, 1]}"#), words: ["Infinity is not a JSON number"]),
        Refusal(text: spec(params: #"{"w": [1, -Infinity]}"#), words: ["Infinity is not a JSON number"]),
        Refusal(text: spec(params: #"{"w": [1, 2], "b": [3]}"#), words: ["parameter \"b\" is in no group", "ignored"]),
        Refusal(text: spec(groups: #"[{"params": ["w"]}, {"params": ["w"], "lr": 1}]"#),
                words: ["parameter \"w\" is in spec.groups[0] and in spec.groups[1]"]),
        Refusal(text: spec(groups: #"[{"params": ["w", "w"]}]"#), words: ["spec.groups[0].params lists parameter \"w\" twice"]),
        Refusal(text: spec(groups: #"[{"params": ["v"]}]"#), words: ["parameter \"v\"", "does not define"]),
        Refusal(text: spec(steps: #"[{"grads": {"v": [1, 2]}}]"#), words: ["spec.steps[0].grads", "parameter \"v\"", "does not define"]),
        Refusal(text: spec(steps: #"[{"grads": {"w": [1, 2, 3]}}]"#), words: ["parameter \"w\" has 3 elements", "has 2"]),
        Refusal(text: spec(steps: #"[{"grads": {"w": [1, "2"]}}]"#), words: ["spec.steps[0].grads.w[1] is the string \"2\"; allowed: a number"]),
        Refusal(text: spec(steps: #"[{"set": [{"group": 0.5, "lr": 1}]}]"#), words: ["group is 0.5", "whole number from 0 to 0"]),
        Refusal(text: spec(steps: #"[{"set": [{"group": -1, "lr": 1}]}]"#), words: ["group is -1", "from 0 to 0"]),
        Refusal(text: spec(steps: #"[{"set": [{"group": 1e300, "lr": 1}]}]"#), words: ["group is 1e+300", "from 0 to 0"]),
        Refusal(text: spec(steps: #"[{"set": [{"lr": 1}]}]"#), words: ["spec.steps[0].set[0].group is missing"]),
        Refusal(text: spec(steps: #"[{"grad": {"w": [1, 2]}}]"#), words: ["spec.steps[0] has an unknown field \"grad\"", "did you mean \"grads\""]),
        Refusal(text: spec(dtype: "bfloat16"), words: ["spec.dtype is \"bfloat16\"; allowed: float32, float64"]),
        Refusal(text: spec(params: "17"), words: ["spec.params is the number 17; allowed:", "safetensors file"]),
        Refusal(text: spec(params: #""""#), words: ["spec.params is an empty path"]),
        Refusal(text: spec(params: #""no-such-file.safetensors""#), words: ["spec.params", "no-such-file.safetensors", "no such file"]),
        Refusal(text: spec(steps: #"[{"grads": "/no/such/grads.safetensors"}]"#),
                words: ["spec.steps[0].grads", "/no/such/grads.safetensors", "no such file"]),
        Refusal(text: "[1, 2]", words: ["an array", "a replay spec is a JSON object"]),
        Refusal(text: "", words: ["the document is empty"]),
        Refusal(text: " \n ", words: ["only whitespace"]),
        Refusal(text: spec() + " {}", words: ["\"{\" after the end of the JSON document"]),
        Refusal(text: String(spec().prefix(60)), words: ["truncated"]),
        Refusal(text: spec(params: #"{"w": [01, 2]}"#), words: ["may not start with 0", "01"]),
        Refusal(text: spec(params: #"{"w": [1., 2]}"#), words: ["decimal point must be followed by a digit"]),
        Refusal(text: spec(params: #"{"w": [1e, 2]}"#), words: ["exponent must have digits"]),
        Refusal(text: spec(params: #"{"w": [1, 2,]}"#), words: ["no comma before a closing bracket"]),
        Refusal(text: spec(params: #"{"w": [+1, 2]}"#), words: ["expected a value, found \"+\""]),
        Refusal(text: spec(params: #"{'w': [1, 2]}"#), words: ["expected a key in double quotes"]),
        Refusal(text: spec(params: "{\"w\u{7}\": [1, 2]}"), words: ["control character byte 0x7"]),
        Refusal(text: spec(params: #"{"w\x": [1, 2]}"#), words: ["\\x is not a JSON escape"]),
        Refusal(text: spec(params: #"{"w\ud800": [1, 2]}"#), words: ["surrogate pair"]),
        Refusal(text: spec(params: #"{"w": [1, 2] "b": [1]}"#), words: ["expected \",\" or \"}\" after the value of key \"w\""]),
        Refusal(text: spec(params: #"{"w": [1, 2]}"#).replacingOccurrences(of: "\"rules\"", with: "\"rulez\""),
                words: ["unknown field \"rulez\"", "did you mean \"rules\""]),
        Refusal(text: String(repeating: "[", count: 100_000), words: ["nested more than 128 levels"]),
        Refusal(text: spec(groups: #"[{"params": [7]}]"#), words: ["spec.groups[0].params[0] is the number 7; allowed: a string"]),
        Refusal(text: spec(defaults: #"{"lr": true}"#), words: ["spec.defaults.lr is true; allowed: a number"]),
    ]

    @Test(arguments: refusals)
    func refusesWithWords(_ refusal: Refusal) {
        #expect {
            _ = try ReplaySpec(json: Data(refusal.text.utf8))
        } throws: { error in
            let message = "\(error)"
            let missing = refusal.words.filter { !message.contains($0) }
            if !missing.isEmpty { Issue.record("\(message)\nlacks: \(missing)") }
            return error is ReplayError && missing.isEmpty
        }
    }

    @Test func invalidUTF8IsRefusedWithItsPlace() {
        var bytes = Array(Self.spec().utf8)
        let index = bytes.firstIndex(of: UInt8(ascii: "w"))!
        bytes[index] = 0xFF
        #expect(throws: ReplayError.self) { try ReplaySpec(json: Data(bytes)) }
        do { _ = try ReplaySpec(json: Data(bytes)) } catch {
            #expect("\(error)".contains("not UTF-8"), "\(error)")
            #expect("\(error)".contains("line 1, column"), "\(error)")
        }
    }

    @Test func aRefusalNamesItsLineAndColumn() {
        let text = "{\n  \"rules\": [\"sgd\"],\n  \"defaults\": {\"lr\": 0.1,\n                \"lr\": 0.2}}"
        do {
            _ = try ReplaySpec(json: Data(text.utf8))
            Issue.record("accepted")
        } catch {
            #expect("\(error)".hasPrefix("the spec, line 4, column 17, at defaults.lr: key \"lr\" appears twice"), "\(error)")
        }
    }
}
