import Foundation

/// A damaged copy of a checkpoint and what was done to it.
public struct Mutant: Sendable, CustomStringConvertible {
    /// What was changed, to name the case when it fails.
    public let label: String
    /// The damaged file.
    public let bytes: Data
    public var description: String { label }
}

/// The ways a checkpoint file is damaged in the mutation tests: those an earlier fuzzing run of the loader
/// found (issue 10), each drawn from a seeded generator so every run makes the same files.
public enum CheckpointMutation: String, CaseIterable, Sendable {
    /// A number in the header (in the safetensors entries or the metadata's JSON) replaced by a huge,
    /// negative, fractional, exponent-form or nearby value; the length field follows the header's new length.
    case headerNumbers
    /// Only the numbers of the tensors' shapes and byte ranges replaced, as `headerNumbers` does.
    case shapeAndOffsetNumbers
    /// One to three bits flipped in the header.
    case headerBits
    /// One to three bits flipped in the tensor data.
    case dataBits
    /// The header-length field changed (nearby values, huge ones, single flipped bits).
    case headerLength
    /// The file cut short.
    case truncation
    /// Bytes appended after the last tensor.
    case trailingBytes
    /// A tensor entry, a field, a metadata entry or a key of the metadata's JSON given twice.
    case duplicateKeys
    /// Byte ranges that overlap, alias another tensor, are fractional or negative, run backwards, leave gaps
    /// or run past the end.
    case offsets
    /// Shapes with negative dimensions, including two that multiply to the right size.
    case negativeDimensions
    /// Step counts, scheduler positions, skipped steps, sizes and versions that are negative, fractional,
    /// beyond 2^53, beyond 64 bits, in exponent form, strings or null.
    case absurdSteps

    /// How many mutants a generator draws when it draws at random.
    static let randomCases = 60

    /// The damaged copies of `file` this mutation makes, the same for the same `seed`.
    public func mutants(of file: Data, seed: UInt64) -> [Mutant] {
        var random = SeededGenerator(seed: seed)
        let parts = SafeTensorsParts(file)
        switch self {
        case .headerNumbers: return numberMutants(parts, within: nil, &random)
        case .shapeAndOffsetNumbers: return numberMutants(parts, within: #""(shape|data_offsets)":\[[^\]]*\]"#, &random)
        case .headerBits:
            return (0..<Self.randomCases).map { _ in flipping(file, bitsIn: 8..<(8 + parts.header.utf8.count), &random) }
        case .dataBits:
            return (0..<Self.randomCases).map { _ in flipping(file, bitsIn: (file.count - parts.data.count)..<file.count, &random) }
        case .headerLength:
            let length = UInt64(parts.header.utf8.count)
            var fields: [UInt64] = [0, 1, 7, length - 8, length - 2, length - 1, length + 1, length + 2, length + 8,
                                    length + UInt64(parts.data.count), length + UInt64(parts.data.count) + 1,
                                    100_000_001, 1 << 32, 1 << 62, 1 << 63, .max]
            fields += (0..<64).map { length ^ (1 << UInt64($0)) }
            return fields.map { Mutant(label: "header length \(length) → \($0)", bytes: parts.assembled(lengthField: $0)) }
        case .truncation:
            return [0, 4, 8, 9, file.count - parts.data.count - 1, file.count - parts.data.count, file.count - 1]
                .map { Mutant(label: "cut to \($0) bytes", bytes: file.prefix($0)) }
                + (0..<Self.randomCases / 2).map { _ in
                    let size = Int.random(in: 0..<file.count, using: &random)
                    return Mutant(label: "cut to \(size) bytes", bytes: file.prefix(size))
                }
        case .trailingBytes:
            return [Data([0]), Data(repeating: 0x20, count: 8), Data(repeating: 0, count: 8), Data("{}".utf8)]
                .map { Mutant(label: "\($0.count) bytes appended", bytes: file + $0) }
                + (0..<Self.randomCases / 4).map { _ in
                    let extra = Data((0..<Int.random(in: 1...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
                    return Mutant(label: "\(extra.count) random bytes appended", bytes: file + extra)
                }
        case .duplicateKeys: return duplicateKeyMutants(parts)
        case .offsets: return offsetMutants(parts)
        case .negativeDimensions:
            return [#"[-$1]"#, #"[$1,-1]"#, #"[-1,-$1]"#, #"[-0,$1]"#, #"[-9223372036854775808]"#]
                .flatMap { shape in [#""shape":\[(24)\]"#, #""shape":\[(3)\]"#].compactMap { pattern in
                    parts.replacing(pattern, with: #""shape":"# + shape).map { Mutant(label: "shape \(pattern) → \(shape)", bytes: $0.assembled()) }
                } }
        case .absurdSteps:
            let values = ["4611686018427387904", "9007199254740993", "18446744073709551616", "99999999999999999999",
                          "-1", "-3", "1.5", "3.0", "3e0", "1e999", #"\\\"3\\\""#, "null", "true", "[3]"]
            return [#"\\"step\\":3"#, #"\\"steps\\":3"#, #"\\"skippedSteps\\":0"#, #"\\"count\\":24"#, #"\\"version\\":1"#,
                    #"\\"badSteps\\":0"#, #"\\"cooldownLeft\\":0"#].flatMap { field in
                values.compactMap { value in
                    let key = field.components(separatedBy: ":")[0]
                    return parts.replacing(field, with: key + ":" + value).map { Mutant(label: "\(field) → \(value)", bytes: $0.assembled()) }
                }
            }
        }
    }

    /// Replaces one number token at a time (all of them, or only those inside matches of `region`).
    private func numberMutants(_ parts: SafeTensorsParts, within region: String?, _ random: inout SeededGenerator) -> [Mutant] {
        let header = parts.header as NSString
        let numbers = try! NSRegularExpression(pattern: #"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?"#)
        var candidates = numbers.matches(in: parts.header, range: NSRange(location: 0, length: header.length)).map(\.range)
        if let region {
            let regions = try! NSRegularExpression(pattern: region).matches(in: parts.header, range: NSRange(location: 0, length: header.length))
            candidates = candidates.filter { number in regions.contains { NSIntersectionRange($0.range, number).length == number.length } }
        }
        guard !candidates.isEmpty else { return [] }
        return (0..<Self.randomCases).compactMap { _ in
            let range = candidates.randomElement(using: &random)!
            let original = header.substring(with: range)
            let nearby = (Int(original) ?? 0) + [-8, -1, 1, 8].randomElement(using: &random)!
            let replacement = ["99999999999999999999", "9223372036854775807", "18446744073709551616", "4611686018427387904",
                               "-1", "-9223372036854775808", "0.5", "1.5", original + ".0", original + "e0", "1e999", "0",
                               String(nearby)].randomElement(using: &random)!
            guard replacement != original else { return nil }
            var copy = parts
            copy.header = header.replacingCharacters(in: range, with: replacement)
            return Mutant(label: "number \(original) at \(range.location) → \(replacement)", bytes: copy.assembled())
        }
    }

    private func flipping(_ file: Data, bitsIn region: Range<Int>, _ random: inout SeededGenerator) -> Mutant {
        var bytes = [UInt8](file)
        var flipped: [String] = []
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            let byte = Int.random(in: region, using: &random), bit = Int.random(in: 0..<8, using: &random)
            bytes[byte] ^= 1 << bit
            flipped.append("\(byte).\(bit)")
        }
        return Mutant(label: "bits flipped at \(flipped.joined(separator: ", "))", bytes: Data(bytes))
    }

    private func duplicateKeyMutants(_ parts: SafeTensorsParts) -> [Mutant] {
        let entry = #""state(\\?/)w(\\?/)momentum_buffer":\{[^}]*\}"#
        let cases: [(String, String)] = [
            (entry, "$0,$0"),                                                          // the same entry twice
            (entry, #"$0,"state$1w$2momentum_buffer":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}"#),
            (#""dtype":"F32""#, #""dtype":"F32","dtype":"F32""#),                        // a field twice
            (#""data_offsets":\[[0-9]+,[0-9]+\]"#, "$0,$0"),
            (#""format":"regula-checkpoint[^"]*""#, "$0,$0"),                          // a metadata entry twice
            (#"^\{"#, #"{"__metadata__":{},"#),                                       // the metadata twice
            (#""regula.checksums":"[^"]*(\\"[^"]*)*""#, "$0,$0"),
            (#"\\"skippedSteps\\":[0-9]+"#, "$0,$0"),                                  // keys of the metadata's JSON
            (#"\\"step\\":[0-9]+"#, "$0,$0"),
            (#"\\"lr\\":[0-9.e-]+"#, #"$0,\\"lr\\":0.5"#),
            (#"\\"rules\\":"#, #"\\"rules\\":[],\\"rules\\":"#),
        ]
        return cases.compactMap { pattern, template in
            parts.replacing(pattern, with: template).map { Mutant(label: "\(pattern) → \(template)", bytes: $0.assembled()) }
        }
    }

    /// Byte ranges rewritten: every `data_offsets` of the header, in header order, is read, changed and
    /// written back.
    private func offsetMutants(_ parts: SafeTensorsParts) -> [Mutant] {
        let pattern = try! NSRegularExpression(pattern: #""data_offsets":\[([0-9]+),([0-9]+)\]"#)
        let header = parts.header as NSString
        let matches = pattern.matches(in: parts.header, range: NSRange(location: 0, length: header.length))
        let ranges = matches.map { (Int(header.substring(with: $0.range(at: 1)))!, Int(header.substring(with: $0.range(at: 2)))!) }
        func rewritten(_ label: String, data: Data? = nil, _ change: (Int, (Int, Int)) -> (String, String)?) -> Mutant? {
            var text = parts.header as NSString, changed = false
            for (index, match) in matches.enumerated().reversed() {
                guard let (begin, end) = change(index, ranges[index]) else { continue }
                text = text.replacingCharacters(in: match.range, with: #""data_offsets":["# + begin + "," + end + "]") as NSString
                changed = true
            }
            guard changed else { return nil }
            var copy = parts
            copy.header = text as String
            if let data { copy.data = data }
            return Mutant(label: label, bytes: copy.assembled())
        }
        let byStart = ranges.indices.sorted { ranges[$0].0 < ranges[$1].0 }
        let (last, first) = (byStart.last!, byStart.first!)
        // Two tensors of the same size, to alias one onto the other.
        let sizes = ranges.map { $0.1 - $0.0 }
        let twin = ranges.indices.first { index in ranges.indices.contains { $0 != index && sizes[$0] == sizes[index] && sizes[index] > 0 } }!
        let original = ranges.indices.first { $0 != twin && sizes[$0] == sizes[twin] }!
        var mutants: [Mutant?] = []
        for index in ranges.indices where ranges[index].0 > 0 {
            mutants.append(rewritten("tensor \(index) moved 4 bytes back (overlap)") { $0 == index ? (String($1.0 - 4), String($1.1 - 4)) : nil })
            mutants.append(rewritten("tensor \(index) starts at a fraction") { $0 == index ? ("\($1.0).5", String($1.1)) : nil })
            mutants.append(rewritten("tensor \(index) starts at n.0") { $0 == index ? ("\($1.0).0", String($1.1)) : nil })
            mutants.append(rewritten("tensor \(index) starts at ne0") { $0 == index ? ("\($1.0)e0", String($1.1)) : nil })
            mutants.append(rewritten("tensor \(index) starts at a negative offset") { $0 == index ? ("-\($1.0)", String($1.1)) : nil })
        }
        mutants.append(rewritten("tensor \(twin) aliases tensor \(original)") { index, _ in
            index == twin ? (String(ranges[original].0), String(ranges[original].1)) : nil
        })
        // Aliased with its own bytes cut out, so the ranges still end exactly at the end of the data.
        var shorter = parts.data
        shorter.removeSubrange(ranges[twin].0..<ranges[twin].1)
        mutants.append(rewritten("tensor \(twin) aliases tensor \(original), its bytes removed", data: shorter) { index, range in
            if index == twin { return (String(ranges[original].0), String(ranges[original].1)) }
            return range.0 >= ranges[twin].1 ? (String(range.0 - sizes[twin]), String(range.1 - sizes[twin])) : nil
        })
        mutants.append(rewritten("first tensor runs backwards") { $0 == first ? (String($1.1), String($1.0)) : nil })
        mutants.append(rewritten("last tensor runs past the end") { $0 == last ? (String($1.0), String($1.1 + 8)) : nil })
        mutants.append(rewritten("last tensor moved 8 bytes on, leaving a gap", data: parts.data + Data(count: 8)) {
            $0 == last ? (String($1.0 + 8), String($1.1 + 8)) : nil
        })
        mutants.append(rewritten("every tensor moved 8 bytes on", data: Data(count: 8) + parts.data) { (String($1.0 + 8), String($1.1 + 8)) })
        mutants.append(rewritten("huge offsets") { index, _ in index == last ? ("9223372036854775800", "9223372036854775807") : nil })
        mutants.append(rewritten("offsets beyond 64 bits") { $0 == last ? (String($1.0), "18446744073709551656") : nil })
        return mutants.compactMap { $0 }
    }
}
