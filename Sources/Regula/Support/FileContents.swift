#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A file that cannot be read, in words: the path and the reason (`cannot read /a/b.json: no such file`),
/// never Foundation's error text.
package struct FileReadError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, naming the file.
    package let description: String
}

/// Reading whole files and standard input with POSIX calls, so every failure can be put in words.
package enum FileContents {
    /// The bytes of the file at `url`. A named pipe or a device (`<(…)`, `/dev/stdin`) is read to its end.
    /// - Throws: ``FileReadError`` when the file is missing, is a folder, may not be read, or fails mid-read.
    package static func read(_ url: URL) throws(FileReadError) -> Data {
        let descriptor = try openFile(url)
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw failure(url.path, errno) }
        let size = status.st_mode & S_IFMT == S_IFREG ? Int(status.st_size) : nil
        return try read(descriptor, expecting: size, name: url.path)
    }

    /// A descriptor open for reading on `url`, which is not a folder.
    private static func openFile(_ url: URL) throws(FileReadError) -> Int32 {
        let descriptor = open(url.path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure(url.path, errno) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT != S_IFDIR else {
            let code = errno
            close(descriptor)
            throw failure(url.path, status.st_mode & S_IFMT == S_IFDIR ? EISDIR : code)
        }
        return descriptor
    }

    /// Checks that `url` is there, is not a folder and may be read, without reading it.
    /// - Throws: ``FileReadError`` saying which of these fails.
    package static func checkReadable(_ url: URL) throws(FileReadError) {
        let descriptor = try openFile(url)
        close(descriptor)
    }

    /// Everything on standard input, up to its end.
    package static func readStandardInput() throws(FileReadError) -> Data {
        try read(STDIN_FILENO, expecting: nil, name: "standard input")
    }

    /// Reads `descriptor` to its end; `size` (a regular file's length) sizes the buffer in one allocation.
    private static func read(_ descriptor: Int32, expecting size: Int?, name: String) throws(FileReadError) -> Data {
        var data = Data(count: size.map { $0 + 1 } ?? 1 << 16)
        var filled = 0
        while true {
            if filled == data.count { data.count *= 2 }
            let chunk = min(data.count - filled, 1 << 30)
            let got = data.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + filled, chunk) }
            if got < 0 {
                if errno == EINTR { continue }
                throw failure(name, errno, reading: true)
            }
            if got == 0 { break }
            filled += got
        }
        data.count = filled
        return data
    }

    private static func failure(_ path: String, _ code: Int32, reading: Bool = false) -> FileReadError {
        let reason = switch code {
        case ENOENT: "no such file"
        case EACCES, EPERM: "permission denied"
        case ENOTDIR: "a part of the path is not a folder"
        case EISDIR: "it is a folder, not a file"
        case ENAMETOOLONG: "the path is too long"
        case ELOOP: "too many symbolic links"
        default: String(cString: strerror(code)).lowercased()
        }
        return FileReadError(description: "cannot read \(path)\(reading ? " (failed while reading)" : ""): \(reason)")
    }
}
