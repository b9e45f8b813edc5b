import Foundation
import PackagePlugin

/// Compiles the rules shipped with Regula into the `Regula` library's resource bundle, so that every program
/// built with SwiftPM against Regula (this package's tools, or any package that depends on it) finds them in
/// `Regula_Regula.resources/` beside its executable, in debug and release, with nothing to set.
///
/// The rules stay separate shared objects, loaded with `dlopen` at run time: each C target named
/// `RegulaRule*` (a built-in, loaded by default) or `RegulaExample*` (an example, loaded when asked for)
/// becomes `lib<target>.so`, the file name its SwiftPM product has. They are compiled by the toolchain's
/// `clang`, the compiler SwiftPM uses for C targets (or `cc` when the toolchain has none), with the flags of
/// `pluginCSettings` in Package.swift.
/// A rule written in Swift is left to SwiftPM's own product.
///
/// SwiftPM runs this plugin when it plans a build, which it does after a manifest or the set of source files
/// changes; a changed rule source or header only reruns its compile command. After editing this file, touch
/// Package.swift so that the next build plans again.
@main
struct BuildBuiltinRules: BuildToolPlugin {
    /// Exactly the `unsafeFlags` of `pluginCSettings` in Package.swift (a test compares the two).
    static let compileFlags = ["-fvisibility=hidden", "-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno"]

    /// The name prefixes of the targets compiled here.
    static let rulePrefixes = ["RegulaRule", "RegulaExample"]

    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let compiler = (try? context.tool(named: "clang").url) ?? Self.onPath("cc") else {
            throw PluginError("Regula compiles its built-in rules with a C compiler, and found neither the Swift "
                                  + "toolchain's clang nor cc on PATH; install one (Debian: apt-get install gcc)")
        }
        let package = context.package
        guard let contract = package.targets.first(where: { $0.name == "RegulaABI" }) as? SourceModuleTarget else {
            throw PluginError("the package has no RegulaABI target holding regula/regula.h")
        }
        let include = contract.directoryURL.appendingPathComponent("include")
        let rules = package.targets.compactMap { $0 as? SourceModuleTarget }
            .filter { target in Self.rulePrefixes.contains { target.name.hasPrefix($0) } }
            .filter { $0.sourceFiles(withSuffix: ".c").contains { _ in true } }
        // A rule's sources may include a header of Plugins/common (nesterov and momentum share heavy_ball.h),
        // so every header under the rules' folders, and the contract's, is an input of each: changing one
        // rebuilds every rule. They are found on disk: SwiftPM lists no headers among a C target's sources.
        let folders = Set(rules.map { $0.directoryURL.deletingLastPathComponent() } + [include])
        let headers = Set(folders.flatMap(Self.headers(under:))).sorted { $0.path < $1.path }
        let output = context.pluginWorkDirectoryURL.appendingPathComponent("rules")
        return rules.map { rule in
            let sources = rule.sourceFiles(withSuffix: ".c").map(\.url)
            let library = output.appendingPathComponent("lib\(rule.name).so")
            return .buildCommand(
                displayName: "Compiling rule \(rule.name)",
                executable: compiler,
                arguments: ["-shared", "-fPIC"] + Self.compileFlags
                    + ["-I", include.path, "-I", rule.directoryURL.path]
                    + sources.map(\.path) + ["-lm", "-o", library.path],
                inputFiles: sources + headers,
                // A file a build command makes that is not a source becomes a resource of the target, which
                // SwiftPM copies into Regula_Regula.resources in the products folder.
                outputFiles: [library])
        }
    }
}

extension BuildBuiltinRules {
    /// Every `.h` file in `folder` and the folders below it.
    static func headers(under folder: URL) -> [URL] {
        let files = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)?.allObjects ?? []
        return files.compactMap { $0 as? URL }.filter { $0.pathExtension == "h" }
    }

    /// The executable `name` in a folder of `PATH`, if there is one.
    static func onPath(_ name: String) -> URL? {
        (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
            .map { URL(fileURLWithPath: String($0)).appendingPathComponent(name) }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }
}

/// Why the rules cannot be built; SwiftPM shows the words.
struct PluginError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
