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

    @Test func configPrintsAnIncludeFlagThatFindsTheHeader() throws {
        let output = try regula(["config", "--cflags"])
        #expect(output.status == 0)
        let flag = output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(flag.hasPrefix("-I/"))
        #expect(FileManager.default.fileExists(atPath: String(flag.dropFirst(2)) + "/regula/regula.h"))
    }

    @Test func missingBuiltinsSayWhatToRun() throws {
        let empty = try TemporaryDirectory()
        let output = try regula(["list"], environment: [PluginSearchPath.builtinVariable: empty.path])
        #expect(output.status != 0)
        #expect(output.standardError.contains("built-in rules not found"))
        #expect(output.standardError.contains(empty.path))
        #expect(output.standardError.contains("swift build"))
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
}
