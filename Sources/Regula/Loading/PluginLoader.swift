// Loading/ is everything between a path and a plugin's checked rules: search paths, the trust and ELF checks,
// the sealed copy, probe processes, dlopen, reading the description; every refusal is a RegistryError. It
// uses Boundary/ (the ABI's constants, RuleKernel) to hand the rules over; Boundary/ does not use it.
import Foundation

/// Opens one shared object and turns it into checked ``Rule`` and ``NamedChain`` values, or says why it cannot.
enum PluginLoader {
    /// The rules and chains in the shared object at `path`, each well formed and with a name unique in the file.
    ///
    /// - Parameters:
    ///   - probe: When given, a file not loaded in this process yet is first loaded in a probe process, and
    ///     refused if that process crashes, exits or hangs.
    ///   - describing: Take what the file declares from the probe process and load nothing here; the rules
    ///     returned can be shown but not run. Needs a probe.
    static func contents(inFileAt path: String, probe: PluginProbe? = nil, describing: Bool = false) throws(RegistryError) -> DescriptionReader.Contents {
        let given = URL(fileURLWithPath: path).standardizedFileURL
        guard FileManager.default.fileExists(atPath: given.path) else {
            throw RegistryError(path: given.path, reason: .notFound)
        }
        let absolute = resolved(path)
        if describing, let probe {
            return try probe.describe(try SharedObject.checkBeforeLoading(absolute))
        }
        let object = try SharedObject.open(absolute) { file throws(RegistryError) in try probe?.vet(file) }
        let contents = try DescriptionReader(object: object).contents(from: try object.pluginDescription())
        var problems = contents.rules.flatMap(\.declarationProblems) + contents.chains.flatMap(\.declarationProblems)
        problems += duplicates(in: contents.rules.map(\.name) + contents.chains.map(\.name))
            .map { "the name \(quoted($0)) appears twice in this file" }
        if !problems.isEmpty {
            throw RegistryError(path: absolute, reason: .malformed(problems.joined(separator: "; ")))
        }
        return contents
    }

    /// Runs, on the file at `path`, only the checks made before the dynamic loader may see it (who could have
    /// written it, its ELF structure, its entry symbol), loading and running nothing. A test hook.
    static func checkWithoutLoading(_ path: String) throws(RegistryError) {
        try SharedObject.checkBeforeLoading(resolved(path))
    }
}
