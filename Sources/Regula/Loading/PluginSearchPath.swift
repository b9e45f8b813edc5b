import Foundation

/// Where plugins are looked for.
///
/// Built-in rules are the shared objects named `libRegulaRule*.so` in the first of the
/// ``builtinSearchFolders(environment:)`` that has them. `REGULA_PLUGIN_PATH` lists more folders, separated
/// by colons; only absolute entries are searched, so the current directory never is by accident
/// (``ignoredEntries(environment:)`` names the others). Within a folder, files ending in `.so` load in name
/// order.
public enum PluginSearchPath {
    /// The environment variable listing plugin folders.
    public static let pathVariable = "REGULA_PLUGIN_PATH"

    /// The absolute folders named by `REGULA_PLUGIN_PATH`, in order.
    public static func directories(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        entries(environment).filter { $0.hasPrefix("/") }
    }

    /// One error for each entry of `REGULA_PLUGIN_PATH` that is not an absolute path, and so is not searched.
    /// Empty entries (as in `a::b`, or a trailing colon) are skipped without a word.
    public static func ignoredEntries(environment: [String: String] = ProcessInfo.processInfo.environment) -> [RegistryError] {
        entries(environment).filter { !$0.hasPrefix("/") }.map { RegistryError(path: $0, reason: .relativeSearchPathEntry) }
    }

    private static func entries(_ environment: [String: String]) -> [String] {
        (environment[pathVariable] ?? "").split(separator: ":").map(String.init)
    }

    /// The example rules' files (`libRegulaExample*.so`, from `Plugins/examples`) in the built-in folder, in
    /// name order: built with the built-ins, but loaded only when asked for (`--plugin-dir` that folder).
    public static func exampleFiles(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        guard let directory = builtinDirectory(environment: environment) else { return [] }
        return (try? pluginFiles(in: directory, prefix: examplePrefix)) ?? []
    }

    /// The plugin files in `directory`, in name order; those whose name starts with `prefix` if one is given.
    /// - Throws: ``RegistryError`` naming the folder when it does not exist or cannot be read.
    static func pluginFiles(in directory: String, prefix: String = "") throws(RegistryError) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder) else {
                throw RegistryError(path: directory, reason: .folderNotFound)
            }
            let why = !isFolder.boolValue ? "it is not a folder"
                : access(directory, R_OK | X_OK) != 0 ? errorText() : "it cannot be listed"
            throw RegistryError(path: directory, reason: .folderUnreadable(why))
        }
        return names
            .filter { $0.hasSuffix(".so") && $0.hasPrefix(prefix) }
            .sorted()
            .map { URL(fileURLWithPath: directory).appendingPathComponent($0).path }
    }
}
