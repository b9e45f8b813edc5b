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

    /// An empty registry.
    public init() {}

    /// A registry with the built-in rules and every plugin in the folders of `REGULA_PLUGIN_PATH`.
    ///
    /// Plugins on the path that cannot be loaded are listed in ``loadFailures``.
    /// - Throws: ``BuiltinRulesNotFound`` when the built-in shared objects are missing (the package was
    ///   not built with `swift build`).
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> RuleRegistry {
        let registry = RuleRegistry()
        try registry.loadBuiltins(environment: environment)
        for directory in PluginSearchPath.directories(environment: environment) {
            do {
                try registry.loadPlugins(inDirectory: directory)
            } catch {
                registry.record([PluginLoadError(path: directory, reason: .notLoadable("\(error)"))])
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
        var loaded: [Rule] = []
        for file in files { loaded += try loadPlugin(at: file) }
        return loaded
    }

    /// Loads every rule of the shared object at `path`, all or none.
    ///
    /// - Returns: The rules it added.
    /// - Throws: ``PluginLoadError`` when the file is not a well-formed plugin of this ABI or one of its rule
    ///   names is taken; the registry is then unchanged and the error is also kept in ``loadFailures``.
    @discardableResult
    public func loadPlugin(at path: String) throws(PluginLoadError) -> [Rule] {
        do {
            let rules = try PluginLoader.rules(inFileAt: path)
            try add(rules, from: rules.first.map { "\($0.origin)" } ?? path)
            return rules
        } catch {
            record([error])
            throw error
        }
    }

    /// Loads every `.so` file in `directory`, in name order.
    ///
    /// - Returns: The files refused; each is also kept in ``loadFailures``. The others are loaded.
    /// - Throws: When the directory cannot be read at all.
    @discardableResult
    public func loadPlugins(inDirectory directory: String) throws -> [PluginLoadError] {
        var refused: [PluginLoadError] = []
        for file in try PluginSearchPath.pluginFiles(in: directory) {
            do { try loadPlugin(at: file) } catch { refused.append(error) }
        }
        return refused
    }

    /// Adds a rule defined in Swift.
    /// - Throws: ``PluginLoadError/Reason/duplicateRule(name:alreadyFrom:)`` when the name is taken.
    public func register(_ rule: Rule) throws(PluginLoadError) {
        try add([rule], from: "\(rule.origin)")
    }

    private func add(_ rules: [Rule], from source: String) throws(PluginLoadError) {
        lock.lock()
        defer { lock.unlock() }
        for rule in rules {
            if let existing = rulesByName[rule.name] {
                throw PluginLoadError(path: source, reason: .duplicateRule(name: rule.name, alreadyFrom: "\(existing.origin)"))
            }
        }
        for rule in rules { rulesByName[rule.name] = rule }
    }

    private func record(_ errors: [PluginLoadError]) {
        lock.withLock { failures += errors }
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
