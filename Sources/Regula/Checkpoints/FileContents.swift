#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Reads a whole file with POSIX calls: a failure says why in the system's words, and an empty file costs
/// nothing. (Foundation's `Data(contentsOf:)` leaks a 4 KiB buffer for every empty file it reads, in the
/// FoundationEssentials of Swift 6.3, which LeakSanitizer reports; a truncated checkpoint can be empty.)
enum FileContents {
    /// The bytes of the regular file at `url`.
    /// - Throws: ``CheckpointError`` naming the file and the reason it cannot be read.
    static func read(_ url: URL) throws(CheckpointError) -> Data {
        let descriptor = open(url.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure(url) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw failure(url) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw CheckpointError("cannot read \(url.path): not a regular file") }
        var data = Data(count: Int(status.st_size))
        var done = 0
        let failed = data.withUnsafeMutableBytes { bytes -> Bool in
            while done < bytes.count {
                let result = Glibc.read(descriptor, bytes.baseAddress! + done, bytes.count - done)
                if result < 0 && errno == EINTR { continue }
                if result < 0 { return true }
                if result == 0 { break }        // the file shrank while it was read: what was read is checked
                done += result
            }
            return false
        }
        guard !failed else { throw failure(url) }
        return done == data.count ? data : data.prefix(done)
    }

    private static func failure(_ url: URL) -> CheckpointError {
        CheckpointError("cannot read \(url.path): \(String(cString: strerror(errno)))")
    }
}
