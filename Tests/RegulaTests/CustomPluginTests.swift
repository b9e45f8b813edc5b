import Foundation
import Regula
import RegulaTestSupport
import Testing

/// The drop-in path a user walks: write a rule in C, build it with `cc $(regula config --cflags)`, put it in
/// a folder, and select it by name beside the built-ins, from Swift and from `regula replay`.
@Suite struct CustomPluginTests {
    // MARK: From Swift

    @Test func pluginOnREGULA_PLUGIN_PATHStepsLikeTheReference() throws {
        let folder = try TemporaryDirectory()
        try PluginCompiler.compile(elasticNetSource, named: "elastic_net", in: folder)
        let registry = try RuleRegistry.standard(environment: [PluginSearchPath.pathVariable: folder.path])
        #expect(registry.loadFailures == [])
        try expectStepsMatchReference(registry: registry)
    }

    @Test func pluginInDirectoryGivenInCodeStepsLikeTheReference() throws {
        let folder = try TemporaryDirectory()
        let library = try PluginCompiler.compile(elasticNetSource, named: "elastic_net", in: folder)
        let registry = RuleRegistry()
        try registry.loadBuiltins()
        #expect(try registry.loadPlugins(inDirectory: folder.path) == [])
        let rule = try registry.rule(named: "elastic_net")
        #expect(rule.origin == .sharedObject(path: library.path))
        #expect(rule.hyperparameters.map(\.name) == ["l1_ratio", "alpha"])
        #expect(rule.hyperparameters.map(\.defaultValue) == [0.5, 0])
        #expect(rule.hyperparameters.map(\.range) == [0...1, 0...Double.infinity])
        try expectStepsMatchReference(registry: registry)
    }

    // MARK: From the command line

    enum PluginLocation: CaseIterable { case environment, option }

    @Test(arguments: DType.allCases, PluginLocation.allCases)
    func replayWithPluginMatchesTheReference(dtype: DType, location: PluginLocation) throws {
        let folder = try TemporaryDirectory()
        try PluginCompiler.compile(elasticNetSource, named: "elastic_net", in: folder)
        // l1_ratio is left out, so the rule's default 0.5 applies.
        let spec: [String: Any] = [
            "dtype": dtype.rawValue, "rules": ["elastic_net", "sgd"],
            "defaults": ["lr": trajectory.lr, "alpha": trajectory.alpha],
            "groups": [["params": ["w"]]], "params": ["w": trajectory.start],
            "steps": trajectory.gradients.map { ["grads": ["w": $0]] },
        ]
        let specFile = folder.url.appendingPathComponent("spec.json")
        try JSONSerialization.data(withJSONObject: spec).write(to: specFile)
        let output = switch location {
        case .environment: try regula(["replay", specFile.path], environment: [PluginSearchPath.pathVariable: folder.path])
        case .option: try regula(["replay", specFile.path, "--plugin-dir", folder.path],
                                 environment: [PluginSearchPath.pathVariable: ""])
        }
        #expect(output.status == 0, "\(output.standardError)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any])
        let parameters = try #require(json["params"] as? [String: [Double]], "\(output.standardOutput)")
        let expected = trajectory.reference(l1Ratio: 0.5)
        #expect(disagreements(try #require(parameters["w"]), expected, dtype: dtype) == [])
    }

    // MARK: The search path

    @Test func relativeEntriesOfThePluginPathAreDropped() {
        let environment = [PluginSearchPath.pathVariable: ".:relative/dir::/opt/rules:rules:/srv/more"]
        #expect(PluginSearchPath.directories(environment: environment) == ["/opt/rules", "/srv/more"])
    }

    @Test(arguments: [".", "relative/dir"])
    func relativePluginPathEntryLoadsNothingFromTheWorkingDirectory(entry: String) throws {
        let folder = try TemporaryDirectory()
        let library = try PluginCompiler.compile(elasticNetSource, named: "elastic_net", in: folder)
        let target = folder.url.appendingPathComponent(entry)
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        if entry != "." { try FileManager.default.copyItem(at: library, to: target.appendingPathComponent("libelastic_net.so")) }
        func listed(withPluginPath path: String) throws -> ProcessOutput {
            try run(URL(fileURLWithPath: "/usr/bin/env"), ["-C", folder.path, TestPaths.regula.path, "list"],
                    environment: [PluginSearchPath.pathVariable: path])
        }
        let relative = try listed(withPluginPath: entry)
        #expect(relative.status == 0, "\(relative.standardError)")
        #expect(relative.standardOutput.contains("sgd"))
        #expect(!relative.standardOutput.contains("elastic_net"), "\(relative.standardOutput)")
        let absolute = try listed(withPluginPath: target.path)
        #expect(absolute.standardOutput.contains("elastic_net"), "\(absolute.standardOutput)")
    }
}

// MARK: - The plugin and its reference

/// An elastic-net regularizer as a user would write it.
private let elasticNetSource = """
    #include <regula/regula.h>

    static const regula_hyperparameter hyperparameters[] = {
        REGULA_REAL("l1_ratio", "share of the L1 term", 0.5, 0.0, 1.0),
        REGULA_REAL("alpha", "penalty strength", 0.0, 0.0, HUGE_VAL),
    };

    REGULA_KERNEL(elastic_net, {
        T *d = (T *)block->update;
        const T *p = (const T *)block->param;
        const T l1_ratio = (T)block->hyperparameters[0], alpha = (T)block->hyperparameters[1];
        for (size_t i = 0; i < block->length; i++)
            d[i] += alpha * (l1_ratio * (T)((p[i] > 0) - (p[i] < 0)) + (1 - l1_ratio) * p[i]);
    })

    static const regula_rule rules[] = {
        REGULA_RULE("elastic_net", "elastic net: d += alpha * (l1_ratio * sign(p) + (1 - l1_ratio) * p)", .version = 1,
                    .dtypes = REGULA_KERNEL_DTYPES, REGULA_HYPERPARAMETERS(hyperparameters), .kernel = elastic_net),
    };

    REGULA_EXPORT_PLUGIN(rules)
    """

/// A few steps of gradients for one parameter. The third element stays at zero with a zero gradient, so
/// sign(0) = 0 is exercised; every number is exact in float32.
private let trajectory = Trajectory(
    start: [0.5, -1.25, 0, 2, -0.375],
    gradients: [[0.25, -0.5, 0, 1, 0.125], [-0.75, 0.25, 0, -0.5, 0], [0.125, 1, 0, 0.25, -0.25]],
    lr: 0.1, alpha: 0.2)

private struct Trajectory {
    let start: [Double]
    let gradients: [[Double]]
    let lr: Double
    let alpha: Double

    /// The parameter after every step, in plain Double arithmetic:
    /// p -= lr * (g + alpha * (l1_ratio * sign(p) + (1 - l1_ratio) * p)).
    func reference(l1Ratio: Double) -> [Double] {
        var p = start
        for g in gradients {
            for i in p.indices {
                let sign: Double = p[i] > 0 ? 1 : p[i] < 0 ? -1 : 0
                p[i] -= lr * (g[i] + alpha * (l1Ratio * sign + (1 - l1Ratio) * p[i]))
            }
        }
        return p
    }
}

/// Steps one float32 and one float64 parameter through ["elastic_net", "sgd"] from `registry` and compares
/// both with the reference.
private func expectStepsMatchReference(registry: RuleRegistry, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let single = Parameter("w32", values: trajectory.start.map(Float.init))
    let double = Parameter("w64", values: trajectory.start)
    let optimizer = try Optimizer([single, double], rules: ["elastic_net", "sgd"],
                                  defaults: ["lr": trajectory.lr, "alpha": trajectory.alpha, "l1_ratio": 0.25],
                                  registry: registry)
    for gradient in trajectory.gradients {
        try single.setGradient(gradient.map(Float.init))
        try double.setGradient(gradient)
        try optimizer.step()
    }
    let expected = trajectory.reference(l1Ratio: 0.25)
    #expect(try disagreements(single.values(as: Float.self).map(Double.init), expected, dtype: .float32) == [],
            sourceLocation: sourceLocation)
    #expect(try disagreements(double.values(as: Double.self), expected, dtype: .float64) == [], sourceLocation: sourceLocation)
}

/// Every element farther from the reference than `dtype` allows (1e-6 or 1e-13, relative above 1), described.
private func disagreements(_ actual: [Double], _ expected: [Double], dtype: DType) -> [String] {
    guard actual.count == expected.count else { return ["\(actual.count) elements, expected \(expected.count)"] }
    let tolerance = dtype == .float32 ? 1e-6 : 1e-13
    return zip(actual, expected).enumerated().compactMap { index, pair in
        abs(pair.0 - pair.1) <= tolerance * max(1, abs(pair.1)) ? nil : "[\(index)]: got \(pair.0), expected \(pair.1)"
    }
}
