import Foundation

/// Where plugins are looked for.
///
/// Built-in rules are the shared objects named `libRegulaRule*.so` in the first of the
/// ``builtinSearchFolders(environment:)`` that has them. `REGULA_PLUGIN_PATH` lists more
/// folders, separated by colons; empty and relative entries are dropped, so the current directory is never
/// searched by accident. Within a folder, files ending in `.so` load in name order.
public enum PluginSearchPath {
    /// The environment variable listing plugin folders.
    public static let pathVariable = "REGULA_PLUGIN_PATH"

    /// The absolute folders named by `REGULA_PLUGIN_PATH`, in order.
    public static func directories(environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        (environment[pathVariable] ?? "").split(separator: ":").map(String.init).filter { $0.hasPrefix("/") }
    }

    /// The plugin files in `directory`, in name order; those whose name starts with `prefix` if one is given.
    /// - Throws: ``PluginLoadError`` naming the folder when it cannot be read.
    static func pluginFiles(in directory: String, prefix: String = "") throws(PluginLoadError) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            var isFolder: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: directory, isDirectory: &isFolder)
            let why = !exists ? "no such folder" : !isFolder.boolValue ? "it is not a folder" : "it cannot be read"
            throw PluginLoadError(path: directory, reason: .notLoadable("cannot list plugin folder: \(why)"))
        }
        return names
            .filter { $0.hasSuffix(".so") && $0.hasPrefix(prefix) }
            .sorted()
            .map { URL(fileURLWithPath: directory).appendingPathComponent($0).path }
    }
}
