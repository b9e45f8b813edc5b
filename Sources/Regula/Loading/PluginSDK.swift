import Foundation

/// What a plugin author builds against: the folder holding `regula/regula.h` and the compiler flags for it.
public enum PluginSDK {
    /// The environment variable that overrides where the header is.
    public static let includeVariable = "REGULA_INCLUDE_DIR"

    /// The ABI version of the header this host was built with, `MAJOR.MINOR` (what `pkg-config --modversion
    /// regula` prints for an installed copy).
    public static var abiVersion: String { "\(RegulaABISymbols.major).\(RegulaABISymbols.minor)" }

    /// The folder to pass with `-I`, so that `#include <regula/regula.h>` finds the header this host was
    /// built with: `REGULA_INCLUDE_DIR` if set; else `../include` beside the executable's folder when it holds
    /// the header (a copy installed by `regula install --prefix DIR` uses `DIR/include`); else the package's
    /// `Sources/RegulaABI/include`.
    public static func includeDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let override = environment[includeVariable], !override.isEmpty { return override }
        if let executable = currentExecutablePath() {
            let installed = URL(fileURLWithPath: executable).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("include")
            if FileManager.default.fileExists(atPath: installed.appendingPathComponent("regula/regula.h").path) {
                return installed.path
            }
        }
        // This file is Sources/Regula/Loading/PluginSDK.swift; the header sits in Sources/RegulaABI/include.
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("RegulaABI/include").path
    }

    /// The Regula package this host was built from (the folder holding its Package.swift), for plugins
    /// written in Swift that depend on its `RegulaABI` product.
    public static func packageDirectory() -> String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// The flags the built-in rules are built with (Package.swift's `pluginCSettings`), which give a rule
    /// the speed of a built-in:
    /// - `-O3`: gcc vectorizes loops only from -O3 (or with -ftree-vectorize); at -O2 a rule's loop stays
    ///   scalar.
    /// - `-march=native`: the widest vector instructions of the machine that builds the rule. A plugin is
    ///   built where it runs; for a binary shipped to other machines, name a level they all have
    ///   (`-march=x86-64-v3`) instead.
    /// - `-ffp-contract=off`: no fused multiply-adds, so the arithmetic rounds exactly as written, the same on
    ///   every machine and at every vector width, and float64 agrees with float32 the way the source says.
    /// - `-fno-math-errno`: `sqrt` need not set `errno`, so it compiles to one vector instruction instead of a
    ///   call into libm; without it an Adam-like loop does not vectorize (about 3× slower).
    /// - `-fvisibility=hidden`: only `regula_plugin_entry` (marked `REGULA_EXPORT`) leaves the shared object.
    public static let optimizationFlags = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fvisibility=hidden"]

    /// Flags for a C compiler: `-I<include directory>` and ``optimizationFlags``, as in
    /// `cc -shared -fPIC $(regula config --cflags) rule.c -o librule.so`.
    public static func compilerFlags(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        (["-I\(includeDirectory(environment: environment))"] + optimizationFlags).joined(separator: " ")
    }
}
