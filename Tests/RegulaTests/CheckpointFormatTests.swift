import Foundation
@testable import Regula
import RegulaTestSupport
import Testing

/// The pieces under the checkpoint format: the CRC-32C checksum and the strict JSON reader, which keeps member
/// order and number text (and packs arrays of numbers for replay specs).
@Suite struct CheckpointFormatTests {
    /// The check value of the CRC catalogue and the test vectors of RFC 3720 (iSCSI), appendix B.4.
    static let publishedChecksums: [([UInt8], UInt32)] = [
        (Array("123456789".utf8), 0xE306_9283),
        ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        ((0..<32).map { UInt8($0) }, 0x46DD_794E),
        ((0..<32).reversed().map { UInt8($0) }, 0x113F_DB5C),
        ([], 0),
    ]

    @Test(arguments: publishedChecksums)
    func crc32cMatchesPublishedValues(bytes: [UInt8], checksum: UInt32) {
        #expect(CRC32C.checksum(bytes) == checksum)
        // The same from every alignment: the eight-byte loop reads unaligned words.
        for start in 1..<8 {
            let padded = [UInt8](repeating: 0xAB, count: start) + bytes
            #expect(padded.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start...])) } == checksum)
        }
    }

    @Test func crc32cDetectsEveryFlipOfUpToThreeBitsInAShortMessage() {
        var random = SeededGenerator(seed: 7)
        let message = (0..<200).map { _ in UInt8.random(in: 0...255, using: &random) }
        let original = CRC32C.checksum(message)
        for _ in 0..<2000 {
            var damaged = message
            var positions = Set<Int>()
            while positions.count < Int.random(in: 1...3, using: &random) { positions.insert(Int.random(in: 0..<1600, using: &random)) }
            for bit in positions { damaged[bit / 8] ^= 1 << (bit % 8) }
            #expect(CRC32C.checksum(damaged) != original)
        }
    }

    func parse(_ text: String, packing: Bool = false) throws(JSONSyntaxError) -> JSONValue {
        try JSONValue(parsing: Array(text.utf8), packingNumberArrays: packing)
    }

    @Test func jsonKeepsMemberOrderAndNumberText() throws {
        let value = try parse(#" {"b": 1, "a": [2.50, -0, 1e-05], "c": {"z": null, "y": true}} "#)
        #expect(value == .object([
            "b": .number("1"), "a": .array([.number("2.50"), .number("-0"), .number("1e-05")]),
            "c": .object(["z": .null, "y": .bool(true)]),
        ]))
        #expect(String(decoding: value.serialized, as: UTF8.self) == #"{"b":1,"a":[2.50,-0,1e-05],"c":{"z":null,"y":true}}"#)
    }

    @Test func jsonRefusesARepeatedKeyNamingItAndWhereItIs() {
        #expect {
            try parse(#"{"a": 1, "b": {"a": 2, "a": 3}}"#)
        } throws: { error in
            "\(error)".hasPrefix(#"line 1, column 24, at b.a: key "a" appears twice in one object"#)
        }
        #expect(throws: JSONSyntaxError.self) { try parse(#"{"x": 1, "\u0078": 2}"#) }   // the same key, escaped
    }

    @Test func jsonPointsAtAnErrorByLineColumnAndKeyPath() {
        for packing in [false, true] {
            #expect {
                try parse("{\n  \"groups\": [{\"lr\": 1},\n    {\"lr\": 01}]}", packing: packing)
            } throws: { error in
                "\(error)" == "line 3, column 12, at groups[1].lr: a number may not start with 0 followed by more digits (01)"
            }
            #expect {
                try parse(#"{"w": [1, 2, -Infinity]}"#, packing: packing)
            } throws: { error in
                "\(error)".hasPrefix("line 1, column 15, at w[2]: Infinity is not a JSON number")
            }
        }
    }

    @Test func jsonPacksArraysOfNumbersOnlyWhenAskedTo() throws {
        let text = #"{"w": [0.1, -2, 1e400], "v": [1, "a"], "e": []}"#
        #expect(try parse(text) == .object([
            "w": .array([.number("0.1"), .number("-2"), .number("1e400")]), "v": .array([.number("1"), .string("a")]),
            "e": .array([]),
        ]))
        #expect(try parse(text, packing: true) == .object([
            "w": .numbers([0.1, -2, .infinity]), "v": .array([.number("1"), .string("a")]), "e": .numbers([]),
        ]))
    }

    @Test(arguments: ["01", "1.", ".5", "+1", "1e", "1e+", "-", "--1", "0x10", "1.5.2", "NaN", "Infinity", "1 2", "[1,]",
                      "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "'a'", "\"\\x\"", "\"\\u12\"", "\"\u{1}\"", "tru", "nul", "", "[", "{"])
    func jsonRefusesWhatRFC8259Refuses(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try parse(text) }
        #expect(throws: JSONSyntaxError.self) { try parse(text, packing: true) }
    }

    @Test func jsonDecodesEscapesAndRefusesBrokenText() throws {
        #expect(try parse(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#) == .string("a\"b\\c/d\n\té😀"))
        #expect(throws: JSONSyntaxError.self) { try parse(#""\ud83d""#) }          // a lone surrogate
        #expect(throws: JSONSyntaxError.self) { try parse(#""\ude00\ud83d""#) }
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: [0x22, 0xC3, 0x28, 0x22]) }   // not UTF-8
    }

    @Test func jsonRefusesNestingDeeperThanItsLimit() throws {
        let depth = JSONReader.maximumDepth
        _ = try parse(String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
        #expect(throws: JSONSyntaxError.self) {
            try parse(String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1))
        }
        #expect(throws: JSONSyntaxError.self) { try parse(String(repeating: "[", count: 100_000)) }
    }

    @Test func jsonWritesStringsAsPythonsJsonDumpsDoes() {
        // json.dumps("q\"b\\s\n\r\t\b\f\x01\x1fé/\x7f", ensure_ascii=False)
        let text = JSONValue.string("q\"b\\s\n\r\t\u{8}\u{C}\u{1}\u{1F}é/\u{7F}").serialized
        #expect(String(decoding: text, as: UTF8.self) == #""q\"b\\s\n\r\t\b\f\u0001\u001fé/"# + "\u{7F}\"")
    }
}
