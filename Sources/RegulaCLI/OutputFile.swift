import Foundation

/// A file a command writes, checked before the command starts its work, so that a mistyped folder is
/// reported at once and not after minutes of training, and written without Foundation's words.
struct OutputFile {
    /// The path as given.
    let path: String
    /// The option that named it (`--csv`), for messages.
    let option: String

    /// Why the file cannot be written, or nil when it can: its folder is missing, not a folder or not
    /// writable, or the path is a folder.
    var problem: String? {
        let manager = FileManager.default
        let url = URL(fileURLWithPath: path)
        var isFolder: ObjCBool = false
        if manager.fileExists(atPath: url.path, isDirectory: &isFolder) {
            if isFolder.boolValue { return "\(url.path) is a folder; give a file name" }
            return manager.isWritableFile(atPath: url.path) ? nil : "\(url.path) exists and is not writable"
        }
        let folder = url.deletingLastPathComponent().path
        guard manager.fileExists(atPath: folder, isDirectory: &isFolder) else {
            return "there is no folder \(folder); create it first or give another path"
        }
        guard isFolder.boolValue else { return "\(folder) is not a folder" }
        return manager.isWritableFile(atPath: folder) ? nil : "the folder \(folder) is not writable"
    }

    /// Throws ``OutputFileError`` when ``problem`` finds one.
    func check() throws(OutputFileError) {
        if let problem { throw OutputFileError(option: option, path: path, problem: problem) }
    }

    /// Replaces the file's contents with `text` (atomically: the old contents stay if the write fails).
    func write(_ text: String) throws(OutputFileError) {
        try check()
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw OutputFileError(option: option, path: path, problem: "the write failed" + (systemReason(error).map { ": \($0)" } ?? ""))
        }
    }
}

/// A file named by an option that cannot be written.
struct OutputFileError: Error, CustomStringConvertible {
    let option: String
    let path: String
    let problem: String
    var description: String { "\(option) \(path): cannot write it: \(problem)" }
}

/// The system's reason for a failed Foundation file operation (`No such file or directory`), without
/// Foundation's own wording; nil when there is none.
func systemReason(_ error: Error) -> String? {
    let error = error as NSError
    let posix = error.domain == NSPOSIXErrorDomain ? error : error.userInfo[NSUnderlyingErrorKey] as? NSError
    return posix.flatMap { $0.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32($0.code))) : nil }
}
