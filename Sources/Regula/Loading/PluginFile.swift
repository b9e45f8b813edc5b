#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CRegulaShims

/// Which file, and which version of it: device, inode, size and modification time from `fstat`.
struct FileStamp: Hashable, Sendable, CustomStringConvertible {
    let device: UInt64
    let inode: UInt64
    let size: UInt64
    let seconds: Int64
    let nanoseconds: Int64

    init(_ status: stat) {
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
        size = UInt64(status.st_size)
        seconds = Int64(status.st_mtim.tv_sec)
        nanoseconds = Int64(status.st_mtim.tv_nsec)
    }

    init?(_ text: Substring) {
        let fields = text.split(separator: ":").compactMap { Int64($0) }
        guard fields.count == 5 else { return nil }
        device = UInt64(bitPattern: fields[0])
        inode = UInt64(bitPattern: fields[1])
        size = UInt64(bitPattern: fields[2])
        seconds = fields[3]
        nanoseconds = fields[4]
    }

    /// The stamp of the file at `path` (following symbolic links), or nil when it cannot be read.
    init?(path: String) {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        self.init(status)
    }

    /// `device:inode:size:seconds:nanoseconds`, read back by ``init(_:)``.
    var description: String {
        "\(Int64(bitPattern: device)):\(Int64(bitPattern: inode)):\(Int64(bitPattern: size)):\(seconds):\(nanoseconds)"
    }

    /// The same file, whatever its size or time.
    func isSameFile(as other: FileStamp) -> Bool { device == other.device && inode == other.inode }
}

/// A plugin file opened for loading, after the checks on who could have changed it: every folder from `/`
/// down to it, and the file itself, may be written only by this user or root (a folder writable by others
/// is accepted only when it has the sticky bit, like `/tmp`), and it is a regular file.
///
/// The folders are checked before the file is opened, and the file is opened with `O_NONBLOCK` and checked
/// through its descriptor (`fstat`), so a FIFO or device named `x.so` is refused without blocking. Its bytes
/// are then read once into a sealed memory file (`memfd_create`, sealed against writing, growing and
/// shrinking), and everything after reads that copy: the ELF checks, and the loader (`/proc/self/fd/N`). So
/// the bytes checked are the bytes loaded, and a file rewritten or truncated in place meanwhile cannot change
/// what is mapped (a truncated mapping would end the process with a bus error). A file that changes while it
/// is being copied is refused.
final class PluginFile {
    /// The absolute, symlink-free path.
    let path: String
    /// The sealed copy of its bytes (close-on-exec); until ``sealedCopy()``, the file itself.
    private(set) var descriptor: Int32
    /// The file itself, kept open beside the copy while this value lives (for the life of the process once
    /// loaded), so that its device and inode, by which a file met again is recognised, are not given to
    /// another file meanwhile.
    private var source: Int32 = -1
    /// What `fstat` said of the file itself.
    let stamp: FileStamp
    /// The FNV-1a 64-bit hash of the bytes copied, by which a probe process and this one can tell that they
    /// loaded the same content.
    private(set) var fingerprint: UInt64 = 0
    private var keptOpen = false

    /// The largest plugin file read, since its bytes are copied into memory: 256 MiB, far above any set of
    /// rules (the built-ins are tens of kilobytes each).
    static let maximumSize: UInt64 = 256 << 20

    private init(path: String, descriptor: Int32, stamp: FileStamp) {
        self.path = path
        self.descriptor = descriptor
        self.stamp = stamp
    }

    deinit {
        guard !keptOpen else { return }
        close(descriptor)
        if source >= 0 { close(source) }
    }

    /// Leaves the descriptors open for the life of the process (the loader's name for the object refers to
    /// the copy; the file's identity is the one a later open is matched by).
    func keepOpen() { keptOpen = true }

    /// Opens the file at `path` (absolute, symlinks already resolved) after checking who may have changed it.
    static func open(_ path: String) throws(RegistryError) -> PluginFile {
        try checkFolders(above: path)
        var named = stat()
        guard lstat(path, &named) == 0 else {
            throw RegistryError(path: path, reason: .notLoadable("cannot read it: \(errorText())"))
        }
        guard named.st_mode & S_IFMT == S_IFREG else {
            throw RegistryError(path: path, reason: .notLoadable("it is \(kind(of: named.st_mode)), not a regular file"))
        }
        let descriptor = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard descriptor >= 0 else {
            throw RegistryError(path: path, reason: .notLoadable("cannot open it: \(errorText())"))
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let words = errorText()
            close(descriptor)
            throw RegistryError(path: path, reason: .notLoadable("cannot read it: \(words)"))
        }
        let file = PluginFile(path: path, descriptor: descriptor, stamp: FileStamp(status))
        guard status.st_mode & S_IFMT == S_IFREG, file.stamp.isSameFile(as: FileStamp(named)) else {
            throw RegistryError(path: path, reason: .notLoadable("it was replaced while it was being opened"))
        }
        try checkTrust(of: status, what: "the file", path: path)
        try file.sealedCopy()
        return file
    }

    /// Puts the file's bytes in a sealed memory file, checked to be those of the version ``stamp`` describes,
    /// and reads that copy from now on.
    private func sealedCopy() throws(RegistryError) {
        guard stamp.size <= Self.maximumSize else {
            throw RegistryError(path: path, reason: .notLoadable(
                "it is \(stamp.size) bytes; allowed: at most \(Self.maximumSize >> 20) MiB for a plugin file"))
        }
        var fingerprint: UInt64 = 0
        let copy = regula_sealed_copy(descriptor, Int(stamp.size), "regula-plugin", &fingerprint)
        guard copy >= 0 else {
            throw RegistryError(path: path, reason: .notLoadable("cannot read it: \(errorText())"))
        }
        var after = stat()
        guard fstat(descriptor, &after) == 0, FileStamp(after) == stamp else {
            close(copy)
            throw RegistryError(path: path, reason: .notLoadable(
                "it changed while it was being read (is it still being written?); try again once it is complete"))
        }
        (source, descriptor, self.fingerprint) = (descriptor, copy, fingerprint)
    }

    /// Checks every folder from `/` down to the one holding `path`, as ssh's `StrictModes` does.
    private static func checkFolders(above path: String) throws(RegistryError) {
        let components = path.split(separator: "/", omittingEmptySubsequences: true).dropLast()
        var folder = ""
        for (index, component) in ([""] + components.map(String.init)).enumerated() {
            if index > 0 { folder += "/" + component }
            let shown = folder.isEmpty ? "/" : folder
            var status = stat()
            guard lstat(shown, &status) == 0 else {
                throw RegistryError(path: path, reason: .notLoadable("cannot read the folder \(shown): \(errorText())"))
            }
            guard status.st_mode & S_IFMT == S_IFDIR else {
                throw RegistryError(path: path, reason: .notLoadable("\(shown) is no longer a folder (it changed while loading)"))
            }
            let what = index == components.count ? "its folder \(shown)" : "the folder \(shown) above it"
            try checkTrust(of: status, what: what, path: path)
        }
    }

    /// Refuses what anyone but this user or root could have written. A folder writable by others passes
    /// only with the sticky bit, which keeps them from removing or renaming what they do not own.
    private static func checkTrust(of status: stat, what: String, path: String) throws(RegistryError) {
        let owner = status.st_uid
        guard owner == getuid() || owner == 0 else {
            throw RegistryError(path: path, reason: .untrusted(
                "\(what) is owned by user \(owner), neither you (\(getuid())) nor root"))
        }
        let writableByOthers = status.st_mode & (S_IWGRP | S_IWOTH)
        let isFolder = status.st_mode & S_IFMT == S_IFDIR
        guard writableByOthers == 0 || (isFolder && status.st_mode & S_ISVTX != 0) else {
            let who = status.st_mode & S_IWOTH != 0 ? "anyone" : "its group"
            throw RegistryError(path: path, reason: .untrusted(
                "\(what) is writable by \(who) (mode \(String(status.st_mode & 0o7777, radix: 8))); allowed: writable by "
                    + "its owner only, e.g. chmod go-w\(isFolder ? " (or, for a shared folder like /tmp, the sticky bit)" : "")"))
        }
    }

    /// A file type in words.
    private static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a folder"
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "a special file"
        }
    }
}

/// `strerror(errno)`.
func errorText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
