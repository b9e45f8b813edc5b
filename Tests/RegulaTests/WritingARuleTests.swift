import Foundation
import RegulaTestSupport
import Testing

/// Walks Docs/WritingARule.md as a reader would, in an empty folder: writes every file it shows, runs every
/// shell block in order (with `regula` on PATH, as the tutorial asks), and compares each `text output` block
/// with what the shell block before it printed.
@Suite struct WritingARuleTests {
    /// A fenced block of the tutorial.
    enum Step {
        case file(path: String, contents: String)
        case shell(String)
        case output(String)
    }

    static func steps(of markdown: String) -> [Step] {
        FencedBlock.blocks(in: markdown).compactMap { block in
            if let path = block.attribute("file") { return .file(path: path, contents: block.body + "\n") }
            if block.info == ["sh"] { return .shell(block.body) }
            if block.info == ["text", "output"] { return .output(block.body) }
            return nil
        }
    }

    @Test func tutorialHasShellFileAndOutputBlocks() throws {
        let steps = Self.steps(of: try String(contentsOf: TestPaths.packageRoot.appendingPathComponent("Docs/WritingARule.md"), encoding: .utf8))
        #expect(steps.filter { if case .shell = $0 { true } else { false } }.count >= 5)
        #expect(steps.filter { if case .file = $0 { true } else { false } }.count == 6)
        #expect(steps.filter { if case .output = $0 { true } else { false } }.count >= 3)
    }

    @Test func cElasticNetIsAtMostTwentyLinesOfCode() throws {
        let source = try String(contentsOf: TestPaths.packageRoot.appendingPathComponent("Docs/WritingARule.md"), encoding: .utf8)
        let file = Self.steps(of: source).compactMap { step -> String? in
            if case .file(let path, let contents) = step, path.hasSuffix(".c") { return contents }
            return nil
        }.first ?? ""
        let code = file.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        #expect(!code.isEmpty && code.count <= 20, "\(code.count) lines")
    }

    @Test(.disabled(if: Sanitizer.active != nil, Comment(rawValue: Sanitizer.separateBuildCannotLoadPlugins)))
    func everyCommandOfTheTutorialWorks() throws {
        let markdown = try String(contentsOf: TestPaths.packageRoot.appendingPathComponent("Docs/WritingARule.md"), encoding: .utf8)
        let root = try TemporaryDirectory("regula-tutorial")
        let state = try TemporaryDirectory("regula-tutorial-state")
        let environment = state.url.appendingPathComponent("environment"), directory = state.url.appendingPathComponent("directory")
        try root.path.write(to: directory, atomically: true, encoding: .utf8)
        try "".write(to: environment, atomically: true, encoding: .utf8)
        var lastOutput = ""
        for (index, step) in Self.steps(of: markdown).enumerated() {
            switch step {
            case .file(let path, let contents):
                let file = root.url.appendingPathComponent(path)
                try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                try contents.write(to: file, atomically: true, encoding: .utf8)
            case .shell(let commands):
                // Each block continues where the last one left off: same folder, same exported variables.
                let script = """
                    set -euo pipefail
                    source '\(environment.path)'
                    cd "$(cat '\(directory.path)')"
                    \(commands)
                    export -p > '\(environment.path)'
                    pwd > '\(directory.path)'
                    """
                let path = TestPaths.binDirectory.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
                let output = try run(URL(fileURLWithPath: "/bin/bash"), ["-c", script], environment: ["PATH": path])
                #expect(output.status == 0, "step \(index): \(commands)\n\(output.standardOutput)\n\(output.standardError)")
                if output.status != 0 { return }
                lastOutput = output.standardOutput
            case .output(let expected):
                #expect(lastOutput.contains(expected), "step \(index) expected:\n\(expected)\ngot:\n\(lastOutput)")
            }
        }
    }
}
