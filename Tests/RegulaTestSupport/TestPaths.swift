import Foundation

/// Where the package, its built products and the reference fixtures are.
public enum TestPaths {
    /// The package root (this file is Tests/RegulaTestSupport/TestPaths.swift).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Tests/Fixtures/<name>`: reference data made by torch and optax, copied into the repository so that a
    /// plain clone's `swift test` checks against it (Tests/Fixtures/README.md says where each set came from).
    public static func fixtures(_ name: String) -> URL {
        packageRoot.appendingPathComponent("Tests/Fixtures/\(name)")
    }

    /// The folder of the running test bundle, where SwiftPM also puts `regula` and the built-in plugins.
    public static let binDirectory: URL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent()

    /// The `regula` executable built beside the tests.
    public static var regula: URL { binDirectory.appendingPathComponent("regula") }
}
