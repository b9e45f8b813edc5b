import Foundation

/// The rules an optimizer can select by name: the built-ins, plugins from directories, and rules defined
/// in Swift.
///
/// A registry is safe to use from several threads. Loading never takes the host down: a file that cannot
/// be loaded is refused with a ``RegistryError`` naming it, and everything else still loads.
///
/// ```swift
/// let registry = try RuleRegistry.standard()          // built-ins + REGULA_PLUGIN_PATH
/// try registry.loadPlugins(inDirectory: "/opt/my-rules")
/// let l1 = try registry.rule(named: "l1")
/// ```
public final class RuleRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var rulesByName: [String: Rule] = [:]
    private var chainsByName: [String: NamedChain] = [:]
    private var failures: [RegistryError] = []
    /// Loads each plugin file in a separate process first, when set; see ``PluginProbe``.
    public let probe: PluginProbe?
    /// Whether plugin files are only described by the probe, never loaded here (``init(describingWith:)``).
    public let describesOnly: Bool

    /// An empty registry; with `probe`, every plugin file is loaded in a probe process before this one.
    public init(probe: PluginProbe? = nil) {
        self.probe = probe
        describesOnly = false
    }

    /// An empty registry that runs no plugin code in this process: each plugin file is loaded only in a probe
    /// process, which reports what the file declares.
    ///
    /// Its rules and chains can be listed, looked up and shown, and its refusals are those a loading registry
    /// makes, but an ``Optimizer`` refuses its rules (``OptimizerError/ruleOnlyDescribed(_:origin:)``). This
    /// is the registry for a program that shows plugins without running them (`regula list` and `inspect`):
    /// whatever a file's code would do to a process, it does to the probe.
    public init(describingWith probe: PluginProbe) {
        self.probe = probe
        describesOnly = true
    }

    /// A registry with the built-in rules and every plugin in the folders of `REGULA_PLUGIN_PATH`.
    ///
    /// Plugins on the path that cannot be loaded, missing folders and relative entries (which are not
    /// searched) are listed in ``loadFailures``.
    /// - Throws: ``RegistryError`` (``RegistryError/Reason/builtinsNotFound(searched:fromEnvironment:)``) when no
    ///   folder the host searches holds the built-in shared objects, or when a built-in cannot be loaded.
    /// - Parameters:
    ///   - environment: Where `REGULA_BUILTIN_DIR`, `REGULA_PLUGIN_PATH` and `HOME` are read.
    ///   - conflict: What a plugin on the path does to a rule of the same name loaded before it
    ///     (a built-in, or one from an earlier folder): by default it is refused.
    ///   - probe: Loads every plugin file in a probe process first (``PluginProbe``).
    ///   - describingOnly: With a probe, take what each file declares from the probe and load nothing here
    ///     (``init(describingWith:)``).
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment,
                                onConflict conflict: NameConflict = .refuse, probe: PluginProbe? = nil,
                                describingOnly: Bool = false) throws(RegistryError) -> RuleRegistry {
        let registry = probe.map { describingOnly ? RuleRegistry(describingWith: $0) : RuleRegistry(probe: $0) } ?? RuleRegistry()
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

    /// Every named chain, by name.
    public var chains: [NamedChain] {
        lock.withLock { chainsByName.values.sorted { $0.name < $1.name } }
    }

    /// The named chain called `name`, if there is one.
    public func chain(named name: String) -> NamedChain? {
        lock.withLock { chainsByName[name] }
    }

    /// Every file refused so far, in the order it was met.
    public var loadFailures: [RegistryError] { lock.withLock { failures } }

    /// The rule called `name`.
    /// - Throws: ``OptimizerError/unknownRule(_:suggestion:available:isChain:)`` naming the rules there are.
    public func rule(named name: String) throws(OptimizerError) -> Rule {
        let (rule, names) = lock.withLock { (rulesByName[name], rulesByName.keys.sorted()) }
        guard let rule else {
            if chain(named: name) != nil {
                throw OptimizerError.unknownRule(name, suggestion: nil, available: names, isChain: true)
            }
            throw OptimizerError.unknownRule(name, suggestion: suggestion(for: name, among: names), available: names)
        }
        return rule
    }

    /// The rules an optimizer built with `names` runs: each name a rule, or a named chain that stands for its
    /// rules (`["l1", "lamb"]` gives `l1, scale_by_adam, add_decayed_weights, scale_by_trust_ratio, sgd`).
    /// - Throws: ``OptimizerError`` naming an unknown name (with a suggestion), or a chain whose rule is missing.
    public func rules(for names: [String]) throws(OptimizerError) -> [Rule] {
        try expand(names).rules
    }

    /// The rules an optimizer runs for `names`, each a rule or a named chain (which stands for its rules), and
    /// the defaults the chains among them give, earlier chains first.
    /// - Throws: ``OptimizerError`` naming an unknown name (with a suggestion), or a chain whose rule is missing.
    func expand(_ names: [String]) throws(OptimizerError) -> (rules: [Rule], defaults: [String: Double]) {
        let (rules, chains) = lock.withLock { (rulesByName, chainsByName) }
        var expanded: [Rule] = []
        var defaults: [String: Double] = [:]
        for name in names {
            if let rule = rules[name] {
                expanded.append(rule)
            } else if let chain = chains[name] {
                for ruleName in chain.rules {
                    guard let rule = rules[ruleName] else {
                        throw .chainRuleNotFound(chain: chain.name, rule: ruleName, origin: "\(chain.origin)")
                    }
                    expanded.append(rule)
                }
                for (option, value) in chain.defaults where defaults[option] == nil { defaults[option] = value }
            } else {
                let known = (Array(rules.keys) + Array(chains.keys)).sorted()
                throw .unknownRule(name, suggestion: suggestion(for: name, among: known), available: known)
            }
        }
        return (expanded, defaults)
    }

    /// Loads the built-in rules from ``PluginSearchPath/builtinDirectory(environment:)``.
    /// - Throws: ``RegistryError``: the built-ins are nowhere to be found, or one of them cannot be loaded.
    @discardableResult
    public func loadBuiltins(environment: [String: String] = ProcessInfo.processInfo.environment) throws(RegistryError) -> [Rule] {
        guard let directory = PluginSearchPath.builtinDirectory(environment: environment),
              let files = try? PluginSearchPath.pluginFiles(in: directory, prefix: PluginSearchPath.builtinPrefix),
              !files.isEmpty
        else { throw RegistryError.builtinsNotFound(environment: environment) }
        probe?.probe(files)
        var loaded: [Rule] = []
        for file in files { loaded += try loadPlugin(at: file) }
        return loaded
    }

    /// Loads every rule of the shared object at `path`. A file already loaded into this registry (the same
    /// device and inode, under any path) is not loaded twice and adds nothing.
    ///
    /// - Parameters:
    ///   - path: The shared object, absolute or relative to the current folder.
    ///   - conflict: What to do when a rule's name is already taken: refuse the whole file (the
    ///     default), keep the rule already there, or replace it with the new one.
    /// - Returns: The rules it added.
    /// - Throws: ``RegistryError`` when the file is not a well-formed, trusted plugin of this ABI, or (with
    ///   `.refuse`) when one of its rule names is taken; the registry is then unchanged and the error is also
    ///   kept in ``loadFailures``.
    @discardableResult
    public func loadPlugin(at path: String, onConflict conflict: NameConflict = .refuse) throws(RegistryError) -> [Rule] {
        do {
            let contents = try PluginLoader.contents(inFileAt: path, probe: probe, describing: describesOnly)
            let source = contents.rules.first.map { "\($0.origin)" } ?? contents.chains.first.map { "\($0.origin)" } ?? path
            return try add(contents.rules, chains: contents.chains, from: source, onConflict: conflict)
        } catch {
            record([error])
            throw error
        }
    }

    /// Loads every `.so` file in `directory`, in name order.
    ///
    /// - Returns: The files refused; each is also kept in ``loadFailures``. The others are loaded.
    /// - Throws: ``RegistryError`` naming the folder when it does not exist or cannot be read.
    @discardableResult
    public func loadPlugins(inDirectory directory: String, onConflict conflict: NameConflict = .refuse) throws(RegistryError) -> [RegistryError] {
        var refused: [RegistryError] = []
        let files = try PluginSearchPath.pluginFiles(in: directory)
        probe?.probe(files)
        for file in files {
            do { try loadPlugin(at: file, onConflict: conflict) } catch { refused.append(error) }
        }
        return refused
    }

    /// Adds a rule defined in Swift.
    /// - Throws: ``RegistryError/Reason/duplicateRule(name:alreadyFrom:)`` when the name is taken and
    ///   `conflict` is `.refuse`.
    public func register(_ rule: Rule, onConflict conflict: NameConflict = .refuse) throws(RegistryError) {
        _ = try add([rule], chains: [], from: "\(rule.origin)", onConflict: conflict)
    }

    /// Adds a named chain defined in Swift. Its rules are looked up when an optimizer uses it.
    /// - Throws: ``RegistryError`` when the chain is malformed, or when its name is taken (by a rule or a
    ///   chain) and `conflict` is `.refuse`.
    public func register(_ chain: NamedChain, onConflict conflict: NameConflict = .refuse) throws(RegistryError) {
        let problems = chain.declarationProblems
        guard problems.isEmpty else {
            throw RegistryError(path: "\(chain.origin)", reason: .malformed(problems.joined(separator: "; ")))
        }
        _ = try add([], chains: [chain], from: "\(chain.origin)", onConflict: conflict)
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
        let origin = Rule.Origin.sharedObject(path: absolute)
        let rules = rulesByName.values.filter { $0.origin == origin }.sorted { $0.name < $1.name }
        let chains = chainsByName.values.filter { $0.origin == origin }.map(\.name).sorted()
        guard !rules.isEmpty || !chains.isEmpty else { throw .notLoaded(path: absolute) }
        for rule in rules where rule.kernel.usage.count > 0 {
            throw .inUse(rule: rule.name, optimizers: rule.kernel.usage.count, path: absolute)
        }
        for rule in rules { rulesByName[rule.name] = nil }
        for chain in chains { chainsByName[chain] = nil }
        return rules.map(\.name) + chains
    }

    /// Adds rules and chains from one source, all or nothing. Rules and chains share one namespace.
    private func add(_ rules: [Rule], chains: [NamedChain], from source: String,
                     onConflict conflict: NameConflict) throws(RegistryError) -> [Rule] {
        lock.lock()
        defer { lock.unlock() }
        func existing(_ name: String) -> String? {
            rulesByName[name].map { "\($0.origin)" } ?? chainsByName[name].map { "\($0.origin)" }
        }
        // A rule or chain of the same file met again (it carries the path the file was first loaded from) is
        // already here.
        let rules = rules.filter { rule in
            guard case .sharedObject = rule.origin else { return true }
            return rulesByName[rule.name]?.origin != rule.origin
        }
        let chains = chains.filter { chain in
            guard case .sharedObject = chain.origin else { return true }
            return chainsByName[chain.name]?.origin != chain.origin
        }
        if conflict == .refuse {
            for name in rules.map(\.name) + chains.map(\.name) {
                if let other = existing(name) {
                    throw RegistryError(path: source, reason: .duplicateRule(name: name, alreadyFrom: other))
                }
            }
        }
        var added: [Rule] = []
        for rule in rules where existing(rule.name) == nil || conflict == .replaceExisting {
            chainsByName[rule.name] = nil
            rulesByName[rule.name] = rule
            added.append(rule)
        }
        for chain in chains where existing(chain.name) == nil || conflict == .replaceExisting {
            rulesByName[chain.name] = nil
            chainsByName[chain.name] = chain
        }
        return added
    }

    private func record(_ errors: [RegistryError]) {
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

extension RuleRegistry {
    /// Guards ``sharedRegistry``. An `NSLock` (a pthread mutex) rather than `Synchronization.Mutex`: the
    /// thread sanitizer sees a pthread mutex's ordering, not the futex under `Mutex` on Linux.
    private static let sharedLock = NSLock()
    /// The registry ``shared()`` built, once it has; read and written only under ``sharedLock``.
    nonisolated(unsafe) private static var sharedRegistry: RuleRegistry?

    /// The process-wide registry: ``RuleRegistry/standard(environment:onConflict:probe:describingOnly:)`` built once, on first use.
    /// - Throws: ``RegistryError`` if the built-ins are missing (and tries again next time).
    public static func shared() throws(RegistryError) -> RuleRegistry {
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if let sharedRegistry { return sharedRegistry }
        let registry = try standard()
        sharedRegistry = registry
        return registry
    }
}
