import Foundation
import RegulaTestSupport
import Testing

/// Every Swift sample a user reads compiles and runs as written (DocumentedSamples says which blocks are
/// samples), built in a package of its own that depends on Regula as a user's package does.
@Suite struct DocumentationSampleTests {
    @Test func everyDocumentedProgramBuildsOutsideThePackageAndRunsAsShown() throws {
        let programs = try DocumentedSamples.all().programs
        #expect(programs.contains { $0.document == "README.md" } && programs.contains { $0.document.hasSuffix(".docc/GettingStarted.md") },
                "\(programs)")
        let package = try SamplePackage(programs)
        let build = try package.build()
        try #require(build.status == 0, "\(build.standardOutput)\n\(build.standardError)")
        for program in programs {
            let folder = try TemporaryDirectory("regula-sample")
            let output = try package.run(program, in: folder.url)
            #expect(output.status == 0, "\(program) exited with \(output.status): \(output.standardError)")
            #expect(output.standardError.isEmpty, "\(program) wrote on standard error: \(output.standardError)")
            if let expected = program.expectedOutput {
                #expect(output.standardOutput.contains(expected), "\(program) printed\n\(output.standardOutput)\nnot\n\(expected)")
            }
        }
    }

    /// The README's getting-started package is the one CI builds from scratch (Tests/ClientPackage): its
    /// manifest and program, as written.
    @Test func clientPackageIsTheReadmesGettingStartedPackage() throws {
        let readme = try DocumentedSamples.samples(in: "README.md")
        let client = TestPaths.packageRoot.appendingPathComponent("Tests/ClientPackage")
        #expect(readme.manifests.map(\.source) == [try String(contentsOf: client.appendingPathComponent("Package.swift"), encoding: .utf8)])
        #expect(readme.programs.first?.source == (try String(contentsOf: client.appendingPathComponent("Sources/app/main.swift"), encoding: .utf8)))
        let expected = try String(contentsOf: client.appendingPathComponent("expected-output.txt"), encoding: .utf8)
        #expect(readme.programs.first?.expectedOutput.map { $0 + "\n" } == expected)
    }

    /// Every manifest a document shows is the client package's (the one CI builds), so none is left untried.
    @Test func everyDocumentedManifestIsTheOneCIBuilds() throws {
        let manifest = try String(contentsOf: TestPaths.packageRoot.appendingPathComponent("Tests/ClientPackage/Package.swift"), encoding: .utf8)
        for shown in try DocumentedSamples.all().manifests {
            #expect(shown.source == manifest, "\(shown) differs from Tests/ClientPackage/Package.swift")
        }
    }

    @Test func samplesAreFoundInEveryKindOfDocumentAndTutorialFilesAreLeftToTheirTest() throws {
        let documents = DocumentedSamples.documents()
        #expect(documents.contains("README.md") && documents.contains("Docs/WritingARule.md"))
        #expect(documents.contains { $0.hasPrefix("Sources/Regula/Regula.docc/") })
        #expect(try DocumentedSamples.samples(in: "Docs/WritingARule.md").programs.isEmpty)
        let blocks = FencedBlock.blocks(in: "text\n```swift file=a.swift\nlet a = 1\n```\n```text output\n1\n```\n")
        #expect(blocks.map(\.info) == [["swift", "file=a.swift"], ["text", "output"]])
        #expect(blocks.first?.attribute("file") == "a.swift" && blocks.first?.line == 2 && blocks.last?.body == "1")
    }
}
