#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CRegulaShims
import Foundation
import RegulaABI
import SystemPackage

/// A shared object opened with `dlopen`: the only place the host touches the dynamic loader.
///
/// Before the loader sees a file, it is opened and its writers checked (``PluginFile``), its ELF structure is
/// checked (``ELFCheck``), and the caller may vet it further (a probe in another process). Whether it exports
/// `regula_plugin_entry` as a function is asked of the loader, once, in ``pluginDescription()``. Opened with
/// `RTLD_NOW | RTLD_LOCAL` (every symbol resolved up front, none leaking into other plugins) and never
/// closed: a plugin may contain Swift code, whose runtime metadata cannot be unloaded, and the rules it
/// provides may be in use anywhere in the process.
///
/// The loader is handed `/proc/self/fd/N`, and glibc recognises an object it already loaded by that name, so
/// the descriptor of every loaded object stays open for the life of the process (its number is never reused
/// for another plugin), and a file opened again is matched by device and inode to the object already open.
final class SharedObject: @unchecked Sendable {
    private struct FileIdentity: Hashable {
        let device: UInt64
        let inode: UInt64
        init(_ stamp: FileStamp) { (device, inode) = (stamp.device, stamp.inode) }
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var opened: [FileIdentity: SharedObject] = [:]
    nonisolated(unsafe) private static var loadOrder: [(path: String, stamp: FileStamp, fingerprint: UInt64)] = []

    /// Every file loaded in this process, in the order it was loaded, with its version when it was.
    static var loadedFiles: [(path: String, stamp: FileStamp)] { lock.withLock { loadOrder.map { ($0.path, $0.stamp) } } }

    /// The fingerprint of the bytes loaded from `path` (absolute, symlinks resolved), if a file was loaded from
    /// there: what a probe process tells its parent it loaded.
    static func fingerprint(ofLoaded path: String) -> UInt64? {
        lock.withLock { loadOrder.last { $0.path == path }?.fingerprint }
    }

    /// The absolute path it was first opened from.
    let path: String
    private let handle: UnsafeMutableRawPointer

    private init(path: String, handle: UnsafeMutableRawPointer) {
        self.path = path
        self.handle = handle
    }

    /// Opens the plugin at `path` (absolute, symlinks already resolved), or returns the object already loaded
    /// from the same file (same device and inode).
    ///
    /// A file not loaded yet must pass, in order: the checks of ``PluginFile/open(_:)`` on who could have
    /// written it, the ELF checks, and `vet`; only then is the
    /// loader handed `/proc/self/fd/N`, so the file checked is the file loaded, even if the path is swapped.
    static func open(_ path: String, vet: (PluginFile) throws(RegistryError) -> Void) throws(RegistryError) -> SharedObject {
        let file = try PluginFile.open(path)
        let identity = FileIdentity(file.stamp)
        if let existing = lock.withLock({ opened[identity] }) { return existing }
        try ELFCheck.check(file)
        try vet(file)
        lock.lock()
        defer { lock.unlock() }
        if let existing = opened[identity] { return existing }
        let procPath = "/proc/self/fd/\(file.descriptor)"
        guard let handle = dlopen(procPath, RTLD_NOW | RTLD_LOCAL) else {
            let words = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            // dlerror repeats the path it was given first; keep only what follows it.
            let reason = words.hasPrefix(procPath + ": ") ? String(words.dropFirst(procPath.count + 2)) : words
            throw RegistryError(path: path, reason: .notLoadable(reason))
        }
        file.keepOpen()
        let object = SharedObject(path: path, handle: handle)
        opened[identity] = object
        loadOrder.append((path, file.stamp, file.fingerprint))
        return object
    }

    /// Runs the checks made before the loader may see the file at `path` (absolute, symlinks resolved): who
    /// could have written it and its ELF structure. Nothing of the file is loaded or run.
    /// - Returns: The file, open, as it was checked.
    @discardableResult
    static func checkBeforeLoading(_ path: String) throws(RegistryError) -> PluginFile {
        let file = try PluginFile.open(path)
        try ELFCheck.check(file)
        return file
    }

    /// Calls the plugin's entry function and returns what it describes, or throws why it cannot.
    ///
    /// The pointer the entry returns is checked to be readable (the `regula_plugin` it points to, as far as
    /// its `struct_size` says) before anything reads it, so a garbage pointer is refused with words. Where the
    /// description's own pointers lead is read by ``DescriptionReader``, unchecked: see Docs/ABI.md, section 13.
    func pluginDescription() throws(RegistryError) -> UnsafePointer<regula_plugin>? {
        // dlsym also finds the entry of a library the file links; only the file's own counts.
        guard let symbol = dlsym(handle, RegulaABISymbols.entry), case let kind = regula_symbol_kind(handle, symbol), kind != -2
        else { throw RegistryError(path: path, reason: .missingEntrySymbol) }
        // Exporting the description itself as a data symbol is the classic mistake; calling data would crash.
        guard kind != 0 else {
            throw RegistryError(path: path, reason: .malformed(
                "\(RegulaABISymbols.entry) is data, not a function; export a function that returns the description "
                    + "(REGULA_EXPORT_PLUGIN does)"))
        }
        let entry = unsafeBitCast(symbol, to: regula_plugin_entry_fn.self)
        guard let described = entry() else { return nil }
        let raw = UnsafeRawPointer(described)
        var readable = Self.isReadable(raw, count: 12)
        if readable {
            let size = Int(raw.load(fromByteOffset: 8, as: UInt32.self))
            if (24...4096).contains(size) { readable = Self.isReadable(raw, count: size) }
        }
        guard readable else {
            throw RegistryError(path: path, reason: .malformed(
                "\(RegulaABISymbols.entry)() returned 0x\(String(UInt(bitPattern: raw), radix: 16)), which does not point "
                    + "to readable memory holding a regula_plugin"))
        }
        return described
    }

    /// Whether `count` bytes at `address` can be read, asked of the kernel (a write of them into a socket fails
    /// with `EFAULT` where they cannot) rather than by touching them, which would fault.
    static func isReadable(_ address: UnsafeRawPointer, count: Int) -> Bool {
        guard let (output, input) = try? FileDescriptor.pipe(options: .closeOnExec) else { return true }
        defer {
            try? output.close()
            try? input.close()
        }
        // A page at a time, drained after each write, so that no write can fill the pipe and wait.
        var sink = [UInt8](repeating: 0, count: 4096)
        for start in stride(from: 0, to: count, by: 4096) {
            let piece = min(4096, count - start)
            guard (try? input.write(UnsafeRawBufferPointer(start: address + start, count: piece))) == piece else { return false }
            _ = try? sink.withUnsafeMutableBytes { try output.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<piece])) }
        }
        return true
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
