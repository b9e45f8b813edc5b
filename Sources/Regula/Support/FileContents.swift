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
    /// The bytes of the file at `url`. A named pipe or a device (`<(…)`, `/dev/stdin`) is read to its end, up
    /// to ``maximumStreamBytes``.
    /// - Throws: ``FileReadError`` when the file is missing, is a folder, may not be read, fails mid-read, or is
    ///   a stream longer than ``maximumStreamBytes``.
    package static func read(_ url: URL) throws(FileReadError) -> Data {
        let descriptor = try openFile(url)
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw failure(url.path, errno) }
        guard status.st_mode & S_IFMT == S_IFREG else { return try readStream(descriptor, name: url.path) }
        return try read(descriptor, expecting: Int(status.st_size), name: url.path)
    }

    /// The most bytes read from a pipe, a device or standard input, whose length is not known before reading:
    /// 256 MiB, six times the largest spec the tests replay. Without a bound, an endless stream (`/dev/zero`)
    /// would be read until memory ran out; a regular file may be as long as the machine's memory.
    static let maximumStreamBytes = 1 << 28

    /// Reads a stream to its end, refusing it past ``maximumStreamBytes``.
    private static func readStream(_ descriptor: Int32, name: String) throws(FileReadError) -> Data {
        let data = try read(descriptor, expecting: nil, name: name, limit: maximumStreamBytes + 1)
        guard data.count <= maximumStreamBytes else {
            throw FileReadError(description: "cannot read \(name): it does not end within \(maximumStreamBytes) bytes; "
                + "allowed from a pipe, a device or standard input: at most \(maximumStreamBytes) bytes (a longer input "
                + "can be read from a regular file)")
        }
        return data
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

    /// The largest file ``RegularFile`` opens: the machine's physical memory,
    /// since the whole file is held in memory at once. A larger length cannot be loaded here, and asking for
    /// that much memory would end the process instead of refusing the file.
    static var maximumRegularFileSize: UInt64 { ProcessInfo.processInfo.physicalMemory }

    /// A regular file open for reading: never a named pipe, a device or a socket, which may block forever
    /// (a FIFO with no writer) or never end (`/dev/zero`). Closed when it goes away.
    struct RegularFile: ~Copyable {
        /// The path it was opened at.
        package let url: URL
        /// Its length in bytes when it was opened.
        package let size: Int
        private let descriptor: Int32

        /// Opens `url` without blocking, so a FIFO cannot hold up the open, and checks that it is a regular
        /// file of at most ``maximumRegularFileSize`` bytes before anything is read.
        /// - Throws: ``FileReadError`` naming the file and what it is instead.
        package init(_ url: URL) throws(FileReadError) {
            self.url = url
            (descriptor, size) = try openRegularFile(url)
        }

        deinit { close(descriptor) }

        /// The first `count` bytes (fewer when the file is shorter), leaving the file to be read whole after.
        package func start(_ count: Int) throws(FileReadError) -> Data {
            try FileContents.read(descriptor, expecting: min(count, size), name: url.path, limit: count, at: 0)
        }

        /// All of the file's bytes.
        package func contents() throws(FileReadError) -> Data {
            try FileContents.read(descriptor, expecting: size, name: url.path, at: 0)
        }
    }

    /// Checks that `url` is a regular file that ``RegularFile`` would open, without reading it.
    /// - Throws: ``FileReadError`` saying what the path is instead.
    static func checkRegularFile(_ url: URL) throws(FileReadError) {
        _ = try RegularFile(url)
    }

    /// A descriptor open for reading on `url`, which is a regular file of a size that can be read, and its size.
    private static func openRegularFile(_ url: URL) throws(FileReadError) -> (Int32, Int) {
        // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, possibly forever.
        let descriptor = open(url.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure(url.path, errno) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let code = errno
            close(descriptor)
            throw failure(url.path, code)
        }
        let kind = status.st_mode & S_IFMT
        let problem: String? = switch kind {
        case S_IFREG where UInt64(status.st_size) > maximumRegularFileSize:
            "it is \(status.st_size) bytes long, more than this machine's memory (\(maximumRegularFileSize) bytes), "
                + "and it would be read whole; allowed: a regular file that fits in memory"
        case S_IFREG: nil
        case S_IFDIR: "it is a folder, not a file"
        default: "it is \(describe(kind)), not a regular file; allowed: a regular file (tensors and checkpoints are "
            + "never read from pipes or devices)"
        }
        if let problem {
            close(descriptor)
            throw FileReadError(description: "cannot read \(url.path): \(problem)")
        }
        return (descriptor, Int(status.st_size))
    }

    /// What a file of type `kind` (`st_mode & S_IFMT`) is, in words.
    private static func describe(_ kind: mode_t) -> String {
        switch kind {
        case S_IFIFO: "a named pipe (FIFO)"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
    }

    /// Everything on standard input, up to its end and at most ``maximumStreamBytes``.
    package static func readStandardInput() throws(FileReadError) -> Data {
        try readStream(STDIN_FILENO, name: "standard input")
    }

    /// Reads `descriptor` to its end; `size` (a regular file's length) sizes the buffer in one allocation.
    /// At most `limit` bytes are read; `offset`, when given, is where reading starts (with `pread`, so the
    /// descriptor's position does not matter).
    private static func read(_ descriptor: Int32, expecting size: Int?, name: String, limit: Int = .max,
                             at offset: Int? = nil) throws(FileReadError) -> Data {
        var data = Data(count: size.map { min($0, limit - 1) + 1 } ?? 1 << 16)
        var filled = 0
        while filled < limit {
            if filled == data.count { data.count *= 2 }
            let chunk = min(data.count - filled, 1 << 30, limit - filled)
            let got = data.withUnsafeMutableBytes { bytes in
                offset.map { pread(descriptor, bytes.baseAddress! + filled, chunk, off_t($0 + filled)) }
                    ?? Glibc.read(descriptor, bytes.baseAddress! + filled, chunk)
            }
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
