import Foundation

/// A SwiftPM package outside Regula, depending on it the way a user's package does (`.package(path:
/// "../regula")`), with one executable per documented program. It lives in `.build/documented-samples`, so
/// that a second run rebuilds only what changed.
public struct SamplePackage {
    /// The package folder.
    public let url: URL
    /// The programs it builds, each as its own executable target.
    public let programs: [DocumentedSamples.Program]

    /// Writes the package: `regula` (a link to this Regula package) and `samples/` beside it, whose
    /// `Sources/<target>/main.swift` is each program as written. Files that did not change are left alone.
    public init(_ programs: [DocumentedSamples.Program], root: URL = TestPaths.packageRoot) throws {
        let manager = FileManager.default
        let folder = root.appendingPathComponent(".build/documented-samples")
        try manager.createDirectory(at: folder, withIntermediateDirectories: true)
        let link = folder.appendingPathComponent("regula")
        if (try? manager.destinationOfSymbolicLink(atPath: link.path)) != root.path {
            try? manager.removeItem(at: link)
            try manager.createSymbolicLink(at: link, withDestinationURL: root)
        }
        url = folder.appendingPathComponent("samples")
        self.programs = programs
        let sources = url.appendingPathComponent("Sources")
        try manager.createDirectory(at: sources, withIntermediateDirectories: true)
        let names = Set(programs.map(\.targetName))
        for stale in try manager.contentsOfDirectory(atPath: sources.path) where !names.contains(stale) {
            try manager.removeItem(at: sources.appendingPathComponent(stale))
        }
        for program in programs {
            try Self.write(program.source, to: sources.appendingPathComponent("\(program.targetName)/main.swift"))
        }
        // A program that imports RegulaDistributed (Docs/DISTRIBUTED.md) depends on that product too.
        let targets = programs.map { program in
            let products = ["Regula"] + (program.source.contains("import RegulaDistributed") ? ["RegulaDistributed"] : [])
            return "        .executableTarget(name: \"\(program.targetName)\", dependencies: ["
                + products.map { ".product(name: \"\($0)\", package: \"regula\")" }.joined(separator: ", ") + "]),"
        }
        try Self.write("""
            // swift-tools-version:6.1
            // Written by the tests: every Swift program of README.md, Docs/ and the DocC catalog.
            import PackageDescription

            let package = Package(
                name: "DocumentedSamples",
                dependencies: [.package(path: "../regula")],
                targets: [
            \(targets.joined(separator: "\n"))
                ]
            )

            """, to: url.appendingPathComponent("Package.swift"))
    }

    /// Builds every program with `swift build`. SwiftPM keeps a build plan that can still list a Regula source
    /// file since renamed or removed ("missing inputs"); the samples' build folder is then thrown away and the
    /// build made once more from nothing.
    public func build() throws -> ProcessOutput {
        let build = { try RegulaTestSupport.run(URL(fileURLWithPath: "/usr/bin/env"), ["swift", "build", "--package-path", url.path]) }
        let first = try build()
        guard first.status != 0, (first.standardOutput + first.standardError).contains("because of missing inputs") else { return first }
        try FileManager.default.removeItem(at: url.appendingPathComponent(".build"))
        return try build()
    }

    /// Runs one built program in `folder`, with no Regula variable set: what it finds, it finds by itself.
    public func run(_ program: DocumentedSamples.Program, in folder: URL) throws -> ProcessOutput {
        try RegulaTestSupport.run(url.appendingPathComponent(".build/debug/\(program.targetName)"), [],
                                  environment: ["REGULA_BUILTIN_DIR": "", "REGULA_PLUGIN_PATH": "", "REGULA_INCLUDE_DIR": ""],
                                  workingDirectory: folder)
    }

    /// Writes `text` to `file` unless it already holds exactly that (so the build sees no change).
    private static func write(_ text: String, to file: URL) throws {
        if (try? String(contentsOf: file, encoding: .utf8)) == text { return }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
    }
}
