import Foundation

/// Compiles plugins from C source the way a user would: `cc -shared -fPIC` with `regula config --cflags`.
public enum PluginCompiler {
    /// The flags `regula config --cflags` prints, split into arguments.
    public static func regulaCFlags() throws -> [String] {
        let output = try regula(["config", "--cflags"])
        guard output.status == 0 else { throw CompileError(log: "regula config --cflags: \(output.standardError)") }
        return output.standardOutput.split(whereSeparator: \.isWhitespace).map(String.init)
    }

    /// Writes `source` to `<name>.c` in `directory` and builds `lib<name>.so` beside it.
    /// - Parameter headers: A folder holding another `regula/regula.h` to build against (an older ABI's),
    ///   searched before the host's.
    /// - Returns: The shared object's URL.
    @discardableResult
    public static func compile(_ source: String, named name: String, in directory: TemporaryDirectory,
                               extraArguments: [String] = [], headers: URL? = nil) throws -> URL {
        let sourceFile = try directory.write(source, to: "\(name).c")
        let library = directory.url.appendingPathComponent("lib\(name).so")
        let output = try run(URL(fileURLWithPath: "/usr/bin/env"),
                             ["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror"] + (headers.map { ["-I", $0.path] } ?? [])
                                 + (try regulaCFlags()) + extraArguments + [sourceFile.path, "-o", library.path])
        guard output.status == 0 else { throw CompileError(log: output.standardError) }
        return library
    }
}

/// A plugin that did not compile; the compiler's words.
public struct CompileError: Error, CustomStringConvertible {
    /// The compiler's standard error.
    public let log: String
    /// The compiler's words.
    public var description: String { "compilation failed:\n\(log)" }
}
