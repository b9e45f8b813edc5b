import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Specs whose parameters and gradients are safetensors files: written here byte by byte (so the path is
/// always tested), and by Python's safetensors when it can be imported.
@Suite struct SafeTensorsReplayTests {
    /// A fixture's spec as JSONDecoder reads it (exactly), to be written out again with files.
    struct FixtureSpec: Decodable {
        struct Group: Decodable {
            var params: [String]
            var options: [String: Double]
            init(from decoder: Decoder) throws {
                let container = try decoder.container(keyedBy: Key.self)
                params = try container.decode([String].self, forKey: Key("params"))
                options = [:]
                for key in container.allKeys where key.stringValue != "params" { options[key.stringValue] = try container.decode(Double.self, forKey: key) }
            }
        }
        struct Step: Decodable {
            let grads: [String: [Double]]?
            let set: [[String: Double]]?
        }
        let dtype: String?
        let rules: [String]
        let defaults: [String: Double]?
        let groups: [Group]
        let params: [String: [Double]]
        let steps: [Step]
    }

    /// Any key of a group object.
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { return nil }
    }

    /// A tensor of `values` in the spec's dtype; every second one of even length is given two dimensions,
    /// so flattening is tested too.
    static func tensor(_ values: [Double], dtype: String?, twoDimensional: Bool) -> SafeTensorsFile.Tensor {
        let shape = twoDimensional && values.count % 2 == 0 && values.count > 2 ? [2, values.count / 2] : nil
        return dtype == "float64" ? .float64(values, shape: shape) : .float32(values.map(Float.init), shape: shape)
    }

    /// `{"a": 1.5, …}` with numbers that read back exactly.
    static func json(_ numbers: [String: Double]) -> String {
        "{" + numbers.keys.sorted().map { "\"\($0)\": \(numbers[$0]!)" }.joined(separator: ", ") + "}"
    }

    /// Writes `fixture` into `folder` as a manifest (`spec.json`), `params.safetensors` and one
    /// `grads/<step>.safetensors` per step (absent parameters absent from the file), and returns the manifest.
    static func writeWithFiles(_ fixture: TorchFixture, into folder: URL, dtypeInManifest: Bool = true) throws -> URL {
        struct File: Decodable { let spec: FixtureSpec }
        let spec = try JSONDecoder().decode(File.self, from: fixture.spec).spec
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("grads"), withIntermediateDirectories: true)
        let names = spec.params.keys.sorted()
        try SafeTensorsFile(Dictionary(uniqueKeysWithValues: names.enumerated().map { index, name in
            (name, tensor(spec.params[name]!, dtype: spec.dtype, twoDimensional: index % 2 == 0))
        })).write(to: folder.appendingPathComponent("params.safetensors"))
        var steps: [String] = []
        for (index, step) in spec.steps.enumerated() {
            let grads = step.grads ?? [:]
            try SafeTensorsFile(Dictionary(uniqueKeysWithValues: grads.keys.sorted().enumerated().map { position, name in
                (name, tensor(grads[name]!, dtype: spec.dtype, twoDimensional: position % 2 == 1))
            })).write(to: folder.appendingPathComponent("grads/\(index).safetensors"))
            let set = (step.set ?? []).map { json($0) }.joined(separator: ", ")
            steps.append("{\"grads\": \"grads/\(index).safetensors\", \"set\": [\(set)]}")
        }
        let groups = spec.groups.map { group in
            "{\"params\": [\(group.params.map { "\"\($0)\"" }.joined(separator: ", "))]"
                + group.options.keys.sorted().map { ", \"\($0)\": \(group.options[$0]!)" }.joined() + "}"
        }
        let manifest = "{" + (dtypeInManifest ? "\"dtype\": \"\(spec.dtype ?? "float32")\", " : "")
            + "\"rules\": [\(spec.rules.map { "\"\($0)\"" }.joined(separator: ", "))], \"defaults\": \(json(spec.defaults ?? [:])), "
            + "\"groups\": [\(groups.joined(separator: ", "))], \"params\": \"params.safetensors\", "
            + "\"steps\": [\(steps.joined(separator: ",\n"))]}"
        let url = folder.appendingPathComponent("spec.json")
        try manifest.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test(arguments: TorchFixture.trajectories([.sgd]))
    func aSpecOfSafetensorsFilesReplaysExactlyAsItsJSONForm(_ fixture: TorchFixture) throws {
        let folder = try TemporaryDirectory()
        let manifest = try Self.writeWithFiles(fixture, into: folder.url)
        let result = try ReplaySpec(contentsOf: manifest).run()
        #expect(fixture.disagreements(parameters: result.parameters, state: result.state) == [])
        let fromJSON = try ReplaySpec(json: fixture.spec).run()
        #expect(result.parameters.mapValues { $0.map(\.bitPattern) } == fromJSON.parameters.mapValues { $0.map(\.bitPattern) })
        #expect(result.state.mapValues { $0.mapValues { $0.map(\.bitPattern) } }
                == fromJSON.state.mapValues { $0.mapValues { $0.map(\.bitPattern) } })
    }

    @Test func theCommandLineResolvesFilesAgainstTheSpecsFolderOrTheCurrentOneForStandardInput() throws {
        let fixture = TorchFixture.trajectories([.sgd]).first { $0.file == "seed-adjust-lr.json" }!
        let folder = try TemporaryDirectory()
        let manifest = try Self.writeWithFiles(fixture, into: folder.url)
        let elsewhere = try TemporaryDirectory()
        let byPath = try run(TestPaths.regula, ["replay", manifest.path], workingDirectory: elsewhere.url)
        let byInput = try run(TestPaths.regula, ["replay", "-"], standardInput: try String(contentsOf: manifest, encoding: .utf8),
                              workingDirectory: folder.url)
        for output in [byPath, byInput] {
            #expect(output.status == 0, "\(output.standardError)")
            let json = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any] ?? [:]
            let parameters = json["params"] as? [String: [Double]] ?? [:]
            let state = json["state"] as? [String: [String: [Double]]] ?? [:]
            #expect(fixture.disagreements(parameters: parameters, state: state) == [])
        }
        // From elsewhere, standard input's relative paths name files that are not there.
        let lost = try run(TestPaths.regula, ["replay", "-"], standardInput: try String(contentsOf: manifest, encoding: .utf8),
                           workingDirectory: elsewhere.url)
        #expect(lost.status == 1)
        #expect(lost.standardError.contains("\(elsewhere.path)/params.safetensors: no such file"), "\(lost.standardError)")
    }

    @Test func theElementTypeComesFromTheParamsFileWhenTheSpecNamesNone() throws {
        let fixture = TorchFixture.trajectories([.sgd]).first { $0.dtype == "float64" }!
        let folder = try TemporaryDirectory()
        let spec = try ReplaySpec(contentsOf: try Self.writeWithFiles(fixture, into: folder.url, dtypeInManifest: false))
        #expect(spec.dtype == .float64)
        let result = try spec.run()
        #expect(fixture.disagreements(parameters: result.parameters, state: result.state) == [])
    }

    /// Files to write, a manifest, and the words the refusal must contain (`$DIR` stands for the folder).
    struct Refusal: CustomStringConvertible, Sendable {
        let name: String
        let files: @Sendable () -> [String: Data]
        let manifest: String
        let words: [String]
        var description: String { name }
    }

    static let w: [Float] = [1, 2, 3, 4]
    static let good: @Sendable () -> [String: Data] = {
        ["params.safetensors": SafeTensorsFile(["w": .float32(w)]).data,
         "g.safetensors": SafeTensorsFile(["w": .float32([0.5, 0.5, 0.5, 0.5], shape: [2, 2])]).data]
    }
    static func manifest(params: String = "\"params.safetensors\"", grads: String = "\"g.safetensors\"", dtype: String? = "float32",
                         groups: String = #"[{"params": ["w"]}]"#) -> String {
        "{" + (dtype.map { "\"dtype\": \"\($0)\", " } ?? "")
            + #""rules": ["sgd"], "defaults": {"lr": 0.1}, "groups": \#(groups), "params": \#(params), "steps": [{"grads": \#(grads)}]}"#
    }
    /// The good files with `extra` laid over them, made only when a test asks (so nothing built here outlives it).
    static func with(_ extra: @escaping @Sendable () -> [String: Data]) -> @Sendable () -> [String: Data] {
        { good().merging(extra()) { $1 } }
    }

    static let refusals: [Refusal] = [
        Refusal(name: "missing grads file", files: good, manifest: manifest(grads: "\"grads/7.safetensors\""),
                words: ["spec.steps[0].grads", "$DIR/grads/7.safetensors", "no such file"]),
        Refusal(name: "grads is a folder", files: with({ ["grads/.keep": Data()] }), manifest: manifest(grads: "\"grads\""),
                words: ["spec.steps[0].grads", "$DIR/grads", "a folder"]),
        Refusal(name: "missing params file", files: { [:] }, manifest: manifest(),
                words: ["spec.params", "$DIR/params.safetensors", "no such file"]),
        Refusal(name: "grads for another parameter", files: with({ ["g.safetensors": SafeTensorsFile(["v": .float32(w)]).data] }),
                manifest: manifest(), words: ["spec.steps[0].grads", "$DIR/g.safetensors", "parameter \"v\"", "does not define"]),
        Refusal(name: "grads of another length", files: with({ ["g.safetensors": SafeTensorsFile(["w": .float32([1, 2, 3])]).data] }),
                manifest: manifest(), words: ["$DIR/g.safetensors", "parameter \"w\" has 3 elements", "has 4"]),
        Refusal(name: "grads of another dtype", files: with({ ["g.safetensors": SafeTensorsFile(["w": .float64([1, 2, 3, 4])]).data] }),
                manifest: manifest(), words: ["$DIR/g.safetensors", "is F64", "float32", "must be F32"]),
        Refusal(name: "non-finite gradient", files: with({ ["g.safetensors": SafeTensorsFile(["w": .float32([1, .infinity, 3, 4])]).data] }),
                manifest: manifest(), words: ["$DIR/g.safetensors", "tensor \"w\": element 1 is inf", "finite numbers only"]),
        Refusal(name: "NaN parameter", files: with({ ["params.safetensors": SafeTensorsFile(["w": .float64([1, .nan, 3, 4])]).data] }),
                manifest: manifest(dtype: nil), words: ["spec.params", "tensor \"w\": element 1 is nan"]),
        Refusal(name: "BF16 parameter",
                files: with({ ["params.safetensors": SafeTensorsFile(["w": .init(dtype: "BF16", shape: [4], bytes: Data(count: 8))]).data] }),
                manifest: manifest(), words: ["spec.params", "$DIR/params.safetensors", "BF16", "allowed: F32, F64"]),
        Refusal(name: "truncated params file", files: with({ ["params.safetensors": SafeTensorsFile(["w": .float32(w)]).data.dropLast(3)] }),
                manifest: manifest(), words: ["spec.params", "$DIR/params.safetensors", "truncated"]),
        Refusal(name: "params file of text", files: with({ ["params.safetensors": Data("{\"w\": [1, 2, 3, 4]}".utf8)] }),
                manifest: manifest(), words: ["spec.params", "$DIR/params.safetensors", "not a safetensors file"]),
        Refusal(name: "mixed dtypes", files: with({ ["params.safetensors": SafeTensorsFile(["w": .float32(w), "x": .float64([1])]).data] }),
                manifest: manifest(dtype: nil, groups: #"[{"params": ["w", "x"]}]"#), words: ["mixes F32", "\"w\"", "F64", "\"x\""]),
        Refusal(name: "params of another dtype than the spec's", files: good, manifest: manifest(dtype: "float64"),
                words: ["tensor \"w\"", "is F32", "spec.dtype is float64"]),
        Refusal(name: "a file parameter in no group",
                files: with({ ["params.safetensors": SafeTensorsFile(["w": .float32(w), "extra": .float32([1])]).data] }),
                manifest: manifest(), words: ["parameter \"extra\" is in no group"]),
    ]

    @Test(arguments: refusals)
    func badFilesAreRefusedWithTheFieldTheFileAndTheReason(_ refusal: Refusal) throws {
        let folder = try TemporaryDirectory()
        for (name, data) in refusal.files() {
            let url = folder.url.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        }
        let manifest = try folder.write(refusal.manifest, to: "spec.json")
        let words = refusal.words.map { $0.replacingOccurrences(of: "$DIR", with: folder.path) }
        do {
            _ = try ReplaySpec(contentsOf: manifest).run()
            Issue.record("accepted")
        } catch {
            let missing = words.filter { !"\(error)".contains($0) }
            #expect(missing.isEmpty, "\(error)\nlacks: \(missing)")
        }
        let output = try regula(["replay", manifest.path])
        #expect(output.status == 1)
        #expect(output.standardOutput.isEmpty)
        #expect(words.allSatisfy { output.standardError.contains($0) }, "\(output.standardError)")
    }

    /// Whether `python3` can import numpy and safetensors (`.ci/run` installs them when it can).
    static let pythonHasSafetensors: Bool = {
        (try? run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", "import numpy, safetensors.numpy"]))?.status == 0
    }()

    @Test(.enabled(if: pythonHasSafetensors, "python3 cannot import numpy and safetensors (pip install numpy safetensors)"))
    func aRunRecordedByPythonsSafetensorsReplaysToItsOwnResult() throws {
        // The recording script of Docs/examples, run as documented.
        let folder = try TemporaryDirectory()
        let script = TestPaths.packageRoot.appendingPathComponent("Docs/examples/record_sgd.py")
        let recording = try run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script.path, folder.path])
        #expect(recording.status == 0, "\(recording.standardError)")
        let output = try regula(["replay", folder.url.appendingPathComponent("spec.json").path])
        #expect(output.status == 0, "\(output.standardError)")
        struct Result: Decodable { let params: [String: [Double]] }
        let replayed = try JSONDecoder().decode(Result.self, from: Data(output.standardOutput.utf8)).params
        let expected = try JSONDecoder().decode([String: [Double]].self,
                                                from: Data(contentsOf: folder.url.appendingPathComponent("expected.json")))
        #expect(replayed.keys.sorted() == ["b", "w"] && expected.keys.sorted() == ["b", "w"])
        for (name, values) in expected {
            let ours = replayed[name] ?? []
            #expect(ours.count == values.count)
            for (a, e) in zip(ours, values) { #expect(abs(a - e) <= 1e-5 * max(1, abs(e)), "\(name): ours \(a), numpy \(e)") }
        }
    }

    @Test(.enabled(if: pythonHasSafetensors, "python3 cannot import numpy and safetensors (pip install numpy safetensors)"))
    func safetensorsFilesWrittenByPythonReplayAsTheTorchFixtureSays() throws {
        let fixture = TorchFixture.trajectories([.sgd]).first { $0.file == "seed-adjust-lr.json" }!
        let folder = try TemporaryDirectory()
        // Python rewrites the fixture's spec with its tensors in safetensors files, as a recording script would.
        let script = """
            import json, os, sys
            import numpy as np
            from safetensors.numpy import save_file
            fixture, out = sys.argv[1], sys.argv[2]
            spec = json.load(open(fixture))["spec"]
            dtype = np.float64 if spec.get("dtype") == "float64" else np.float32
            save_file({n: np.array(v, dtype=dtype) for n, v in spec["params"].items()}, os.path.join(out, "p.safetensors"))
            spec["params"] = "p.safetensors"
            for i, step in enumerate(spec["steps"]):
                save_file({n: np.array(v, dtype=dtype) for n, v in step.get("grads", {}).items()}, os.path.join(out, f"{i}.safetensors"))
                step["grads"] = f"{i}.safetensors"
            json.dump(spec, open(os.path.join(out, "spec.json"), "w"))
            """
        let made = try run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script, fixture.path, folder.path])
        #expect(made.status == 0, "\(made.standardError)")
        let result = try ReplaySpec(contentsOf: folder.url.appendingPathComponent("spec.json")).run()
        #expect(fixture.disagreements(parameters: result.parameters, state: result.state) == [])
    }
}
