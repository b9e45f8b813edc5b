import Foundation

/// Where the built-in rules are found.
///
/// The built-in rules are shared objects named `libRegulaRule*.so` (the examples, loaded only when asked
/// for, are `libRegulaExample*.so` beside them). The host takes them from the first of these folders that
/// holds at least one built-in rule:
///
/// 1. `REGULA_BUILTIN_DIR`, when it is set: that folder and no other.
/// 2. `Regula_Regula.resources` beside the running executable: SwiftPM puts the rules there when it builds
///    any program that depends on Regula (`swift build`, `swift run`, `swift test`, debug or release).
/// 3. The executable's own folder, where SwiftPM puts Regula's rule products.
/// 4. `../lib/regula` next to the executable's folder: the layout `regula install --prefix DIR` makes
///    (`DIR/bin/program`, `DIR/lib/regula/`), wherever DIR is moved.
/// 5. The standard folders, as LADSPA and CLAP have: `~/.local/lib/regula`, `/usr/local/lib/regula`,
///    `/usr/lib/regula`.
///
/// The running executable is `/proc/self/exe`; under `swift test` it is the test bundle, which sits in the
/// same products folder as a program would.
extension PluginSearchPath {
    /// The environment variable that names the one folder to take the built-in rules from.
    public static let builtinVariable = "REGULA_BUILTIN_DIR"
    /// How a built-in rule's file name starts.
    public static let builtinPrefix = "libRegulaRule"
    /// How an example rule's file name starts (in the same folder as the built-ins, loaded only on request).
    public static let examplePrefix = "libRegulaExample"
    /// The folder SwiftPM copies the `Regula` library's resources into, beside the program it builds.
    public static let resourceBundleName = "Regula_Regula.resources"
    /// Where the rules go under an installation prefix (`regula install --prefix DIR` puts them in
    /// `DIR/lib/regula`).
    public static let installedRulesFolder = "lib/regula"
    /// The standard folders searched after those relative to the executable, in order; `~` is the home
    /// folder.
    public static let standardBuiltinFolders = ["~/.local/lib/regula", "/usr/local/lib/regula", "/usr/lib/regula"]

    /// The folders searched for the built-in rules, in order (see ``PluginSearchPath``); only
    /// `REGULA_BUILTIN_DIR` when it is set.
    public static func builtinSearchFolders(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        if let override = environment[builtinVariable], !override.isEmpty { return [override] }
        var folders: [String] = []
        if let executable = currentExecutablePath() {
            let folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
            folders += [folder.appendingPathComponent(resourceBundleName).path, folder.path,
                        folder.deletingLastPathComponent().appendingPathComponent(installedRulesFolder).path]
        }
        let home = environment["HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        for folder in standardBuiltinFolders {
            if folder.hasPrefix("~/") {
                if let home { folders.append(URL(fileURLWithPath: home).appendingPathComponent(String(folder.dropFirst(2))).path) }
            } else {
                folders.append(folder)
            }
        }
        return folders
    }

    /// The first of ``builtinSearchFolders(environment:)`` that holds a built-in rule, or nil when none does.
    public static func builtinDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        builtinSearchFolders(environment: environment).first { folder in
            !((try? pluginFiles(in: folder, prefix: builtinPrefix)) ?? []).isEmpty
        }
    }
}
