#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SystemPackage

/// Writes a file so that the path holds either the old contents or all of the new ones, never a part:
/// the data goes to a temporary file in the same folder, is flushed to disk, and is renamed over the target.
/// A call that a signal interrupts (`EINTR`) is made again: swift-system retries its own calls, and this
/// type retries `fsync` and `rename`, which swift-system does not wrap.
enum AtomicFile {
    static func write(_ data: Data, to url: URL) throws(CheckpointError) {
        let folder = FilePath(url.deletingLastPathComponent().path)
        removeAbandonedPartials(of: url)
        let temporary = folder.appending(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).partial")
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(temporary, .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                                           permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch { throw failure("cannot create \(temporary)", error, url) }
        do {
            try file.closeAfter {
                try file.writeAll(data)
                try retryingInterrupted { fsync(file.rawValue) }
            }
            try retryingInterrupted { rename(temporary.string, url.path) }
        } catch {
            unlink(temporary.string)
            throw failure("cannot write \(url.path)", error, url)
        }
        // The new name lasts once the folder's entry is on disk too.
        if let directory = try? FileDescriptor.open(folder, .readOnly, options: [.directory, .closeOnExec]) {
            _ = try? directory.closeAfter { try retryingInterrupted { fsync(directory.rawValue) } }
        }
    }

    /// Makes a C call that returns -1 and sets `errno` when it fails, again for as long as it fails with
    /// `EINTR`.
    private static func retryingInterrupted(_ call: () -> Int32) throws(Errno) {
        while call() == -1 {
            guard errno == EINTR else { throw Errno(rawValue: errno) }
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

    private static func failure(_ what: String, _ error: any Error, _ url: URL) -> CheckpointError {
        CheckpointError("\(what): \(error); the file at \(url.path) was not changed")
    }
}
