import Foundation

/// The rules an optimizer can select by name: the built-ins, plugins from directories, and rules defined
/// in Swift.
///
/// A registry is safe to use from several threads. Loading never takes the host down: a file that cannot
/// be loaded is refused with a ``PluginLoadError`` naming it, and everything else still loads.
///
/// ```swift
/// let registry = try RuleRegistry.standard()          // built-ins + REGULA_PLUGIN_PATH
/// try registry.loadPlugins(inDirectory: "/opt/my-rules")
/// let l1 = try registry.rule(named: "l1")
/// ```
public final class RuleRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var rulesByName: [String: Rule] = [:]
    private var failures: [PluginLoadError] = []
    /// Loads each plugin file in a separate process first, when set; see ``PluginProbe``.
    public let probe: PluginProbe?

    /// An empty registry; with `probe`, every plugin file is loaded in a probe process before this one.
    public init(probe: PluginProbe? = nil) {
        self.probe = probe
    }

    /// A registry with the built-in rules and every plugin in the folders of `REGULA_PLUGIN_PATH`.
    ///
    /// Plugins on the path that cannot be loaded, missing folders and relative entries (which are not
    /// searched) are listed in ``loadFailures``.
    /// - Throws: ``BuiltinRulesNotFound`` when the built-in shared objects are missing (the package was
    ///   not built with `swift build`).
    /// - Parameter conflict: What a plugin on the path does to a rule of the same name loaded before it
    ///   (a built-in, or one from an earlier folder): by default it is refused.
    /// - Parameter probe: Loads every plugin file in a probe process first (``PluginProbe``).
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment,
                                onConflict conflict: NameConflict = .refuse, probe: PluginProbe? = nil) throws -> RuleRegistry {
        let registry = RuleRegistry(probe: probe)
        try registry.loadBuiltins(environment: environment)
        registry.record(PluginSearchPath.ignoredEntries(environment: environment))
        for directory in PluginSearchPath.directories(environment: environment) {
            do {
                try registry.loadPlugins(inDirectory: directory, onConflict: conflict)
            } catch {
                registry.record([error])
            }
        }
        return registry
    }

    /// Every rule, by name.
    public var rules: [Rule] {
        lock.withLock { rulesByName.values.sorted { $0.name < $1.name } }
    }

    /// Every file refused so far, in the order it was met.
    public var loadFailures: [PluginLoadError] { lock.withLock { failures } }

    /// The rule called `name`.
    /// - Throws: ``OptimizerError/unknownRule(_:suggestion:available:)`` naming the rules there are.
    public func rule(named name: String) throws(OptimizerError) -> Rule {
        let (rule, names) = lock.withLock { (rulesByName[name], rulesByName.keys.sorted()) }
        guard let rule else {
            throw OptimizerError.unknownRule(name, suggestion: suggestion(for: name, among: names), available: names)
        }
        return rule
    }

    /// Loads the built-in rules from ``PluginSearchPath/builtinDirectory(environment:)``.
    @discardableResult
    public func loadBuiltins(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [Rule] {
        guard let directory = PluginSearchPath.builtinDirectory(environment: environment),
              let files = try? PluginSearchPath.pluginFiles(in: directory, prefix: PluginSearchPath.builtinPrefix),
              !files.isEmpty
        else { throw BuiltinRulesNotFound(directory: PluginSearchPath.builtinDirectory(environment: environment)) }
        probe?.probe(files)
        var loaded: [Rule] = []
        for file in files { loaded += try loadPlugin(at: file) }
        return loaded
    }

    /// Loads every rule of the shared object at `path`. A file already loaded into this registry (the same
    /// device and inode, under any path) is not loaded twice and adds nothing.
    ///
    /// - Parameter conflict: What to do when a rule's name is already taken: refuse the whole file (the
    ///   default), keep the rule already there, or replace it with the new one.
    /// - Returns: The rules it added.
    /// - Throws: ``PluginLoadError`` when the file is not a well-formed, trusted plugin of this ABI, or (with
    ///   `.refuse`) when one of its rule names is taken; the registry is then unchanged and the error is also
    ///   kept in ``loadFailures``.
    @discardableResult
    public func loadPlugin(at path: String, onConflict conflict: NameConflict = .refuse) throws(PluginLoadError) -> [Rule] {
        do {
            let rules = try PluginLoader.rules(inFileAt: path, probe: probe)
            return try add(rules, from: rules.first.map { "\($0.origin)" } ?? path, onConflict: conflict)
        } catch {
            record([error])
            throw error
        }
    }

    /// Loads every `.so` file in `directory`, in name order.
    ///
    /// - Returns: The files refused; each is also kept in ``loadFailures``. The others are loaded.
    /// - Throws: ``PluginLoadError`` naming the folder when it does not exist or cannot be read.
    @discardableResult
    public func loadPlugins(inDirectory directory: String, onConflict conflict: NameConflict = .refuse) throws(PluginLoadError) -> [PluginLoadError] {
        var refused: [PluginLoadError] = []
        let files = try PluginSearchPath.pluginFiles(in: directory)
        probe?.probe(files)
        for file in files {
            do { try loadPlugin(at: file, onConflict: conflict) } catch { refused.append(error) }
        }
        return refused
    }

    /// Adds a rule defined in Swift.
    /// - Throws: ``PluginLoadError/Reason/duplicateRule(name:alreadyFrom:)`` when the name is taken and
    ///   `conflict` is `.refuse`.
    public func register(_ rule: Rule, onConflict conflict: NameConflict = .refuse) throws(PluginLoadError) {
        _ = try add([rule], from: "\(rule.origin)", onConflict: conflict)
    }

    /// Stops offering every rule that came from the shared object at `path`.
    ///
    /// The code stays mapped (a shared object is never closed; see Docs/ABI.md), so "unloaded" means the
    /// registry no longer selects its rules; it can be loaded again later.
    /// - Returns: The names of the rules removed.
    /// - Throws: ``UnloadError`` when no rule came from that file or an optimizer still uses one of them; the
    ///   registry is then unchanged.
    @discardableResult
    public func unloadPlugin(at path: String) throws(UnloadError) -> [String] {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        lock.lock()
        defer { lock.unlock() }
        let rules = rulesByName.values.filter { $0.origin == .sharedObject(path: absolute) }.sorted { $0.name < $1.name }
        guard !rules.isEmpty else { throw .notLoaded(path: absolute) }
        for rule in rules where rule.kernel.usage.count > 0 {
            throw .inUse(rule: rule.name, optimizers: rule.kernel.usage.count, path: absolute)
        }
        for rule in rules { rulesByName[rule.name] = nil }
        return rules.map(\.name)
    }

    private func add(_ rules: [Rule], from source: String, onConflict conflict: NameConflict) throws(PluginLoadError) -> [Rule] {
        lock.lock()
        defer { lock.unlock() }
        var added: [Rule] = []
        // A rule of the same file met again (it carries the path the file was first loaded from) is already here.
        let rules = rules.filter { rule in
            guard case .sharedObject = rule.origin else { return true }
            return rulesByName[rule.name]?.origin != rule.origin
        }
        for rule in rules {
            if let existing = rulesByName[rule.name], conflict == .refuse {
                throw PluginLoadError(path: source, reason: .duplicateRule(name: rule.name, alreadyFrom: "\(existing.origin)"))
            }
        }
        for rule in rules where rulesByName[rule.name] == nil || conflict == .replaceExisting {
            rulesByName[rule.name] = rule
            added.append(rule)
        }
        return added
    }

    private func record(_ errors: [PluginLoadError]) {
        lock.withLock { failures += errors }
    }
}

/// What a registry does when a new rule's name is already taken.
public enum NameConflict: Sendable {
    /// Refuse the new file (or Swift rule) with an error naming both sources.
    case refuse
    /// Keep the rule already registered; skip the new one.
    case keepExisting
    /// Replace the registered rule with the new one (optimizers already built keep the one they have).
    case replaceExisting
}

/// Why a plugin could not be unloaded.
public enum UnloadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No registered rule came from this file.
    case notLoaded(path: String)
    /// A rule from the file is part of a live optimizer's chain.
    case inUse(rule: String, optimizers: Int, path: String)

    /// What was refused and why.
    public var description: String {
        switch self {
        case .notLoaded(let path):
            "cannot unload \(path): no rule of this registry came from it"
        case .inUse(let rule, let optimizers, let path):
            "cannot unload \(path): rule \(quoted(rule)) is used by \(optimizers) optimizer\(optimizers == 1 ? "" : "s"); "
                + "release them first"
        }
    }
}

/// The built-in rules' shared objects were not where the host looks for them.
public struct BuiltinRulesNotFound: Error, Sendable, CustomStringConvertible {
    /// The folder searched, if one could be determined.
    public let directory: String?
    /// What was searched and what to run.
    public var description: String {
        "built-in rules not found: no \(PluginSearchPath.builtinPrefix)*.so in \(directory ?? "the executable's folder"). "
            + "Build them with `swift build` (`swift run` builds only the executable), "
            + "or set \(PluginSearchPath.builtinVariable) to the folder that holds them."
    }
}
