import Foundation

/// Where the package, its built products and the shared reference fixtures are.
public enum TestPaths {
    /// The package root (this file is Tests/RegulaTestSupport/TestPaths.swift).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared/fixtures/<name>` beside the package, as CI lays it out.
    public static func sharedFixtures(_ name: String) -> URL {
        packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/\(name)")
    }

    /// The folder of the running test bundle, where SwiftPM also puts `regula` and the built-in plugins.
    public static let binDirectory: URL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent()

    /// The `regula` executable built beside the tests.
    public static var regula: URL { binDirectory.appendingPathComponent("regula") }
}
