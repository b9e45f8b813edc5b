#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CRegulaShims
import Foundation
import RegulaABI

/// A shared object opened with `dlopen`: the only place the host touches the dynamic loader.
///
/// Opened with `RTLD_NOW | RTLD_LOCAL` (every symbol resolved up front, none leaking into other plugins) and
/// never closed: a plugin may contain Swift code, whose runtime metadata cannot be unloaded, and the rules it
/// provides may be in use anywhere in the process.
///
/// The loader is handed `/proc/self/fd/N`, and glibc recognises an object it already loaded by that name, so
/// the descriptor of every loaded object stays open for the life of the process (its number is never reused
/// for another plugin), and a file opened again is matched by device and inode to the object already open.
final class SharedObject: @unchecked Sendable {
    private struct FileIdentity: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var opened: [FileIdentity: SharedObject] = [:]

    /// The absolute path it was opened from.
    let path: String
    private let handle: UnsafeMutableRawPointer

    private init(path: String, handle: UnsafeMutableRawPointer) {
        self.path = path
        self.handle = handle
    }

    /// Opens the plugin at `path` (absolute, symlinks already resolved) after checking who may have changed it.
    ///
    /// The file is opened with `O_NOFOLLOW` and checked through that descriptor (a regular file, owned by this
    /// user or root, writable by nobody else), its folder is checked likewise, and the loader is then handed
    /// `/proc/self/fd/N`: the file checked is the file loaded, even if the path is swapped in between.
    static func open(_ path: String) throws(PluginLoadError) -> SharedObject {
        let descriptor = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw PluginLoadError(path: path, reason: .notLoadable("cannot open it: \(reason)"))
        }
        var keepDescriptor = false
        defer { if !keepDescriptor { close(descriptor) } }
        var file = stat()
        guard fstat(descriptor, &file) == 0 else {
            throw PluginLoadError(path: path, reason: .notLoadable("cannot stat it: \(String(cString: strerror(errno)))"))
        }
        guard file.st_mode & S_IFMT == S_IFREG else {
            throw PluginLoadError(path: path, reason: .notLoadable("it is not a regular file"))
        }
        try checkTrust(of: file, what: "the file", path: path)
        let folder = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        var directory = stat()
        if stat(folder.isEmpty ? "/" : folder, &directory) == 0 {
            try checkTrust(of: directory, what: "its folder \(folder.isEmpty ? "/" : folder)", path: path)
        }
        let identity = FileIdentity(device: UInt64(file.st_dev), inode: UInt64(file.st_ino))
        lock.lock()
        defer { lock.unlock() }
        if let existing = opened[identity] { return existing }
        let procPath = "/proc/self/fd/\(descriptor)"
        guard let handle = dlopen(procPath, RTLD_NOW | RTLD_LOCAL) else {
            let words = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            // dlerror repeats the path it was given first; keep only what follows it.
            let reason = words.hasPrefix(procPath + ": ") ? String(words.dropFirst(procPath.count + 2)) : words
            throw PluginLoadError(path: path, reason: .notLoadable(reason))
        }
        keepDescriptor = true
        let object = SharedObject(path: path, handle: handle)
        opened[identity] = object
        return object
    }

    /// Refuses what anyone but this user or root could have written, as ssh's StrictModes does.
    private static func checkTrust(of status: stat, what: String, path: String) throws(PluginLoadError) {
        let owner = status.st_uid
        guard owner == getuid() || owner == 0 else {
            throw PluginLoadError(path: path, reason: .untrusted(
                "\(what) is owned by user \(owner), neither you (\(getuid())) nor root"))
        }
        let writableByOthers = status.st_mode & (S_IWGRP | S_IWOTH)
        guard writableByOthers == 0 else {
            let who = status.st_mode & S_IWOTH != 0 ? "anyone" : "its group"
            throw PluginLoadError(path: path, reason: .untrusted(
                "\(what) is writable by \(who) (mode \(String(status.st_mode & 0o7777, radix: 8))); "
                    + "allowed: writable by its owner only, e.g. chmod go-w"))
        }
    }

    /// Calls the plugin's entry function and returns what it describes, or throws why it cannot.
    func pluginDescription() throws(PluginLoadError) -> UnsafePointer<regula_plugin>? {
        guard let symbol = dlsym(handle, RegulaABISymbols.entry) else {
            throw PluginLoadError(path: path, reason: .missingEntrySymbol)
        }
        // Exporting the description itself as a data symbol is the classic mistake; calling data would crash.
        guard regula_symbol_kind(symbol) != 0 else {
            throw PluginLoadError(path: path, reason: .malformed(
                "\(RegulaABISymbols.entry) is data, not a function; export a function that returns the description "
                    + "(REGULA_EXPORT_PLUGIN does)"))
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
