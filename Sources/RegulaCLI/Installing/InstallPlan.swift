import Foundation
import Regula

/// What `regula install` copies where, worked out and checked before anything is written.
struct InstallPlan {
    /// One file to install: copied from `source`, or written from `contents`.
    struct Item {
        let destination: URL
        let source: URL?
        let contents: Data?
        let executable: Bool
    }

    let prefix: URL
    let items: [Item]

    /// Where `regula.pc` goes.
    var pkgConfigFolder: URL { prefix.appendingPathComponent("lib/pkgconfig") }

    /// The plan for `prefix`.
    /// - Throws: ``RegistryError`` (built-ins not found) when this regula has no rules to install, or ``CommandError`` when
    ///   a file to copy is missing or the prefix cannot be written.
    init(prefix: URL) throws {
        self.prefix = prefix
        guard let rules = PluginSearchPath.builtinDirectory() else { throw RegistryError.builtinsNotFound() }
        let ruleFolder = URL(fileURLWithPath: rules)
        let ruleNames = ((try? FileManager.default.contentsOfDirectory(atPath: rules)) ?? []).filter { name in
            name.hasSuffix(".so") && [PluginSearchPath.builtinPrefix, PluginSearchPath.examplePrefix].contains { name.hasPrefix($0) }
        }.sorted()
        let header = URL(fileURLWithPath: PluginSDK.includeDirectory()).appendingPathComponent("regula")
        let headerNames = ((try? FileManager.default.contentsOfDirectory(atPath: header.path)) ?? []).filter { $0.hasSuffix(".h") }.sorted()
        guard !headerNames.isEmpty else { throw CommandError("no regula/regula.h in \(header.deletingLastPathComponent().path) to install") }
        guard let executable = Self.runningExecutable() else { throw CommandError("cannot find the running regula (/proc/self/exe)") }
        let data = try Dataset.embeddedNames.map { try Dataset.embeddedFile($0) }

        let rulesTarget = prefix.appendingPathComponent(PluginSearchPath.installedRulesFolder)
        var items = ruleNames.map {
            Item(destination: rulesTarget.appendingPathComponent($0), source: ruleFolder.appendingPathComponent($0), contents: nil, executable: true)
        }
        items += headerNames.map {
            Item(destination: prefix.appendingPathComponent("include/regula/\($0)"), source: header.appendingPathComponent($0),
                 contents: nil, executable: false)
        }
        items.append(Item(destination: prefix.appendingPathComponent("lib/pkgconfig/regula.pc"), source: nil,
                          contents: Data(Self.pkgConfig(prefix: prefix).utf8), executable: false))
        items.append(Item(destination: prefix.appendingPathComponent("bin/regula"), source: executable, contents: nil, executable: true))
        items += data.map {
            Item(destination: prefix.appendingPathComponent("share/regula/\($0.lastPathComponent)"), source: $0, contents: nil, executable: false)
        }
        self.items = items
        try checkWritable()
    }

    /// The pkg-config file: `pkg-config --cflags regula` finds the header and gives the flags the built-in
    /// rules are built with (as `regula config --cflags` does), `--modversion` is the ABI version, and
    /// `--variable=rulesdir` is the folder of the built-in rules.
    static func pkgConfig(prefix: URL) -> String {
        """
        # Written by `regula install`: the C contract for Regula's update-rule plugins.
        prefix=\(prefix.path)
        includedir=${prefix}/include
        libdir=${prefix}/lib
        rulesdir=${prefix}/\(PluginSearchPath.installedRulesFolder)

        Name: regula
        Description: C contract (regula/regula.h) for Regula optimizer update-rule plugins
        Version: \(PluginSDK.abiVersion)
        Cflags: -I${includedir} \(PluginSDK.optimizationFlags.joined(separator: " "))

        """
    }

    /// Writes every item beside its destination, then renames them all into place.
    /// - Returns: The paths installed.
    /// - Throws: ``CommandError``; the files already there are then as they were.
    func install() throws -> [String] {
        let manager = FileManager.default
        var staged: [(URL, URL)] = []
        var created: [URL] = []
        do {
            for item in items {
                // Each folder made is remembered, so that a failure can take it away again.
                var missing: [URL] = []
                var folder = item.destination.deletingLastPathComponent()
                while !manager.fileExists(atPath: folder.path) {
                    missing.insert(folder, at: 0)
                    folder.deleteLastPathComponent()
                }
                for folder in missing {
                    try manager.createDirectory(at: folder, withIntermediateDirectories: false)
                    created.append(folder)
                }
                // A reinstall from the installed copy itself: the file is already in place.
                if let source = item.source, source.resolvingSymlinksInPath().path == item.destination.resolvingSymlinksInPath().path {
                    continue
                }
                let partial = item.destination.deletingLastPathComponent()
                    .appendingPathComponent(".\(item.destination.lastPathComponent).\(getpid()).partial")
                staged.append((partial, item.destination))
                try (item.contents ?? Data(contentsOf: item.source!)).write(to: partial)
                try manager.setAttributes([.posixPermissions: item.executable ? 0o755 : 0o644], ofItemAtPath: partial.path)
            }
        } catch {
            for (partial, _) in staged { try? manager.removeItem(at: partial) }
            for folder in created.reversed() { try? manager.removeItem(at: folder) }
            throw CommandError("cannot write under \(prefix.path): \(systemReason(error) ?? "the file system refused"); "
                                   + "nothing was installed")
        }
        for (partial, destination) in staged where rename(partial.path, destination.path) != 0 {
            throw CommandError("cannot move \(partial.path) to \(destination.path): \(String(cString: strerror(errno)))")
        }
        return items.map(\.destination.path)
    }

    /// Refuses, before anything is written, a prefix under a file or a folder this user cannot write.
    private func checkWritable() throws {
        let manager = FileManager.default
        for folder in Set(items.map { $0.destination.deletingLastPathComponent().path }).sorted() {
            // The deepest part of the path that exists decides.
            var existing = URL(fileURLWithPath: folder)
            var isFolder: ObjCBool = false
            while !manager.fileExists(atPath: existing.path, isDirectory: &isFolder) { existing.deleteLastPathComponent() }
            guard isFolder.boolValue else { throw CommandError("cannot install under \(prefix.path): \(existing.path) is a file, not a folder") }
            guard manager.isWritableFile(atPath: existing.path) else {
                throw CommandError("cannot install under \(prefix.path): \(existing.path) is not writable by this user; "
                                       + "choose a prefix of your own (for example --prefix ~/.local)")
            }
        }
        for item in items {
            var isFolder: ObjCBool = false
            if manager.fileExists(atPath: item.destination.path, isDirectory: &isFolder), isFolder.boolValue {
                throw CommandError("cannot install \(item.destination.path): a folder of that name is in the way")
            }
        }
    }

    private static func runningExecutable() -> URL? {
        let url = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return url.path == "/proc/self/exe" ? nil : url
    }
}
