import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Damaged replay specs, made from the torch fixtures by a seeded generator: each must be refused with words
/// or read exactly as an independent JSON reader (Foundation's JSONDecoder) reads it and then replayed;
/// never a crash.
@Suite struct SpecMutationTests {
    /// Any JSON value, decoded by JSONDecoder: the independent reference.
    indirect enum ReferenceJSON: Decodable {
        case number(Double), string(String), bool(Bool), array([ReferenceJSON]), object([String: ReferenceJSON]), null

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() { self = .null }
            else if let value = try? container.decode(Bool.self) { self = .bool(value) }
            else if let value = try? container.decode(Double.self) { self = .number(value) }
            else if let value = try? container.decode(String.self) { self = .string(value) }
            else if let value = try? container.decode([ReferenceJSON].self) { self = .array(value) }
            else { self = .object(try container.decode([String: ReferenceJSON].self)) }
        }

        subscript(key: String) -> ReferenceJSON? { if case .object(let members) = self { members[key] } else { nil } }
        var array: [ReferenceJSON] { if case .array(let values) = self { values } else { [] } }
        var object: [String: ReferenceJSON] { if case .object(let members) = self { members } else { [:] } }
        var number: Double? { if case .number(let value) = self { value } else { nil } }
        var string: String? { if case .string(let value) = self { value } else { nil } }
    }

    /// One way of damaging a document.
    enum Mutation: CaseIterable { case truncate, flipBit, deleteByte, insertByte, duplicateKey, replaceNumber }

    /// Numbers a recording should never hold, or that test the edges of what it may. (Not 1e-400: it reads
    /// as 0, as Python reads it, but JSONDecoder refuses it; the hard cases of ReplaySpecReadingTests cover it.)
    static let oddNumbers = ["1e400", "-1e400", "1e39", "-3.5e38", "3.4028235e38", "0.5", "-1", "1e300", "-0",
                             "123456789012345678901234567890", "2.5", "NaN", "Infinity", "-Infinity", "1.5e-45", "00", "1e"]

    /// Applies a random `mutation` to `document`; nil when the document offers no place for it.
    static func mutate(_ document: [UInt8], _ mutation: Mutation, _ random: inout SeededGenerator) -> [UInt8]? {
        var bytes = document
        let offset = Int.random(in: 0..<bytes.count, using: &random)
        switch mutation {
        case .truncate: return Array(bytes[..<offset])
        case .flipBit: bytes[offset] ^= 1 << UInt8.random(in: 0..<8, using: &random)
        case .deleteByte: bytes.remove(at: offset)
        case .insertByte: bytes.insert(Array("{}[],:\"0-.eE \\\u{0}x".utf8).randomElement(using: &random)!, at: offset)
        case .duplicateKey:
            // Repeat a key of some object right before it, with a harmless value: `"lr": 0.5, "lr": …`.
            guard let key = keyStarts(bytes).randomElement(using: &random) else { return nil }
            bytes.insert(contentsOf: Array(bytes[key.range]) + Array(": 0.5, ".utf8), at: key.range.lowerBound)
        case .replaceNumber:
            guard let number = numberRanges(bytes).randomElement(using: &random) else { return nil }
            bytes.replaceSubrange(number, with: Array(oddNumbers.randomElement(using: &random)!.utf8))
        }
        return bytes
    }

    /// Where each `"key":` starts and ends (the quotes included).
    static func keyStarts(_ bytes: [UInt8]) -> [(range: Range<Int>, key: String)] {
        var keys: [(Range<Int>, String)] = []
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "\"") else { index += 1; continue }
            var end = index + 1
            while end < bytes.count, bytes[end] != UInt8(ascii: "\"") { end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1 }
            var after = end + 1
            while after < bytes.count, bytes[after] == UInt8(ascii: " ") || bytes[after] == UInt8(ascii: "\n") { after += 1 }
            if after < bytes.count, bytes[after] == UInt8(ascii: ":") {
                keys.append((index..<end + 1, String(decoding: bytes[index + 1..<min(end, bytes.count)], as: UTF8.self)))
            }
            index = end + 1
        }
        return keys
    }

    /// The byte ranges of number tokens.
    static func numberRanges(_ bytes: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var index = 0
        let numberBytes = Set("0123456789-+.eE".utf8)
        while index < bytes.count {
            let previous = index > 0 ? bytes[index - 1] : UInt8(ascii: " ")
            if numberBytes.contains(bytes[index]), " [:,\n".utf8.contains(previous) {
                var end = index
                while end < bytes.count, numberBytes.contains(bytes[end]) { end += 1 }
                ranges.append(index..<end)
                index = end
            } else {
                index += 1
            }
        }
        return ranges
    }

    @Test func damagedSpecsAreRefusedWithWordsOrReadExactly() throws {
        // Small documents, so that hundreds of cases take seconds: the README's example (pretty-printed, two
        // groups, a `set`), every refusal fixture, and the smallest trajectory.
        let example = TestPaths.packageRoot.appendingPathComponent("Docs/examples/seed-example.json")
        let bases = [("seed-example.json", Array(try Data(contentsOf: example)))]
            + (TorchFixture.refusals([.sgd]) + TorchFixture.trajectories([.sgd]).filter { $0.file == "skip-missing-grads.json" })
            .map { ($0.file, Array($0.spec)) }
        #expect(bases.count >= 10)
        var random = SeededGenerator(seed: 2024)
        var (refused, read, replayed, tried) = (0, 0, 0, 0)
        let clock = ContinuousClock(), start = clock.now
        // Seeded, and bounded: 420 cases or 20 seconds, whichever comes first.
        while tried < 420, clock.now - start < .seconds(20) {
            let mutation = Mutation.allCases[tried % Mutation.allCases.count]
            // Half the cases damage the two specs that replay, half the refusal fixtures.
            let pass = tried / Mutation.allCases.count
            let base = pass % 2 == 0 ? bases[[0, bases.count - 1][pass / 2 % 2]] : bases[1 + pass / 2 % (bases.count - 2)]
            tried += 1
            guard let damaged = Self.mutate(base.1, mutation, &random) else { continue }
            let label = "case \(tried) (\(mutation) of \(base.0))"
            let spec: ReplaySpec
            do {
                spec = try ReplaySpec(json: Data(damaged))
            } catch {
                refused += 1
                let message = "\(error)"
                #expect(["line ", "spec", "parameter \""].contains { message.contains($0) }, "\(label): \(message)")
                #expect(!message.contains("NSCocoaErrorDomain") && !message.contains("could not be completed"), "\(label)")
                if mutation == .duplicateKey { #expect(message.contains("appears twice"), "\(label): \(message)") }
                continue
            }
            read += 1
            #expect(mutation != .duplicateKey, "\(label): a repeated key was accepted")
            try Self.expectReadAsJSONDecoderReads(spec, Data(damaged), label)
            do {
                _ = try spec.run()
                replayed += 1
            } catch {
                refused += 1
                #expect(!"\(error)".isEmpty, "\(label)")
            }
        }
        #expect(tried >= 60, "only \(tried) cases in the time allowed")
        // Both outcomes must be well represented, or the generator has stopped testing one of them.
        #expect(refused > tried / 4 && read > tried / 10 && replayed > tried / 20,
                "refused \(refused), read \(read), replayed \(replayed) of \(tried)")
    }

    /// What the spec read must be what JSONDecoder reads in the same document.
    static func expectReadAsJSONDecoderReads(_ spec: ReplaySpec, _ document: Data, _ label: String) throws {
        // A fixture file holds the spec in its `spec` member; only that member is decoded (numbers elsewhere,
        // which the spec does not read, may be beyond JSONDecoder's range).
        struct Fixture: Decodable { let spec: ReferenceJSON? }
        let reference: ReferenceJSON
        do {
            if case .object? = try JSONDecoder().decode(Fixture.self, from: document).spec {
                reference = try JSONDecoder().decode(Fixture.self, from: document).spec!
            } else {
                reference = try JSONDecoder().decode(ReferenceJSON.self, from: document)
            }
        } catch {
            Issue.record("\(label): accepted, but JSONDecoder refuses it: \(error)")
            return
        }
        let round: (Double) -> Double = reference["dtype"]?.string == "float64" ? { $0 } : { Double(Float($0)) }
        func tensors(_ value: ReferenceJSON?) -> [String: [UInt64]] {
            (value?.object ?? [:]).mapValues { $0.array.map { round($0.number ?? .nan).bitPattern } }
        }
        #expect(spec.parameters.mapValues { $0.doubles.map(\.bitPattern) } == tensors(reference["params"]), "\(label)")
        #expect(spec.rules == reference["rules"]?.array.compactMap(\.string), "\(label)")
        #expect(spec.defaults == (reference["defaults"]?.object ?? [:]).mapValues { $0.number ?? .nan }, "\(label)")
        #expect(spec.groups.map(\.parameters) == reference["groups"]?.array.map { ($0["params"]?.array ?? []).compactMap(\.string) },
                "\(label)")
        let steps = reference["steps"]?.array ?? []
        #expect(spec.steps.count == steps.count, "\(label)")
        for (step, expected) in zip(spec.steps, steps) {
            guard case .inline(let gradients) = step.gradients else { Issue.record("\(label): grads not inline"); continue }
            #expect(gradients.mapValues { $0.doubles.map(\.bitPattern) } == tensors(expected["grads"]), "\(label)")
        }
    }

    @Test func damagedSpecsOnTheCommandLineExitWithStatusOneAndWords() throws {
        let base = Array(TorchFixture.trajectories([.sgd]).first { $0.file == "seed-example.json" }!.spec)
        var random = SeededGenerator(seed: 7)
        for index in 0..<12 {
            let mutation = Mutation.allCases[index % Mutation.allCases.count]
            guard let damaged = Self.mutate(base, mutation, &random) else { continue }
            let output = try run(TestPaths.regula, ["replay", "-"], standardInput: String(decoding: damaged, as: UTF8.self))
            #expect(output.status == 0 || output.status == 1, "case \(index) (\(mutation)): status \(output.status)")
            if output.status == 0 {
                #expect((try? JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8))) != nil)
            } else {
                #expect(output.standardOutput.isEmpty)
                #expect(output.standardError.hasPrefix("error: "), "\(output.standardError)")
            }
        }
    }
}
