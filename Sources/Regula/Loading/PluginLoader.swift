import Foundation

/// Opens one shared object and turns it into checked ``Rule`` and ``NamedChain`` values, or says why it cannot.
enum PluginLoader {
    /// The rules and chains in the shared object at `path`, each well formed and with a name unique in the file.
    static func contents(inFileAt path: String) throws(PluginLoadError) -> DescriptionReader.Contents {
        let given = URL(fileURLWithPath: path).standardizedFileURL
        guard FileManager.default.fileExists(atPath: given.path) else {
            throw PluginLoadError(path: given.path, reason: .notFound)
        }
        let absolute = given.resolvingSymlinksInPath().path
        let object = try SharedObject.open(absolute)
        let contents = try DescriptionReader(object: object).contents(from: try object.pluginDescription())
        var problems = contents.rules.flatMap(\.declarationProblems) + contents.chains.flatMap(\.declarationProblems)
        problems += duplicates(in: contents.rules.map(\.name) + contents.chains.map(\.name))
            .map { "the name \(quoted($0)) appears twice in this file" }
        if !problems.isEmpty {
            throw PluginLoadError(path: absolute, reason: .malformed(problems.joined(separator: "; ")))
        }
        return contents
    }
}
