import Foundation

/// Why a ``RuleRegistry`` refused something: a shared object that could not be loaded as a Regula plugin, a
/// rule or chain defined in Swift whose name is taken or whose declaration is malformed, a plugin folder or
/// search-path entry that was skipped, or built-in rules that are nowhere to be found. The registry and the
/// rules already in it are unaffected.
///
/// Every call of the registry that can fail throws this type, and an ``Optimizer`` built without a registry
/// passes it on inside ``OptimizerError/rulesUnavailable(_:)``.
public struct RegistryError: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    /// What went wrong.
    public enum Reason: Sendable, Equatable, Codable {
        /// No file or directory at the path.
        case notFound
        /// The file cannot be opened, is not a regular file, or the dynamic loader refused it (a missing
        /// dependency, …); the words say which.
        case notLoadable(String)
        /// The file is not a well-formed ELF shared object for this host (truncated, damaged, another machine's),
        /// found by the checks made before the dynamic loader sees it; what is wrong and where.
        case invalidSharedObject(String)
        /// Loading the file in a separate probe process crashed it, ended it or did not finish in time, so the
        /// file was never loaded into this one; what happened.
        case probeFailed(String)
        /// The file has no `regula_plugin_entry` function.
        case missingEntrySymbol
        /// The plugin was built against another major version of the contract.
        case incompatibleABI(pluginMajor: UInt32, pluginMinor: UInt32)
        /// The plugin's description breaks the contract; what is wrong.
        case malformed(String)
        /// The file or a folder above it could have been changed by someone other than this user or root.
        case untrusted(String)
        /// A rule of this plugin has a name another loaded rule already has.
        case duplicateRule(name: String, alreadyFrom: String)
        /// A plugin folder that does not exist.
        case folderNotFound
        /// A plugin folder that cannot be listed; why.
        case folderUnreadable(String)
        /// An entry of `REGULA_PLUGIN_PATH` that is not an absolute path, and so was not searched.
        case relativeSearchPathEntry
        /// No folder the host searches holds the built-in rules: the folders searched, in order, and whether
        /// the only one came from `REGULA_BUILTIN_DIR`. ``RegistryError/path`` is the first of them.
        case builtinsNotFound(searched: [String], fromEnvironment: Bool)
    }

    /// The absolute path of the refused file or folder, or the search-path entry as written.
    public let path: String
    /// Why it was refused.
    public let reason: Reason

    /// Creates an error for `path`.
    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    /// The error for built-in rules found in none of the folders searched with `environment`.
    public static func builtinsNotFound(environment: [String: String] = ProcessInfo.processInfo.environment) -> RegistryError {
        let searched = PluginSearchPath.builtinSearchFolders(environment: environment)
        return RegistryError(path: searched.first ?? "", reason: .builtinsNotFound(
            searched: searched, fromEnvironment: !(environment[PluginSearchPath.builtinVariable] ?? "").isEmpty))
    }

    /// Whether a plugin file was refused (rather than a folder or search-path entry skipped, or the built-ins
    /// missing).
    public var refusesAFile: Bool {
        switch reason {
        case .folderNotFound, .folderUnreadable, .relativeSearchPathEntry, .builtinsNotFound: false
        default: true
        }
    }

    /// `cannot load plugin PATH: REASON`, `plugin folder PATH does not exist`, `cannot read plugin folder PATH:
    /// REASON`, `ignored REGULA_PLUGIN_PATH entry "ENTRY": REASON`, or `built-in rules not found: …` with
    /// every folder searched and the ways to put the rules where they are found.
    public var description: String {
        let why: String
        switch reason {
        case .builtinsNotFound(let searched, let fromEnvironment):
            let rules = "\(PluginSearchPath.builtinPrefix)*.so"
            if fromEnvironment {
                return "built-in rules not found: no \(rules) in \(searched.joined()), the folder "
                    + "\(PluginSearchPath.builtinVariable) names; point it at a folder that holds them, or unset it "
                    + "to search the usual places (Docs/Installing.md lists them)"
            }
            return "built-in rules not found: no \(rules) in any of " + searched.joined(separator: ", ") + ". "
                + "A program built by SwiftPM against Regula has them in \(PluginSearchPath.resourceBundleName) beside "
                + "it: copy that folder along with the program, or put them in a standard place with "
                + "`regula install --prefix DIR` (DIR/lib/regula), or set \(PluginSearchPath.builtinVariable) to a folder "
                + "that holds them"
        case .folderNotFound:
            return "plugin folder \(path) does not exist"
        case .folderUnreadable(let words):
            return "cannot read plugin folder \(path): \(words)"
        case .relativeSearchPathEntry:
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            return "ignored \(PluginSearchPath.pathVariable) entry \(quoted(path)): it is not an absolute path, and the "
                + "plugin path is never searched relative to the current folder; write it as \(absolute) to mean the "
                + "folder here"
        case .notFound:
            why = "no such file"
        case .notLoadable(let words):
            why = "not a loadable shared object (\(words))"
        case .invalidSharedObject(let words):
            why = "not a well-formed shared object for this host: \(words). It was refused before the dynamic loader saw it"
        case .probeFailed(let words):
            why = "\(words); it was not loaded into this process"
        case .missingEntrySymbol:
            why = "it exports no function \"\(RegulaABISymbols.entry)\", so it is not a Regula plugin"
        case .incompatibleABI(let major, let minor):
            why = "built for Regula ABI \(major).\(minor), but this host speaks ABI \(RegulaABISymbols.major).x "
                + "(\(RegulaABISymbols.major).\(RegulaABISymbols.minor)); rebuild it against this host's regula.h"
        case .malformed(let problem):
            why = "malformed description: \(problem)"
        case .untrusted(let words):
            why = "refused because \(words); a plugin is code that runs inside this process"
        case .duplicateRule(let name, let other):
            why = "rule \(quoted(name)) is already provided by \(other)"
        }
        return "cannot load plugin \(path): \(why)"
    }
}

/// The name ``RegistryError`` had before it covered rules defined in Swift and the built-ins' absence.
@available(*, deprecated, renamed: "RegistryError")
public typealias PluginLoadError = RegistryError
