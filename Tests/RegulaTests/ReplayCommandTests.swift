import Foundation
import Regula
import RegulaTestSupport
import Testing

/// `regula replay` and the files it is given: every problem is put in words that name the file, with
/// status 1 and nothing on standard output; never Foundation's error text.
@Suite struct ReplayCommandTests {
    static let valid = #"{"rules": ["sgd"], "defaults": {"lr": 0.5}, "groups": [{"params": ["w"]}], "params": {"w": [1.0]}, "#
        + #""steps": [{"grads": {"w": [1.0]}}]}"#

    /// Runs `regula replay` on `path` and checks that it fails cleanly with `words`.
    func expectRefusal(_ arguments: [String], standardInput: String? = nil, _ words: [String]) throws {
        let output = try run(TestPaths.regula, ["replay"] + arguments, standardInput: standardInput)
        #expect(output.status == 1)
        #expect(output.standardOutput.isEmpty)
        #expect(output.standardError.hasPrefix("error: "), "\(output.standardError)")
        for word in words { #expect(output.standardError.contains(word), "\(output.standardError)") }
        for foundation in ["NSCocoaErrorDomain", "could not be completed", "Error Domain"] {
            #expect(!output.standardError.contains(foundation), "\(output.standardError)")
        }
    }

    @Test func aMissingFileIsNamed() throws {
        let folder = try TemporaryDirectory()
        let path = folder.url.appendingPathComponent("absent.json").path
        try expectRefusal([path], ["cannot read \(path): no such file"])
    }

    @Test func aFolderIsNamed() throws {
        let folder = try TemporaryDirectory()
        try expectRefusal([folder.path], ["cannot read \(folder.path): it is a folder, not a file"])
    }

    @Test func aPathThroughAFileIsNamed() throws {
        let folder = try TemporaryDirectory()
        let file = try folder.write(Self.valid, to: "spec.json")
        try expectRefusal([file.path + "/inner.json"], ["cannot read \(file.path)/inner.json: a part of the path is not a folder"])
    }

    @Test(.enabled(if: getuid() != 0, "root may read any file, so a file cannot be made unreadable"))
    func anUnreadableFileIsNamed() throws {
        let folder = try TemporaryDirectory()
        let file = try folder.write(Self.valid, to: "spec.json")
        try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: file.path)
        try expectRefusal([file.path], ["cannot read \(file.path): permission denied"])
    }

    @Test func aFileThatIsNotJSONIsNamedWithLineAndColumn() throws {
        let folder = try TemporaryDirectory()
        let file = try folder.write("rules = [\"sgd\"]\n", to: "spec.toml")
        try expectRefusal([file.path], ["\(file.path), line 1, column 1: expected a value, found \"r\""])
    }

    @Test func aTruncatedFileIsNamed() throws {
        let folder = try TemporaryDirectory()
        let file = try folder.write(String(Self.valid.prefix(70)), to: "spec.json")
        try expectRefusal([file.path], ["\(file.path), line 1, column 71", "truncated"])
    }

    @Test func anEmptyFileIsNamed() throws {
        let folder = try TemporaryDirectory()
        let file = try folder.write("", to: "spec.json")
        try expectRefusal([file.path], ["\(file.path), line 1, column 1: the document is empty"])
    }

    @Test func standardInputIsNamedInSyntaxErrors() throws {
        try expectRefusal(["-"], standardInput: "{\"rules\": [\"sgd\"],,}", ["standard input, line 1, column 19: expected a key in double quotes, found \",\""])
    }

    @Test func standardInputAndAFileReplayAlike() throws {
        let folder = try TemporaryDirectory()
        let file = try folder.write(Self.valid, to: "spec.json")
        let fromFile = try regula(["replay", file.path])
        let fromInput = try run(TestPaths.regula, ["replay", "-"], standardInput: Self.valid)
        #expect(fromFile.status == 0 && fromInput.status == 0, "\(fromFile.standardError)\(fromInput.standardError)")
        #expect(fromFile.standardOutput == fromInput.standardOutput)
        #expect(fromFile.standardOutput.contains("\"w\": [0.5]"))
    }

    @Test(arguments: ["float32", "float64"])
    func outputWritesTheResultAsSafetensorsBitForBit(dtype: String) throws {
        let fixture = TorchFixture.trajectories([.sgd]).first { $0.file == "seed-example.json" }!
        let spec = String(decoding: fixture.spec, as: UTF8.self).replacingOccurrences(of: "\"dtype\": \"float32\"", with: "\"dtype\": \"\(dtype)\"")
        let folder = try TemporaryDirectory()
        let specFile = try folder.write(spec, to: "spec.json")
        let outputFile = folder.url.appendingPathComponent("result.safetensors")
        let written = try regula(["replay", specFile.path, "--output", outputFile.path])
        #expect(written.status == 0, "\(written.standardError)")
        #expect(written.standardOutput.isEmpty)
        let printed = try regula(["replay", specFile.path])
        struct Result: Decodable { let params: [String: [Double]]; let state: [String: [String: [Double]]] }
        let json = try JSONDecoder().decode(Result.self, from: Data(printed.standardOutput.utf8))
        var expected: [String: [Double]] = [:]
        for (name, values) in json.params { expected["param/\(name)"] = values }
        for (name, slots) in json.state { for (slot, values) in slots { expected["state/\(name)/\(slot)"] = values } }
        let file = try SafeTensorsFile(reading: Data(contentsOf: outputFile))
        #expect(file.tensors.mapValues(\.dtype) == expected.mapValues { _ in dtype == "float32" ? "F32" : "F64" })
        #expect(file.tensors.mapValues { $0.doubles.map(\.bitPattern) } == expected.mapValues { $0.map(\.bitPattern) })
    }

    /// `state_shapes` gives every slot of `state` the shape torch's state tensor has: Adafactor's factored
    /// `row_var` (…, m, 1) and `col_var` (…, 1, n) of a matrix and a 3-D tensor and its `variance` of a vector,
    /// ASGD's scalar `eta` and `mu` as `[]`; and each slot holds as many numbers as its shape says.
    @Test(arguments: ["adafactor-float64.json", "asgd-float64.json"])
    func theOutputGivesEachStateSlotItsShape(file: String) throws {
        let fixture = TorchFixture.trajectories([.matrix]).first { $0.file == file }!
        let printed = try regula(["replay", fixture.path])
        #expect(printed.status == 0, "\(printed.standardError)")
        struct Result: Decodable { let state: [String: [String: [Double]]]; let state_shapes: [String: [String: [Int]]] }
        let json = try JSONDecoder().decode(Result.self, from: Data(printed.standardOutput.utf8))
        #expect(json.state_shapes == fixture.expectedStateShapes)
        #expect(json.state.mapValues { $0.mapValues(\.count) } == json.state_shapes.mapValues { $0.mapValues { $0.reduce(1, *) } })
    }

    @Test func anOutputThatCannotBeWrittenIsNamed() throws {
        let folder = try TemporaryDirectory()
        let specFile = try folder.write(Self.valid, to: "spec.json")
        let target = folder.url.appendingPathComponent("missing/result.safetensors").path
        try expectRefusal([specFile.path, "--output", target], ["cannot write the result to \(target)"])
    }

    @Test func aSafetensorsFileGivenAsTheSpecIsExplained() throws {
        let folder = try TemporaryDirectory()
        let file = folder.url.appendingPathComponent("params.safetensors")
        try SafeTensorsFile(["w": .float32([1, 2])]).write(to: file)
        try expectRefusal([file.path], ["\(file.path) is a safetensors file, not a replay spec", "Docs/REPLAY.md"])
    }

    @Test func aStepWhoseSetMakesAnOptionInvalidIsNamed() throws {
        let spec = #"{"rules": ["sgd"], "defaults": {"lr": 0.1}, "groups": [{"params": ["w"]}], "params": {"w": [1]}, "#
            + #""steps": [{"grads": {"w": [1]}}, {"grads": {"w": [1]}, "set": [{"group": 0, "lr": -1}]}]}"#
        try expectRefusal(["-"], standardInput: spec, ["spec.steps[1]: ", "\"lr\" = -1 in group 0", "allowed: ≥ 0"])
    }

    @Test func finalValuesThatOverflowArePrintedAsNullWithAWarning() throws {
        let spec = #"{"rules": ["sgd"], "defaults": {"lr": 10}, "groups": [{"params": ["w"]}], "params": {"w": [3e38, 1]}, "#
            + #""steps": [{"grads": {"w": [-1e38, 0]}}]}"#
        let output = try run(TestPaths.regula, ["replay", "-"], standardInput: spec)
        #expect(output.status == 0)
        #expect(output.standardOutput.contains("\"w\": [null, 1.0]"), "\(output.standardOutput)")
        #expect(output.standardError.contains("warning: 1 final values are infinite or NaN; they are printed as null"))
    }
}
