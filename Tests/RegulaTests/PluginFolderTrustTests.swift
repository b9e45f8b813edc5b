import Foundation
import Regula
import RegulaTestSupport
import Testing

/// Who could have changed a plugin: every folder from `/` down to the file is checked, as ssh's StrictModes
/// does, with the sticky bit accepted (as on `/tmp`, where these tests' folders live); and what is not a
/// regular file (a FIFO named `x.so`) is refused without being opened for reading, so nothing blocks.
@Suite(.timeLimit(.minutes(1)))
struct PluginFolderTrustTests {
    /// `root/a/b/libscale_test.so`, with `a` given `mode`; returns the folder (keep it alive) and the file.
    private func nestedPlugin(aboveMode mode: Int) throws -> (folder: TemporaryDirectory, a: URL, file: URL) {
        let folder = try TemporaryDirectory()
        let built = try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: folder)
        let a = folder.url.resolvingSymlinksInPath().appendingPathComponent("a")
        let b = a.appendingPathComponent("b")
        try FileManager.default.createDirectory(at: b, withIntermediateDirectories: true)
        let file = b.appendingPathComponent("libscale_test.so")
        try FileManager.default.moveItem(at: built, to: file)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: b.path)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: a.path)
        return (folder, a, file)
    }

    private func untrustedWords(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "loaded"
        } catch let error as RegistryError {
            if case .untrusted(let words) = error.reason { return words }
            return "another reason: \(error)"
        } catch {
            return "another error: \(error)"
        }
    }

    @Test func worldWritableFolderAboveThePluginsFolderIsRefusedByName() throws {
        let (folder, a, file) = try nestedPlugin(aboveMode: 0o777)
        defer { withExtendedLifetime(folder) {} }
        let words = untrustedWords { try RuleRegistry().loadPlugin(at: file.path) }
        #expect(words == "the folder \(a.path) above it is writable by anyone (mode 777); allowed: writable by its owner "
                + "only, e.g. chmod go-w (or, for a shared folder like /tmp, the sticky bit)")
    }

    @Test func groupWritableFolderAboveIsRefused() throws {
        let (folder, a, file) = try nestedPlugin(aboveMode: 0o775)
        defer { withExtendedLifetime(folder) {} }
        let words = untrustedWords { try RuleRegistry().loadPlugin(at: file.path) }
        #expect(words.hasPrefix("the folder \(a.path) above it is writable by its group (mode 775)"), "\(words)")
    }

    @Test func stickyWorldWritableFolderAboveIsAcceptedLikeTmp() throws {
        let (folder, _, file) = try nestedPlugin(aboveMode: 0o1777)
        defer { withExtendedLifetime(folder) {} }
        #expect(try RuleRegistry().loadPlugin(at: file.path).map(\.name) == ["scale_test"])
    }

    @Test func pluginDirectlyInAStickyFolderIsAccepted() throws {
        let folder = try TemporaryDirectory()
        let file = try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: folder)
        try FileManager.default.setAttributes([.posixPermissions: 0o1777], ofItemAtPath: folder.path)
        #expect(try RuleRegistry().loadPlugin(at: file.path).map(\.name) == ["scale_test"])
        // Without the sticky bit, anyone could replace it.
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: folder.path)
        #expect(untrustedWords { try RuleRegistry().loadPlugin(at: file.path) }.contains("is writable by anyone"))
    }

    @Test func fifoNamedLikeAPluginIsRefusedWithoutBlocking() throws {
        let folder = try TemporaryDirectory()
        try PluginCompiler.compile(PluginSource.scaleTest, named: "scale_test", in: folder)
        let fifo = folder.url.resolvingSymlinksInPath().appendingPathComponent("x.so")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        let registry = RuleRegistry()
        let refused = try registry.loadPlugins(inDirectory: folder.path)
        #expect(refused == [RegistryError(path: fifo.path, reason: .notLoadable("it is a FIFO (named pipe), not a regular file"))])
        #expect(registry.rules.map(\.name) == ["scale_test"])
        let listed = try regula(["list", "--plugin-dir", folder.path])
        #expect(listed.status == 0)
        #expect(listed.standardError.contains("refused: cannot load plugin \(fifo.path): not a loadable shared object (it is a FIFO"))
        let inspected = try regula(["inspect", fifo.path])
        #expect(inspected.status == 1)
        #expect(inspected.standardError.contains("FIFO"))
    }

    @Test func fifoInAFolderThatIsRefusedIsNeverOpened() throws {
        let folder = try TemporaryDirectory()
        let fifo = folder.url.resolvingSymlinksInPath().appendingPathComponent("x.so")
        #expect(mkfifo(fifo.path, 0o644) == 0)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: folder.path)
        let words = untrustedWords { try RuleRegistry().loadPlugin(at: fifo.path) }
        #expect(words.hasPrefix("its folder \(folder.url.resolvingSymlinksInPath().path) is writable by anyone"), "\(words)")
    }
}
