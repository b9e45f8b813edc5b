import Foundation
import Regula
import RegulaTestSupport
import Testing

/// `regula install --prefix DIR`: the layout it makes works without the Regula checkout's build folder.
@Suite struct InstallCommandTests {
    static let layout = ["bin/regula", "include/regula/regula.h", "lib/pkgconfig/regula.pc",
                         "lib/regula/libRegulaRuleSGD.so", "lib/regula/libRegulaExampleProxL1.so", "share/regula/breast_cancer.csv"]

    @Test func installedCopyFindsItsOwnRulesHeaderAndData() throws {
        let prefix = try TemporaryDirectory("regula-prefix")
        let output = try regula(["install", "--prefix", prefix.path])
        #expect(output.status == 0, "\(output.standardError)")
        for path in Self.layout {
            #expect(FileManager.default.fileExists(atPath: prefix.url.appendingPathComponent(path).path), "\(path)")
            #expect(output.standardOutput.contains("installed \(prefix.url.appendingPathComponent(path).path)"))
        }
        let installed = prefix.url.appendingPathComponent("bin/regula")
        let config = try run(installed, ["config", "--builtin-dir", "--cflags"])
        #expect(config.standardOutput == "-I\(prefix.path)/include \(PluginSDK.optimizationFlags.joined(separator: " "))\n\(prefix.path)/lib/regula\n",
                "\(config.standardError)")
        let train = try run(installed, ["train", "--epochs", "3"])
        #expect(train.status == 0 && train.standardOutput.contains("breast cancer (569 × 30, embedded)"), "\(train.standardError)")
        #expect(train.standardOutput.contains("sgd > prox_l1"))
    }

    @Test func pkgConfigFileFindsTheHeaderForACPlugin() throws {
        let prefix = try TemporaryDirectory("regula-prefix")
        #expect(try regula(["install", "--prefix", prefix.path]).status == 0)
        let pkgConfig = ["PKG_CONFIG_PATH": prefix.path + "/lib/pkgconfig"]
        let flags = try run(URL(fileURLWithPath: "/usr/bin/env"), ["pkg-config", "--cflags", "regula"], environment: pkgConfig)
        #expect(flags.status == 0, "pkg-config is needed (.ci/run installs it): \(flags.standardError)")
        #expect(flags.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            == "-I\(prefix.path)/include \(PluginSDK.optimizationFlags.joined(separator: " "))")
        let version = try run(URL(fileURLWithPath: "/usr/bin/env"), ["pkg-config", "--modversion", "regula"], environment: pkgConfig)
        #expect(version.standardOutput == PluginSDK.abiVersion + "\n")
        let rules = try run(URL(fileURLWithPath: "/usr/bin/env"), ["pkg-config", "--variable=rulesdir", "regula"], environment: pkgConfig)
        #expect(rules.standardOutput == prefix.path + "/lib/regula\n")
        // A plugin built against the installed header loads in the installed regula.
        let folder = try TemporaryDirectory()
        let source = try folder.write(PluginSource.scaleTest, to: "scale.c")
        let library = folder.url.appendingPathComponent("libscale.so")
        let compile = try run(URL(fileURLWithPath: "/bin/sh"),
                              ["-c", "cc -shared -fPIC $(pkg-config --cflags regula) '\(source.path)' -o '\(library.path)'"],
                              environment: pkgConfig)
        #expect(compile.status == 0, "\(compile.standardError)")
        let inspect = try run(prefix.url.appendingPathComponent("bin/regula"), ["inspect", library.path])
        #expect(inspect.status == 0 && inspect.standardOutput.contains("scale_test"), "\(inspect.standardError)")
    }

    @Test func dryRunListsTheLayoutAndWritesNothing() throws {
        let prefix = try TemporaryDirectory("regula-prefix")
        let output = try regula(["install", "--prefix", prefix.path + "/inside", "--dry-run"])
        #expect(output.status == 0, "\(output.standardError)")
        for path in Self.layout { #expect(output.standardOutput.contains("would install \(prefix.path)/inside/\(path)")) }
        #expect(!FileManager.default.fileExists(atPath: prefix.path + "/inside"))
    }

    @Test func anInstallThatCannotFinishChangesNothing() throws {
        let prefix = try TemporaryDirectory("regula-prefix")
        // A folder where the executable should go: refused before anything is written.
        try FileManager.default.createDirectory(at: prefix.url.appendingPathComponent("bin/regula"), withIntermediateDirectories: true)
        let blocked = try regula(["install", "--prefix", prefix.path])
        #expect(blocked.status == 1)
        #expect(blocked.standardError == "error: cannot install \(prefix.path)/bin/regula: a folder of that name is in the way\n")
        #expect(!FileManager.default.fileExists(atPath: prefix.path + "/lib"))
        // A prefix below a file.
        let file = try prefix.write("not a folder", to: "file")
        let underFile = try regula(["install", "--prefix", file.path + "/usr"])
        #expect(underFile.status == 1 && underFile.standardError.contains("\(file.path) is a file, not a folder"), "\(underFile.standardError)")
        #expect(!underFile.standardError.contains("NSCocoaErrorDomain"))
    }
}
