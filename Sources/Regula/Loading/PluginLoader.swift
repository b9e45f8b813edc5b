import Foundation

/// Opens one shared object and turns it into checked ``Rule`` values, or says why it cannot.
package enum PluginLoader {
    /// The rules in the shared object at `path`, each well formed and with a name unique in the file.
    ///
    /// - Parameter probe: When given, a file not loaded in this process yet is first loaded in a probe
    ///   process, and refused if that process crashes, exits or hangs.
    static func rules(inFileAt path: String, probe: PluginProbe? = nil) throws(PluginLoadError) -> [Rule] {
        let given = URL(fileURLWithPath: path).standardizedFileURL
        guard FileManager.default.fileExists(atPath: given.path) else {
            throw PluginLoadError(path: given.path, reason: .notFound)
        }
        let absolute = resolved(path)
        let object = try SharedObject.open(absolute) { file throws(PluginLoadError) in try probe?.vet(file) }
        let rules = try DescriptionReader(object: object).rules(from: try object.pluginDescription())
        var problems = rules.flatMap(\.declarationProblems)
        problems += duplicates(in: rules.map(\.name)).map { "rule name \(quoted($0)) appears twice in this file" }
        if !problems.isEmpty {
            throw PluginLoadError(path: absolute, reason: .malformed(problems.joined(separator: "; ")))
        }
        return rules
    }

    /// Runs, on the file at `path`, only the checks made before the dynamic loader may see it (who could have
    /// written it, its ELF structure, its entry symbol), loading and running nothing. A test hook.
    package static func checkWithoutLoading(_ path: String) throws(PluginLoadError) {
        try SharedObject.checkBeforeLoading(resolved(path))
    }
}
