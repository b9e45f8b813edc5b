/// Why a shared object could not be loaded as a Regula plugin. The registry and other plugins are unaffected.
public struct PluginLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Reason: Sendable, Equatable {
        /// No file or directory at the path.
        case notFound
        /// The dynamic loader refused the file (not a shared object, missing dependency…); its words.
        case notLoadable(String)
        /// The file has no `regula_plugin_entry` function.
        case missingEntrySymbol
        /// The plugin was built against another major version of the contract.
        case incompatibleABI(pluginMajor: UInt32, pluginMinor: UInt32)
        /// The plugin's description breaks the contract; what is wrong.
        case malformed(String)
        /// The file or its folder could have been changed by someone other than this user or root.
        case untrusted(String)
        /// A rule of this plugin has a name another loaded rule already has.
        case duplicateRule(name: String, alreadyFrom: String)
    }

    /// The absolute path of the refused file.
    public let path: String
    /// Why it was refused.
    public let reason: Reason

    /// Creates an error for `path`.
    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    /// `cannot load plugin PATH: REASON`.
    public var description: String {
        let why = switch reason {
        case .notFound:
            "no such file"
        case .notLoadable(let words):
            "not a loadable shared object (\(words))"
        case .missingEntrySymbol:
            "it exports no function \"\(RegulaABISymbols.entry)\", so it is not a Regula plugin"
        case .incompatibleABI(let major, let minor):
            "built for Regula ABI \(major).\(minor), but this host speaks ABI \(RegulaABISymbols.major).x "
                + "(\(RegulaABISymbols.major).\(RegulaABISymbols.minor)); rebuild it against this host's regula.h"
        case .malformed(let problem):
            "malformed description: \(problem)"
        case .untrusted(let why):
            "refused because \(why); a plugin is code that runs inside this process"
        case .duplicateRule(let name, let other):
            "rule \(quoted(name)) is already provided by \(other)"
        }
        return "cannot load plugin \(path): \(why)"
    }
}
