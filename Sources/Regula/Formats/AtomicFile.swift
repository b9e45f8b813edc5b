#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Writes a file so that the path holds either the old contents or all of the new ones, never a part:
/// the data goes to a temporary file in the same folder, is flushed to disk, and is renamed over the target.
package enum AtomicFile {
    static func write(_ data: Data, to url: URL) throws(CheckpointError) {
        let folder = url.deletingLastPathComponent().path
        removeAbandonedPartials(of: url)
        let temporary = "\(folder)/.\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).partial"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure("cannot create \(temporary)", url) }
        var written = 0
        let ok = data.withUnsafeBytes { bytes -> Bool in
            while written < bytes.count {
                let chunk = min(1 << 20, bytes.count - written)
                let result = Glibc.write(descriptor, bytes.baseAddress! + written, chunk)
                if result <= 0 { return false }
                written += result
            }
            return fsync(descriptor) == 0
        }
        close(descriptor)
        guard ok, rename(temporary, url.path) == 0 else {
            let error = failure("cannot write \(url.path)", url)
            unlink(temporary)
            throw error
        }
        let folderDescriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folderDescriptor >= 0 {
            fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }

    /// Removes `.NAME.PID.N.partial` files left beside `url` by saves whose process no longer runs (killed
    /// mid-save); a save still running in another process keeps its file.
    private static func removeAbandonedPartials(of url: URL) {
        let folder = url.deletingLastPathComponent()
        let prefix = ".\(url.lastPathComponent)."
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        for name in names where name.hasPrefix(prefix) && name.hasSuffix(".partial") {
            let fields = name.dropFirst(prefix.count).split(separator: ".")
            guard fields.count == 3, let pid = pid_t(fields[0]), kill(pid, 0) != 0, errno == ESRCH else { continue }
            unlink(folder.appendingPathComponent(name).path)
        }
    }

    private static func failure(_ what: String, _ url: URL) -> CheckpointError {
        CheckpointError("\(what): \(String(cString: strerror(errno))); the file at \(url.path) was not changed")
    }
}
