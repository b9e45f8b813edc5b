import Foundation
import Regula
import RegulaTestSupport
import Testing

/// The `regula` tool's commands other than replay (covered with the torch fixtures).
@Suite struct CommandLineTests {
    @Test func listShowsEveryBuiltinWithItsHyperparametersAndFile() throws {
        let output = try regula(["list"])
        #expect(output.status == 0, "\(output.standardError)")
        for (rule, file) in [("l1", "libRegulaRuleL1.so"), ("l2", "libRegulaRuleL2.so"),
                             ("momentum", "libRegulaRuleMomentum.so"), ("nesterov", "libRegulaRuleNesterov.so"),
                             ("sgd", "libRegulaRuleSGD.so")] {
            #expect(output.standardOutput.contains("\(rule)  v1  [float32, float64]  from /"), "\(rule)")
            #expect(output.standardOutput.contains(file))
        }
        #expect(output.standardOutput.contains("lr (required, ≥ 0)"))
        #expect(output.standardOutput.contains("dampening (default 0, [0, 1])"))
        #expect(output.standardOutput.contains("state momentum_buffer (elementwise"))
    }

    /// A plugin's named chains are part of what it declares: LAMB's plugin holds two rules and the chain.
    @Test func inspectShowsTheNamedChainsOfAFile() throws {
        let file = TestPaths.binDirectory.appendingPathComponent("libRegulaRuleLamb.so").path
        let output = try regula(["inspect", file])
        #expect(output.status == 0, "\(output.standardError)")
        #expect(output.standardOutput.contains("\(file): a Regula plugin with 2 rules and 1 named chain"))
        #expect(output.standardOutput.contains("lamb  chain  from "))
        #expect(output.standardOutput.contains("runs scale_by_adam > add_decayed_weights > scale_by_trust_ratio > sgd"))
    }

    @Test func configPrintsAnIncludeFlagThatFindsTheHeaderAndTheBuiltinsFlags() throws {
        let output = try regula(["config", "--cflags"])
        #expect(output.status == 0)
        let flags = output.standardOutput.split(whereSeparator: \.isWhitespace).map(String.init)
        let include = try #require(flags.first)
        #expect(include.hasPrefix("-I/"))
        #expect(FileManager.default.fileExists(atPath: String(include.dropFirst(2)) + "/regula/regula.h"))
        // The documented build line gives a rule the built-ins' flags: the same as Package.swift builds them with.
        let manifest = try String(contentsOf: TestPaths.packageRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        let settings = try #require(manifest.range(of: "let pluginCSettings").map { String(manifest[$0.lowerBound...].prefix(300)) })
        for flag in flags.dropFirst() { #expect(settings.contains("\"\(flag)\""), "\(flag) is not in pluginCSettings") }
        #expect(Set(flags.dropFirst()) == ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fvisibility=hidden"])
    }

    @Test func missingBuiltinsSayWhatToRun() throws {
        let empty = try TemporaryDirectory()
        let output = try regula(["list"], environment: [PluginSearchPath.builtinVariable: empty.path])
        #expect(output.status != 0)
        #expect(output.standardError.contains("built-in rules not found"))
        #expect(output.standardError.contains(empty.path))
        #expect(output.standardError.contains("the folder REGULA_BUILTIN_DIR names"))
    }

    @Test func replayOfAMalformedSpecNamesTheField() throws {
        let folder = try TemporaryDirectory()
        let spec = try folder.write(#"{"dtype": "float16", "rules": ["sgd"], "params": {}, "groups": [], "steps": []}"#,
                                    to: "spec.json")
        let output = try regula(["replay", spec.path])
        #expect(output.status != 0)
        #expect(output.standardOutput.isEmpty)
        #expect(output.standardError.contains("spec.dtype is \"float16\"; allowed: float32, float64"))
    }

    @Test func replayOfTheReadmeExampleRuns() throws {
        let output = try regula(["replay", TestPaths.packageRoot.appendingPathComponent("Docs/examples/seed-example.json").path])
        #expect(output.status == 0, "\(output.standardError)")
        let json = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any]
        #expect((json?["params"] as? [String: Any])?.keys.sorted() == ["conv.b", "conv.w", "fc.w"])
    }

    @Test func benchReportsItsMeasurementAsJSON() throws {
        let output = try regula(["bench", "--rules", "l1,l2,nesterov,sgd", "--option", "lr=0.05", "--elements", "10000",
                                 "--tensors", "7", "--dtype", "float64", "--steps", "3", "--threads", "2", "--json"])
        #expect(output.status == 0, "\(output.standardError)")
        let json = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any] ?? [:]
        #expect((json["ns_per_element"] as? Double ?? 0) > 0)
        // The spread beside the median: fastest ≤ median ≤ 90th percentile ≤ slowest.
        let spread = ["min_ns_per_element", "ns_per_element", "p90_ns_per_element", "max_ns_per_element"].map { json[$0] as? Double ?? -1 }
        #expect(spread[0] > 0 && spread == spread.sorted(), "\(spread)")
        #expect((json["gb_per_s"] as? Double ?? 0) > 0)
        #expect(json["elements"] as? Int == 10000 && json["tensors"] as? Int == 7 && json["threads"] as? Int == 2)
        #expect(json["dtype"] as? String == "float64")
        #expect((json["bytes_per_element"] as? NSNumber)?.doubleValue == Double(8 * (3 + 2)))
        #expect((json["options"] as? [String: Double])?["lr"] == 0.05)
        // No rule of the chain multiplies matrices, so no BLAS is named (and none was loaded for it).
        #expect(json["blas_library"] == nil && json["blas_threads"] == nil)
    }

    @Test func benchNamesTheBLASAMatrixRuleUsedAndCountsOnlyTheSlotsOfTheParametersRank() throws {
        let muon = try regula(["bench", "--rules", "muon", "--shape", "16,8", "--steps", "1", "--threads", "1", "--json"])
        #expect(muon.status == 0, "\(muon.standardError)")
        let json = try JSONSerialization.jsonObject(with: Data(muon.standardOutput.utf8)) as? [String: Any] ?? [:]
        #expect((json["blas_library"] as? String)?.contains("openblas") == true, "\(json)")
        // One optimizer thread and one parameter: its GEMMs get that one thread.
        #expect(json["blas_threads"] as? Int == 1, "\(json)")
        // adafactor's variance slot is for vectors only: a matrix moves its parameter (read, written) and gradient.
        let matrix = try regula(["bench", "--rules", "adafactor", "--shape", "4,6", "--steps", "1", "--json"])
        let vector = try regula(["bench", "--rules", "adafactor", "--elements", "24", "--steps", "1", "--json"])
        let bytes = [matrix, vector].map { output in
            ((try? JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8))) as? [String: Any])?["bytes_per_element"] as? NSNumber
        }
        #expect(bytes.map { $0?.doubleValue } == [Double(4 * 3), Double(4 * (3 + 2))], "\(matrix.standardError) \(vector.standardError)")
    }

    @Test func benchRefusesAnOptionTheChainDoesNotTake() throws {
        let output = try regula(["bench", "--rules", "sgd", "--option", "momentum=0.9", "--elements", "100", "--steps", "1"])
        #expect(output.status != 0)
        #expect(output.standardError.contains("unknown hyperparameter \"momentum\""))
        #expect(output.standardOutput.isEmpty)
    }

    @Test func benchStepsTensorsOfTheShapeGiven() throws {
        let output = try regula(["bench", "--rules", "muon", "--shape", "48,32", "--tensors", "2", "--steps", "1", "--json"])
        #expect(output.status == 0, "\(output.standardError)")
        let json = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any] ?? [:]
        #expect(json["elements"] as? Int == 2 * 48 * 32 && json["tensors"] as? Int == 2)

        let flat = try regula(["bench", "--rules", "muon", "--elements", "1536", "--steps", "1"])
        #expect(flat.status != 0 && flat.standardError.contains(#"parameter "t0" has shape [1536] (rank 1)"#), "\(flat.standardError)")
        for shape in ["48,0", "48,", "x", "9223372036854775807,2"] {
            let refused = try regula(["bench", "--rules", "muon", "--shape", shape, "--steps", "1"])
            #expect(refused.status != 0 && refused.standardError.contains(#"--shape is "\#(shape)"; allowed: sizes of at least 1"#),
                    "\(refused.standardError)")
        }
    }

    @Test func float64ReplayReadsAndWritesNumbersExactly() throws {
        // Values JSONSerialization on Linux would read an ulp off; with lr = 0 they must come back unchanged.
        let values: [Double] = (0..<300).map { Double($0) * 0.7351234567891234 - 100.123456789 }
        let spec = #"{"dtype": "float64", "rules": ["sgd"], "defaults": {"lr": 0}, "groups": [{"params": ["w"]}], "params": {"w": "#
            + "[" + values.map { "\($0)" }.joined(separator: ", ") + "]}, \"steps\": [{\"grads\": {\"w\": "
            + "[" + values.map { _ in "1" }.joined(separator: ", ") + "]}}]}"
        let folder = try TemporaryDirectory()
        let file = try folder.write(spec, to: "exact.json")
        let output = try regula(["replay", file.path])
        #expect(output.status == 0, "\(output.standardError)")
        struct Result: Decodable { let params: [String: [Double]] }
        let result = try JSONDecoder().decode(Result.self, from: Data(output.standardOutput.utf8))
        #expect(result.params["w"]?.map(\.bitPattern) == values.map(\.bitPattern))
    }

    @Test func everyCommandReportsRefusedPluginsOnStandardError() throws {
        let folder = try TemporaryDirectory()
        let junk = try folder.write("not a shared object", to: "libjunk.so")
        let spec = try folder.write(#"{"rules": ["sgd"], "defaults": {"lr": 0.1}, "groups": [{"params": ["w"]}], "params": {"w": [1.0]}, "steps": []}"#,
                                    to: "spec.json")
        let output = try regula(["replay", spec.path, "--plugin-dir", folder.path])
        #expect(output.status == 0, "\(output.standardError)")
        #expect(output.standardError.contains("refused: cannot load plugin \(junk.path)"), "\(output.standardError)")
        #expect(output.standardOutput.contains("\"w\": [1.0]"))
    }

    /// A checkpoint restores its own options, so an --option beside --resume would be dropped silently.
    @Test func trainRefusesAnOptionGivenWithResume() throws {
        let folder = try TemporaryDirectory()
        let checkpoint = folder.url.appendingPathComponent("run.safetensors").path
        let output = try regula(["train", "--resume", checkpoint, "--option", "lr=0.5", "--epochs", "2"])
        #expect(output.status != 0)
        #expect(output.standardError.contains("--option lr=0.5 cannot be given with --resume"), "\(output.standardError)")
        #expect(!FileManager.default.fileExists(atPath: checkpoint))
    }
}
