import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Mistakes on regula train's and regula bench's command lines end in a sentence naming the option and what
/// is allowed, before any work is done, never in Foundation's words.
@Suite struct CommandMistakeTests {
    /// Expects a refusal with `words` on standard error, no Foundation text, and nothing trained or printed.
    func expectRefused(_ arguments: [String], saying words: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let output = try regula(arguments)
        #expect(output.status != 0, sourceLocation: sourceLocation)
        #expect(output.standardError.contains(words), "\(output.standardError)", sourceLocation: sourceLocation)
        #expect(!output.standardError.contains("NSCocoaErrorDomain") && !output.standardError.contains("could not be completed"),
                sourceLocation: sourceLocation)
        #expect(!output.standardError.contains("epochs\n") && output.standardOutput.isEmpty,
                "the refusal came after training: \(output.standardOutput)", sourceLocation: sourceLocation)
    }

    @Test func negativeCountsAreRefusedWithTheirValue() throws {
        try expectRefused(["train", "--epochs", "-3"], saying: "--epochs is -3; it must be at least 1")
        try expectRefused(["train", "--epochs", "0"], saying: "--epochs is 0; it must be at least 1")
        try expectRefused(["bench", "--elements", "-5"], saying: "--elements is -5; it must be at least 1")
        try expectRefused(["bench", "--threads", "-1", "--elements", "100"], saying: "--threads is -1; it must be at least 1")
    }

    @Test func outputsThatCannotBeWrittenAreRefusedBeforeTraining() throws {
        let folder = try TemporaryDirectory()
        let missing = folder.url.appendingPathComponent("no/such/folder")
        try expectRefused(["train", "--epochs", "5", "--csv", missing.appendingPathComponent("curves.csv").path],
                          saying: "--csv \(missing.path)/curves.csv: cannot write it: there is no folder \(missing.path)")
        try expectRefused(["train", "--epochs", "5", "--plot", folder.path],
                          saying: "--plot \(folder.path): cannot write it: \(folder.path) is a folder; give a file name")
        try expectRefused(["train", "--epochs", "5", "--checkpoint", missing.appendingPathComponent("run.safetensors").path],
                          saying: "--checkpoint \(missing.path)/run.logistic.subgradient.safetensors: cannot write it: there is no folder")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test func resumingACheckpointAlreadyPastEpochsIsRefused() throws {
        let folder = try TemporaryDirectory()
        let checkpoint = folder.url.appendingPathComponent("run.safetensors").path
        let first = try regula(["train", "--epochs", "6", "--checkpoint", checkpoint])
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("checkpoints: \(folder.path)/run.logistic.subgradient.safetensors"))
        for epochs in ["4", "6"] {
            try expectRefused(["train", "--epochs", epochs, "--resume", checkpoint],
                              saying: "--resume \(folder.path)/run.logistic.subgradient.safetensors is already at epoch 6, "
                                  + "and --epochs \(epochs) asks for no more; give --epochs greater than 6 to train on")
        }
        #expect(try regula(["train", "--epochs", "7", "--resume", checkpoint]).status == 0)
    }

    @Test func trainAnnouncesEveryFileItWrote() throws {
        let folder = try TemporaryDirectory()
        let csv = folder.url.appendingPathComponent("curves.csv").path, svg = folder.url.appendingPathComponent("chart.svg").path
        let output = try regula(["train", "--epochs", "3", "--csv", csv, "--plot", svg])
        #expect(output.status == 0, "\(output.standardError)")
        #expect(output.standardOutput.hasSuffix("curves: \(csv)\nchart: \(svg)\n"), "\(output.standardOutput)")
    }

    @Test func benchSaysWhetherStepsAreJournaledAndWhetherItsNumbersMeanAnything() throws {
        let builtins = try regula(["bench", "--elements", "4096", "--steps", "2"])
        #expect(builtins.status == 0, "\(builtins.standardError)")
        #expect(builtins.standardOutput.contains("atomic steps    yes (every rule declares it never fails: no journal needed)"))
        let folder = try TemporaryDirectory()
        try PluginCompiler.compile(PluginSource.scaleTest, named: "scale", in: folder)
        let mayFail = try regula(["bench", "--rules", "scale_test,sgd", "--plugin-dir", folder.path, "--elements", "4096", "--steps", "2", "--json"])
        #expect(mayFail.status == 0, "\(mayFail.standardError)")
        #expect(mayFail.standardOutput.contains("\"journaled\":true"))
        let unguarded = try regula(["bench", "--rules", "scale_test,sgd", "--plugin-dir", folder.path, "--elements", "4096", "--steps", "2", "--no-atomic"])
        #expect(unguarded.standardOutput.contains("atomic steps    no"))
        // The test bundle and regula are built in the same configuration.
        #if DEBUG
        #expect(builtins.standardError.contains("warning: this regula is a debug build"))
        #expect(builtins.standardOutput.contains("debug (unoptimized host): these timings do not measure Regula"))
        #else
        #expect(!builtins.standardError.contains("debug build"))
        #endif
    }
}
