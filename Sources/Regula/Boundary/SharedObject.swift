#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import RegulaABI

/// A shared object opened with `dlopen`: the only place the host touches the dynamic loader.
///
/// Opened with `RTLD_NOW | RTLD_LOCAL` (every symbol resolved up front, none leaking into other plugins) and
/// never closed: a plugin may contain Swift code, whose runtime metadata cannot be unloaded, and the rules it
/// provides may be in use anywhere in the process.
final class SharedObject: @unchecked Sendable {
    /// The absolute path it was opened from.
    let path: String
    private let handle: UnsafeMutableRawPointer

    private init(path: String, handle: UnsafeMutableRawPointer) {
        self.path = path
        self.handle = handle
    }

    /// Opens `path`, or throws the loader's own words.
    static func open(_ path: String) throws(PluginLoadError) -> SharedObject {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let words = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            // dlerror repeats the path first; keep only what follows it.
            let reason = words.hasPrefix(path + ": ") ? String(words.dropFirst(path.count + 2)) : words
            throw PluginLoadError(path: path, reason: .notLoadable(reason))
        }
        return SharedObject(path: path, handle: handle)
    }

    /// Calls the plugin's entry function and returns what it describes, or throws why it cannot.
    func pluginDescription() throws(PluginLoadError) -> UnsafePointer<regula_plugin>? {
        guard let symbol = dlsym(handle, RegulaABISymbols.entry) else {
            throw PluginLoadError(path: path, reason: .missingEntrySymbol)
        }
        let entry = unsafeBitCast(symbol, to: regula_plugin_entry_fn.self)
        return entry()
    }
}

/// The absolute, symlink-free path of the running executable (`/proc/self/exe`), which is the test bundle
/// under `swift test`. `CommandLine.arguments[0]` is not used: started from `PATH` it is a bare name.
func currentExecutablePath() -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard length > 0 else { return nil }
    return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
